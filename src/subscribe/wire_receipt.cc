#include "subscribe/wire_receipt.h"

namespace ferry::subscribe {
namespace {

constexpr char kVersionWithoutCluster = 1;
constexpr char kVersion = 2;
// Topic names are at most 249 bytes (common/topic_name.h).
constexpr uint64_t kMaxTopicBytes = 249;
// Cluster names are configuration keys; this only bounds what a client can
// make the node allocate.
constexpr uint64_t kMaxClusterBytes = 255;

void PutVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

bool GetVarint(std::string_view& in, uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    const auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// Zig-zag keeps small negative numbers (never expected, but not trusted
// either) short and round-trippable.
uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

}  // namespace

std::string EncodeReceipt(const WireReceipt& receipt) {
  std::string out;
  out.reserve(26 + receipt.topic.size() + receipt.cluster.size());
  AppendReceipt(receipt, out);
  return out;
}

void AppendReceipt(const WireReceipt& r, std::string& out) {
  out.push_back(kVersion);
  PutVarint(out, r.stream);
  PutVarint(out, r.partition_epoch);
  PutVarint(out, r.generation);
  PutVarint(out, ZigZag(r.partition));
  PutVarint(out, ZigZag(r.attempt));
  PutVarint(out, ZigZag(r.offset));
  PutVarint(out, r.topic.size());
  out.append(r.topic);
  PutVarint(out, r.cluster.size());
  out.append(r.cluster);
}

std::optional<WireReceipt> DecodeReceipt(std::string_view in) {
  if (in.empty()) return std::nullopt;
  const char version = in.front();
  if (version != kVersion && version != kVersionWithoutCluster) return std::nullopt;
  in.remove_prefix(1);
  WireReceipt r;
  uint64_t partition = 0, attempt = 0, offset = 0, topic_size = 0;
  if (!GetVarint(in, r.stream) || !GetVarint(in, r.partition_epoch) ||
      !GetVarint(in, r.generation) || !GetVarint(in, partition) ||
      !GetVarint(in, attempt) || !GetVarint(in, offset) || !GetVarint(in, topic_size)) {
    return std::nullopt;
  }
  const int64_t p = UnZigZag(partition), a = UnZigZag(attempt);
  if (p < 0 || p > INT32_MAX || a < 1 || a > INT32_MAX) return std::nullopt;
  if (topic_size == 0 || topic_size > kMaxTopicBytes || in.size() < topic_size) {
    return std::nullopt;
  }
  r.partition = static_cast<int32_t>(p);
  r.attempt = static_cast<int32_t>(a);
  r.offset = UnZigZag(offset);
  if (r.offset < 0) return std::nullopt;
  r.topic = in.substr(0, topic_size);
  in.remove_prefix(topic_size);
  if (version == kVersion) {
    uint64_t cluster_size = 0;
    if (!GetVarint(in, cluster_size) || cluster_size > kMaxClusterBytes ||
        in.size() < cluster_size) {
      return std::nullopt;
    }
    r.cluster = in.substr(0, cluster_size);
    in.remove_prefix(cluster_size);
  }
  if (!in.empty()) return std::nullopt;
  return r;
}

}  // namespace ferry::subscribe
