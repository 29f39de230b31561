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

}  // namespace
}  // namespace ferry::mirror
