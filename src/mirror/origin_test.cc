#include "mirror/origin.h"

#include <gtest/gtest.h>

namespace ferry::mirror {
namespace {

TEST(Origin, ParsesWhatItFormatsAlsoWithASlashInTheClusterName) {
  for (const Origin& origin :
       {Origin{.cluster = "a", .partition = {"orders", 3}, .offset = 17},
        Origin{.cluster = "dc1/main", .partition = {"x.y_z-1", 0}, .offset = 0}}) {
    EXPECT_EQ(ParseOrigin(FormatOrigin(origin)), origin) << FormatOrigin(origin);
  }
  EXPECT_EQ(FormatOrigin({.cluster = "a", .partition = {"orders", 3}, .offset = 17}),
            "a/orders/3/17");
}

TEST(Origin, RejectsWhatAMirrorDidNotWrite) {
  for (const char* header : {"", "a/orders/3", "/orders/3/17", "a//3/17", "a/orders/x/17",
                             "a/orders/3/-1", "a/orders/3/17 ", "a/orders/3/"}) {
    EXPECT_EQ(ParseOrigin(header), std::nullopt) << header;
  }
}

}  // namespace
}  // namespace ferry::mirror
