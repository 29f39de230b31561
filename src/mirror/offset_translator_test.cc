// The header check of offset translation; TranslateOffsets itself reads real
// clusters and is tested on two Kafka brokers (tests/integration/
// mirror_translate_test.cc).
#include "mirror/offset_translator.h"

#include <gtest/gtest.h>

namespace ferry::mirror {
namespace {

const backend::TopicPartition kP1{"orders", 1};

TEST(CopiedFrom, NamesTheSourceOffsetOfACopyOfThePartition) {
  EXPECT_EQ(CopiedFrom({{"ferry.id", "x"}, {"ferry.origin", "a/orders/1/42"}}, "a", kP1),
            42);
}

TEST(CopiedFrom, IgnoresRecordsThatAreNoCopyOfThePartition) {
  EXPECT_EQ(CopiedFrom({}, "a", kP1), std::nullopt) << "written to the target directly";
  EXPECT_EQ(CopiedFrom({{"ferry.origin", "b/orders/1/42"}}, "a", kP1), std::nullopt)
      << "another source cluster";
  EXPECT_EQ(CopiedFrom({{"ferry.origin", "a/orders/2/42"}}, "a", kP1), std::nullopt)
      << "another partition";
  EXPECT_EQ(CopiedFrom({{"ferry.origin", "a/payments/1/42"}}, "a", kP1), std::nullopt)
      << "another topic";
  EXPECT_EQ(CopiedFrom({{"ferry.origin", "garbage"}}, "a", kP1), std::nullopt);
}

TEST(TargetResumeOffset, IsTheTranslationWhenThereIsOne) {
  const Translation t{.partition = kP1,
                      .state = Translation::State::kTranslated,
                      .group_offset = 40,
                      .mirrored_offset = 45,
                      .target_offset = 37};
  EXPECT_EQ(TargetResumeOffset(t, 45, 44), 37);
}

TEST(TargetResumeOffset, AtTheSourcesEndWithEverythingCopiedIsTheTargetsEnd) {
  const Translation t{.partition = kP1,
                      .state = Translation::State::kNotYetMirrored,
                      .group_offset = 45,
                      .mirrored_offset = 45};
  EXPECT_EQ(TargetResumeOffset(t, 45, 44), 44);
  EXPECT_EQ(TargetResumeOffset(t, 46, 44), std::nullopt)
      << "a record was written since: wait for its copy";
  Translation behind = t;
  behind.mirrored_offset = 44;
  EXPECT_EQ(TargetResumeOffset(behind, 45, 44), std::nullopt) << "not all copied";
  EXPECT_EQ(TargetResumeOffset({.partition = kP1}, 45, 44), std::nullopt)
      << "no position";
}

}  // namespace
}  // namespace ferry::mirror
