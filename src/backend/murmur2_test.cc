#include "backend/murmur2.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <string>

namespace ferry::backend {
namespace {

// Values printed by the Java client (Utils.murmur2), as listed in
// librdkafka's tests (rdmurmur2.c unittest).
TEST(Murmur2, MatchesTheJavaClient) {
  EXPECT_EQ(Murmur2("kafka"), static_cast<int32_t>(0xd067cf64));
  EXPECT_EQ(Murmur2("giberish123456789"), static_cast<int32_t>(0x8f552b0c));
  EXPECT_EQ(Murmur2("1234"), static_cast<int32_t>(0x9fc97b14));
  EXPECT_EQ(Murmur2("234"), static_cast<int32_t>(0xe7c009ca));
  EXPECT_EQ(Murmur2("34"), static_cast<int32_t>(0x873930da));
  EXPECT_EQ(Murmur2("4"), static_cast<int32_t>(0x5a4b5ca1));
  EXPECT_EQ(Murmur2("PreAmbleWillBeRemoved,ThePrePartThatIs"),
            static_cast<int32_t>(0x78424f1c));
  EXPECT_EQ(Murmur2(""), static_cast<int32_t>(0x106e08d9));
  // From the Java client's own UtilsTest.
  EXPECT_EQ(Murmur2("21"), -973932308);
  EXPECT_EQ(Murmur2("foobar"), -790332482);
  EXPECT_EQ(Murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(Murmur2("abc"), 479470107);
}

TEST(Murmur2, PartitionsLikeLibrdkafkasMurmur2Partitioner) {
  for (int32_t partitions : {1, 3, 7, 12, 100}) {
    for (int i = 0; i < 1000; ++i) {
      const std::string key = "key-" + std::to_string(i * 7919);
      EXPECT_EQ(Murmur2Partition(key, partitions),
                rd_kafka_msg_partitioner_murmur2(nullptr, key.data(), key.size(),
                                                 partitions, nullptr, nullptr))
          << key << " over " << partitions;
    }
  }
}

}  // namespace
}  // namespace ferry::backend
