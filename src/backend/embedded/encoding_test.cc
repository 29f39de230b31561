#include "backend/embedded/encoding.h"

#include <gtest/gtest.h>

namespace ferry::backend::embedded {
namespace {

TEST(Encoding, RecordKeysSortByTopicPartitionThenOffset) {
  EXPECT_LT(RecordKey(1, 0, 255), RecordKey(1, 0, 256));
  EXPECT_LT(RecordKey(1, 0, 1 << 30), RecordKey(1, 1, 0));
  EXPECT_LT(RecordKey(1, 7, 0), RecordKey(2, 0, 0));
  EXPECT_EQ(OffsetOfRecordKey(RecordKey(3, 2, 123456789012)), 123456789012);
  EXPECT_TRUE(RecordKey(3, 2, 5).starts_with(RecordKeyPrefix(3)));
}

TEST(Encoding, IndexKeysSortByTimestampIncludingNegativeOnes) {
  EXPECT_LT(IndexKey(1, 0, -5, 9), IndexKey(1, 0, 0, 0));
  EXPECT_LT(IndexKey(1, 0, 100, 9), IndexKey(1, 0, 101, 0));
  EXPECT_EQ(TimestampOfIndexKey(IndexKey(1, 0, -5, 9)), -5);
  EXPECT_EQ(OffsetOfIndexKey(IndexKey(1, 0, -5, 9)), 9);
}

TEST(Encoding, PrefixEndBoundsEveryKeyWithThePrefix) {
  const std::string prefix = RecordKeyPrefix(0xff);
  EXPECT_LT(RecordKey(0xff, INT32_MAX, INT64_MAX), PrefixEnd(prefix));
  EXPECT_LT(PrefixEnd(prefix), RecordKey(0x100, 0, 0));
}

TEST(Encoding, GroupOffsetKeysRoundTripAndGroupByGroup) {
  auto parts = ParseGroupOffsetKey(GroupOffsetKey("billing", "orders", 3));
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->group, "billing");
  EXPECT_EQ(parts->topic, "orders");
  EXPECT_EQ(parts->partition, 3);
  EXPECT_TRUE(
      GroupOffsetKey("billing", "orders", 3).starts_with(GroupKeyPrefix("billing")));
  EXPECT_FALSE(GroupOffsetKey("billing2", "x", 0).starts_with(GroupKeyPrefix("billing")));
}

TEST(Encoding, RecordsRoundTripWithHeadersAndBinaryData) {
  const std::string binary("\0\xff\x80", 3);
  std::string encoded = EncodeRecord(1700000000000, "k", binary, {{"ferry.id", "42"}});
  ConsumedRecord record;
  ASSERT_TRUE(DecodeRecord(encoded, record));
  EXPECT_EQ(record.timestamp_ms, 1700000000000);
  EXPECT_EQ(record.key, "k");
  EXPECT_EQ(record.value, binary);
  ASSERT_EQ(record.headers.size(), 1u);
  EXPECT_EQ(record.headers[0].key, "ferry.id");
  EXPECT_EQ(record.headers[0].value, "42");
  EXPECT_FALSE(DecodeRecord(encoded.substr(0, encoded.size() - 1), record));
}

TEST(Encoding, MetadataRoundTrips) {
  TopicMeta topic{.id = 9, .partitions = 12, .retention_ms = -1, .retention_bytes = 1000};
  auto decoded = DecodeTopicMeta(EncodeTopicMeta(topic));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->id, 9u);
  EXPECT_EQ(decoded->partitions, 12);
  EXPECT_EQ(decoded->retention_ms, -1);
  EXPECT_EQ(decoded->retention_bytes, 1000);
  PartitionMeta partition{
      .low = 3, .high = 10, .bytes = 70, .max_timestamp_ms = INT64_MIN};
  auto p = DecodePartitionMeta(EncodePartitionMeta(partition));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->low, 3);
  EXPECT_EQ(p->high, 10);
  EXPECT_EQ(p->bytes, 70);
  EXPECT_EQ(p->max_timestamp_ms, INT64_MIN);
}

TEST(Encoding, TopicMetaWithoutCompactionKeepsTheOlderLayout) {
  TopicMeta plain{.id = 1, .partitions = 1};
  EXPECT_EQ(EncodeTopicMeta(plain).size(), 28u);
  EXPECT_FALSE(DecodeTopicMeta(EncodeTopicMeta(plain))->compact);
  TopicMeta compacted{.id = 1, .partitions = 1, .compact = true};
  EXPECT_TRUE(DecodeTopicMeta(EncodeTopicMeta(compacted))->compact);
  EXPECT_FALSE(DecodeTopicMeta(EncodeTopicMeta(plain) + '\x02').has_value());
}

}  // namespace
}  // namespace ferry::backend::embedded
