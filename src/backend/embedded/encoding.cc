#include "backend/embedded/encoding.h"

namespace ferry::backend::embedded {
namespace {

void PutBigEndian(std::string& out, uint64_t value, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

uint64_t GetBigEndian(std::string_view in, size_t pos, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value = (value << 8) | static_cast<uint8_t>(in[pos + i]);
  }
  return value;
}

// Flipping the sign bit maps int64 order onto unsigned (bytewise) order.
uint64_t Ordered(int64_t value) { return static_cast<uint64_t>(value) ^ (1ull << 63); }
int64_t Unordered(uint64_t value) { return static_cast<int64_t>(value ^ (1ull << 63)); }

void PutVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

// Reads a varint at `pos`, advancing it; false when truncated or too long.
bool GetVarint(std::string_view in, size_t& pos, uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64 && pos < in.size(); shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(in[pos++]);
    value |= uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

void PutBytes(std::string& out, std::string_view bytes) {
  PutVarint(out, bytes.size());
  out.append(bytes);
}

bool GetBytes(std::string_view in, size_t& pos, std::string_view& out) {
  uint64_t size = 0;
  if (!GetVarint(in, pos, size) || size > in.size() - pos) return false;
  out = in.substr(pos, size);
  pos += size;
  return true;
}

std::string TopicPartitionPrefix(char tag, uint64_t topic_id, int32_t partition) {
  std::string key(1, tag);
  PutBigEndian(key, topic_id, 8);
  PutBigEndian(key, static_cast<uint32_t>(partition), 4);
  return key;
}

std::string TopicPrefix(char tag, uint64_t topic_id) {
  std::string key(1, tag);
  PutBigEndian(key, topic_id, 8);
  return key;
}

constexpr size_t kPartitionPrefixSize = 1 + 8 + 4;

}  // namespace

std::string TopicKey(std::string_view name) { return "T" + std::string(name); }
std::string_view TopicKeyPrefix() { return "T"; }
std::string NextTopicIdKey() { return "N"; }

std::string PartitionKey(uint64_t topic_id, int32_t partition) {
  return TopicPartitionPrefix('P', topic_id, partition);
}
std::string PartitionKeyPrefix(uint64_t topic_id) { return TopicPrefix('P', topic_id); }

std::string RecordKey(uint64_t topic_id, int32_t partition, int64_t offset) {
  std::string key = TopicPartitionPrefix('R', topic_id, partition);
  PutBigEndian(key, static_cast<uint64_t>(offset), 8);
  return key;
}
std::string RecordKeyPrefix(uint64_t topic_id) { return TopicPrefix('R', topic_id); }

std::string IndexKey(uint64_t topic_id, int32_t partition, int64_t timestamp_ms,
                     int64_t offset) {
  std::string key = TopicPartitionPrefix('I', topic_id, partition);
  PutBigEndian(key, Ordered(timestamp_ms), 8);
  PutBigEndian(key, static_cast<uint64_t>(offset), 8);
  return key;
}
std::string IndexPartitionStart(uint64_t topic_id, int32_t partition) {
  return TopicPartitionPrefix('I', topic_id, partition);
}
std::string IndexKeyPrefix(uint64_t topic_id) { return TopicPrefix('I', topic_id); }

std::string GroupOffsetKey(std::string_view group, std::string_view topic,
                           int32_t partition) {
  std::string key = GroupKeyPrefix(group);
  PutBigEndian(key, topic.size(), 2);
  key.append(topic);
  PutBigEndian(key, static_cast<uint32_t>(partition), 4);
  return key;
}
std::string GroupKeyPrefix(std::string_view group) {
  std::string key = "G";
  PutBigEndian(key, group.size(), 2);
  key.append(group);
  return key;
}
std::string_view GroupKeysPrefix() { return "G"; }

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<uint8_t>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
  return end;
}

int64_t OffsetOfRecordKey(std::string_view key) {
  return static_cast<int64_t>(GetBigEndian(key, kPartitionPrefixSize, 8));
}
int64_t TimestampOfIndexKey(std::string_view key) {
  return Unordered(GetBigEndian(key, kPartitionPrefixSize, 8));
}
int64_t OffsetOfIndexKey(std::string_view key) {
  return static_cast<int64_t>(GetBigEndian(key, kPartitionPrefixSize + 8, 8));
}

std::optional<GroupOffsetKeyParts> ParseGroupOffsetKey(std::string_view key) {
  GroupOffsetKeyParts parts;
  size_t pos = 1;
  for (std::string* field : {&parts.group, &parts.topic}) {
    if (key.size() < pos + 2) return std::nullopt;
    const size_t size = GetBigEndian(key, pos, 2);
    pos += 2;
    if (key.size() < pos + size) return std::nullopt;
    field->assign(key.substr(pos, size));
    pos += size;
  }
  if (key.size() != pos + 4) return std::nullopt;
  parts.partition = static_cast<int32_t>(GetBigEndian(key, pos, 4));
  return parts;
}

std::string EncodeTopicMeta(const TopicMeta& meta) {
  std::string out;
  PutBigEndian(out, meta.id, 8);
  PutBigEndian(out, static_cast<uint32_t>(meta.partitions), 4);
  PutBigEndian(out, Ordered(meta.retention_ms), 8);
  PutBigEndian(out, Ordered(meta.retention_bytes), 8);
  // A flag byte only when set: stores written before compaction existed
  // hold 28 bytes, and a store that never compacts stays readable by them.
  if (meta.compact) out.push_back('\x01');
  return out;
}

std::optional<TopicMeta> DecodeTopicMeta(std::string_view value) {
  if (value.size() != 28 && !(value.size() == 29 && value[28] == '\x01')) {
    return std::nullopt;
  }
  return TopicMeta{.id = GetBigEndian(value, 0, 8),
                   .partitions = static_cast<int32_t>(GetBigEndian(value, 8, 4)),
                   .retention_ms = Unordered(GetBigEndian(value, 12, 8)),
                   .retention_bytes = Unordered(GetBigEndian(value, 20, 8)),
                   .compact = value.size() == 29};
}

std::string EncodePartitionMeta(const PartitionMeta& meta) {
  std::string out;
  for (int64_t field : {meta.low, meta.high, meta.bytes, meta.max_timestamp_ms}) {
    PutBigEndian(out, Ordered(field), 8);
  }
  return out;
}

std::optional<PartitionMeta> DecodePartitionMeta(std::string_view value) {
  if (value.size() != 32) return std::nullopt;
  return PartitionMeta{.low = Unordered(GetBigEndian(value, 0, 8)),
                       .high = Unordered(GetBigEndian(value, 8, 8)),
                       .bytes = Unordered(GetBigEndian(value, 16, 8)),
                       .max_timestamp_ms = Unordered(GetBigEndian(value, 24, 8))};
}

std::string EncodeFixed64(int64_t value) {
  std::string out;
  PutBigEndian(out, Ordered(value), 8);
  return out;
}

std::optional<int64_t> DecodeFixed64(std::string_view value) {
  if (value.size() != 8) return std::nullopt;
  return Unordered(GetBigEndian(value, 0, 8));
}

std::string EncodeRecord(int64_t timestamp_ms, std::string_view key,
                         std::string_view value, const std::vector<Header>& headers) {
  std::string out;
  out.reserve(8 + key.size() + value.size() + 16);
  PutBigEndian(out, Ordered(timestamp_ms), 8);
  PutBytes(out, key);
  PutBytes(out, value);
  PutVarint(out, headers.size());
  for (const Header& header : headers) {
    PutBytes(out, header.key);
    PutBytes(out, header.value);
  }
  return out;
}

bool DecodeRecord(std::string_view encoded, ConsumedRecord& out) {
  if (encoded.size() < 8) return false;
  out.timestamp_ms = Unordered(GetBigEndian(encoded, 0, 8));
  size_t pos = 8;
  uint64_t header_count = 0;
  if (!GetBytes(encoded, pos, out.key) || !GetBytes(encoded, pos, out.value) ||
      !GetVarint(encoded, pos, header_count) || header_count > encoded.size()) {
    return false;
  }
  out.headers.resize(header_count);
  for (HeaderView& header : out.headers) {
    if (!GetBytes(encoded, pos, header.key) || !GetBytes(encoded, pos, header.value)) {
      return false;
    }
  }
  return pos == encoded.size();
}

}  // namespace ferry::backend::embedded
