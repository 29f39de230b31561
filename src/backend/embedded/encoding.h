#pragma once

// The embedded store's on-disk format: RocksDB keys and values.
//
// One key space (the default column family), a one-byte tag per kind of key.
// Integers in keys are big-endian so RocksDB's bytewise order is numeric order
// (timestamps have their sign bit flipped so negative ones sort first):
//
//   'T' name                                  -> TopicMeta      topic by name
//   'N'                                       -> fixed64        next topic id
//   'P' id:8 partition:4                      -> PartitionMeta  watermarks, bytes
//   'R' id:8 partition:4 offset:8             -> record         the log
//   'I' id:8 partition:4 max_ts:8 offset:8    -> ""             timestamp index
//   'G' len:2 group len:2 topic partition:4   -> fixed64        committed offset
//
// Records live under the topic's numeric id, not its name, so deleting a topic
// is one DeleteRange and a topic re-created under the same name starts empty.
// The timestamp index holds an entry only for records that raise their
// partition's running maximum timestamp: the first entry at or after time t
// is then exactly the first record with timestamp >= t.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "backend/group_member.h"

namespace ferry::backend::embedded {

struct TopicMeta {
  uint64_t id = 0;
  int32_t partitions = 0;
  int64_t retention_ms = -1;     // -1: unlimited
  int64_t retention_bytes = -1;  // -1: unlimited, per partition
  bool compact = false;          // cleanup.policy=compact: latest record per key
};

// Written in the same WriteBatch as the records it describes, so it is
// always consistent with them after a crash.
struct PartitionMeta {
  int64_t low = 0;                       // first offset still stored
  int64_t high = 0;                      // next offset to assign
  int64_t bytes = 0;                     // encoded size of the records in [low, high)
  int64_t max_timestamp_ms = INT64_MIN;  // running maximum, for the index
};

std::string TopicKey(std::string_view name);
std::string_view TopicKeyPrefix();
std::string NextTopicIdKey();
std::string PartitionKey(uint64_t topic_id, int32_t partition);
std::string PartitionKeyPrefix(uint64_t topic_id);
std::string RecordKey(uint64_t topic_id, int32_t partition, int64_t offset);
std::string RecordKeyPrefix(uint64_t topic_id);
std::string IndexKey(uint64_t topic_id, int32_t partition, int64_t timestamp_ms,
                     int64_t offset);
// The first index key of the partition: all its entries sort after it.
std::string IndexPartitionStart(uint64_t topic_id, int32_t partition);
std::string IndexKeyPrefix(uint64_t topic_id);
std::string GroupOffsetKey(std::string_view group, std::string_view topic,
                           int32_t partition);
std::string GroupKeyPrefix(std::string_view group);
std::string_view GroupKeysPrefix();

// The key that sorts right after every key starting with `prefix`.
std::string PrefixEnd(std::string_view prefix);

int64_t OffsetOfRecordKey(std::string_view key);
int64_t OffsetOfIndexKey(std::string_view key);
int64_t TimestampOfIndexKey(std::string_view key);
struct GroupOffsetKeyParts {
  std::string group;
  std::string topic;
  int32_t partition = 0;
};
std::optional<GroupOffsetKeyParts> ParseGroupOffsetKey(std::string_view key);

std::string EncodeTopicMeta(const TopicMeta& meta);
std::optional<TopicMeta> DecodeTopicMeta(std::string_view value);
std::string EncodePartitionMeta(const PartitionMeta& meta);
std::optional<PartitionMeta> DecodePartitionMeta(std::string_view value);
std::string EncodeFixed64(int64_t value);
std::optional<int64_t> DecodeFixed64(std::string_view value);

// Record values: timestamp, key, value and headers. Decoding fills
// `out` (topic, partition and offset come from the key) with views into
// `encoded` and fails on truncated or malformed input.
std::string EncodeRecord(int64_t timestamp_ms, std::string_view key,
                         std::string_view value, const std::vector<Header>& headers);
bool DecodeRecord(std::string_view encoded, ConsumedRecord& out);

}  // namespace ferry::backend::embedded
