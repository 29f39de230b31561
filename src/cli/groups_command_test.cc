#include "cli/groups_command.h"

#include <gtest/gtest.h>

namespace ferry::cli {
namespace {

TEST(ParseSeekTarget, EndsTimesAndOffsetLists) {
  v1::Position p;
  EXPECT_EQ(ParseSeekTarget("earliest", {}, &p), "");
  EXPECT_TRUE(p.earliest());
  p.Clear();
  EXPECT_EQ(ParseSeekTarget("latest", {}, &p), "");
  EXPECT_TRUE(p.latest());
  p.Clear();
  EXPECT_EQ(ParseSeekTarget("2026-11-22T10:00:00.5Z", {}, &p), "");
  EXPECT_EQ(p.timestamp().seconds(), 1795341600);
  EXPECT_EQ(p.timestamp().nanos(), 500000000);
  p.Clear();
  EXPECT_EQ(ParseSeekTarget("0:5,3:12", {"orders"}, &p), "");
  ASSERT_EQ(p.offsets().offsets_size(), 2);
  EXPECT_EQ(p.offsets().offsets(1).topic(), "orders");
  EXPECT_EQ(p.offsets().offsets(1).partition(), 3);
  EXPECT_EQ(p.offsets().offsets(1).offset(), 12);
}

TEST(ParseSeekTarget, RejectsWhatItCannotRead) {
  v1::Position p;
  EXPECT_NE(ParseSeekTarget("yesterday", {"t"}, &p), "");
  EXPECT_NE(ParseSeekTarget("0:5", {}, &p), "");          // which topic?
  EXPECT_NE(ParseSeekTarget("0:5", {"a", "b"}, &p), "");  // ambiguous
  EXPECT_NE(ParseSeekTarget("0:x", {"t"}, &p), "");
  EXPECT_NE(ParseSeekTarget("0:-1", {"t"}, &p), "");
  EXPECT_NE(ParseSeekTarget("2026-13-40T99:00:00Z", {"t"}, &p), "");
}

}  // namespace
}  // namespace ferry::cli
