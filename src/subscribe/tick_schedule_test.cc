#include "subscribe/tick_schedule.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::subscribe {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const absl::Time kNow = absl::FromUnixSeconds(1'000'000);

TEST(TickSchedule, AGroupWithNothingDueIsNotTaken) {
  TickSchedule schedule;
  schedule.Wake("later", kNow + absl::Seconds(10));
  EXPECT_THAT(schedule.TakeDue(kNow), IsEmpty());
  EXPECT_THAT(schedule.TakeDue(kNow + absl::Seconds(9)), IsEmpty());
  EXPECT_EQ(schedule.size(), 1u);
}

TEST(TickSchedule, ADueTimeIsTakenOnceUntilAskedAgain) {
  TickSchedule schedule;
  schedule.Wake("g", kNow);
  EXPECT_THAT(schedule.TakeDue(kNow), ElementsAre("g"));
  EXPECT_THAT(schedule.TakeDue(kNow + absl::Seconds(1)), IsEmpty());
  schedule.Wake("g", kNow + absl::Seconds(2));
  EXPECT_THAT(schedule.TakeDue(kNow + absl::Seconds(2)), ElementsAre("g"));
}

TEST(TickSchedule, AskingEarlierMovesTheVisitUpAndLaterChangesNothing) {
  TickSchedule schedule;
  schedule.Wake("a", kNow + absl::Seconds(10));
  schedule.Wake("a", kNow + absl::Seconds(5));
  schedule.Wake("b", kNow + absl::Seconds(5));
  schedule.Wake("b", kNow + absl::Seconds(10));
  EXPECT_EQ(schedule.size(), 2u);
  EXPECT_THAT(schedule.TakeDue(kNow + absl::Seconds(5)), ElementsAre("a", "b"));
  EXPECT_THAT(schedule.TakeDue(kNow + absl::Seconds(10)), IsEmpty())
      << "each group was held once, at its earliest time";
}

TEST(TickSchedule, DueGroupsComeEarliestFirst) {
  TickSchedule schedule;
  schedule.Wake("third", kNow + absl::Seconds(3));
  schedule.Wake("first", kNow + absl::Seconds(1));
  schedule.Wake("second", kNow + absl::Seconds(2));
  schedule.Wake("not yet", kNow + absl::Seconds(4));
  EXPECT_THAT(schedule.TakeDue(kNow + absl::Seconds(3)),
              ElementsAre("first", "second", "third"));
}

}  // namespace
}  // namespace ferry::subscribe
