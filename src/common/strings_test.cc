#include "common/strings.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(Strings, SplitKeepsEmptyParts) {
  EXPECT_EQ(Split("a,,b", ','), (std::vector<std::string_view>{"a", "", "b"}));
  EXPECT_EQ(Split("", ','), (std::vector<std::string_view>{""}));
}

TEST(Strings, TrimRemovesOuterWhitespaceOnly) {
  EXPECT_EQ(Trim("  a b \n"), "a b");
  EXPECT_EQ(Trim(" \t "), "");
}

TEST(Strings, ParseIntRejectsTrailingGarbageAndOverflow) {
  int value = 0;
  EXPECT_TRUE(ParseInt("42", value));
  EXPECT_EQ(value, 42);
  EXPECT_FALSE(ParseInt("42x", value));
  EXPECT_FALSE(ParseInt("", value));
  uint16_t small = 0;
  EXPECT_FALSE(ParseInt("70000", small));
}

}  // namespace
}  // namespace ferry
