#include "backend/kafka/consumer_protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::backend::kafka {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::string Int16(int v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }
std::string Int32(int v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
          static_cast<char>(v >> 8), static_cast<char>(v)};
}

// Version 1, topics "a" (partitions 0, 2) and "bc" (7), empty user data.
std::string Sample() {
  return Int16(1) + Int32(2) + Int16(1) + "a" + Int32(2) + Int32(0) + Int32(2) +
         Int16(2) + "bc" + Int32(1) + Int32(7) + Int32(0);
}

TEST(ConsumerProtocol, DecodesTopicsAndPartitions) {
  EXPECT_THAT(DecodeAssignment(Sample()),
              ElementsAre(TopicPartition{"a", 0}, TopicPartition{"a", 2},
                          TopicPartition{"bc", 7}));
}

TEST(ConsumerProtocol, TruncatedInputKeepsWhatWasComplete) {
  EXPECT_THAT(DecodeAssignment(""), IsEmpty());
  const std::string sample = Sample();
  for (size_t n = 0; n < sample.size(); ++n) {
    EXPECT_LE(DecodeAssignment(sample.substr(0, n)).size(), 3u) << n;
  }
  EXPECT_THAT(DecodeAssignment(Int16(1) + Int32(1) + Int16(-1)), IsEmpty());
}

}  // namespace
}  // namespace ferry::backend::kafka
