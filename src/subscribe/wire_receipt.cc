#include "subscribe/wire_receipt.h"

#include <cstring>

#include "common/proto_wire_writer.h"

namespace ferry::subscribe {
namespace {

using proto_wire::WriteVarint;

constexpr char kVersionWithoutCluster = 1;
constexpr char kVersion = 2;
constexpr char kRunVersion = 3;
// Topic names are at most 249 bytes (common/topic_name.h).
constexpr uint64_t kMaxTopicBytes = 249;
// Cluster names are configuration keys; this only bounds what a client can
// make the node allocate.
constexpr uint64_t kMaxClusterBytes = 255;

// Receipts are written for every delivered message: sized first, then
// written through a pointer into room made once, not a push_back per byte.
constexpr size_t kMaxVarintBytes = 10;

char* PutBytes(std::string_view bytes, char* out) {
  out = WriteVarint(bytes.size(), out);
  // An empty view may have no data at all (a version-1 receipt's cluster).
  if (!bytes.empty()) std::memcpy(out, bytes.data(), bytes.size());
  return out + bytes.size();
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

// Room for the version byte, nine varints (six fields, two lengths, a run's
// count), the topic and the cluster.
size_t MaxBytes(const WireReceipt& r) {
  return 1 + 9 * kMaxVarintBytes + r.topic.size() + r.cluster.size();
}

// The fields after the version byte, up to the cluster.
char* PutFields(const WireReceipt& r, char* out) {
  out = WriteVarint(r.stream, out);
  out = WriteVarint(r.partition_epoch, out);
  out = WriteVarint(r.generation, out);
  out = WriteVarint(ZigZag(r.partition), out);
  out = WriteVarint(ZigZag(r.attempt), out);
  out = WriteVarint(ZigZag(r.offset), out);
  out = PutBytes(r.topic, out);
  return PutBytes(r.cluster, out);
}

// Appends what `put` writes (at most MaxBytes(r)) to `out`.
template <typename Put>
void AppendTo(const WireReceipt& r, std::string& out, Put put) {
  const size_t begin = out.size();
  out.resize(begin + MaxBytes(r));
  char* end = put(out.data() + begin);
  out.resize(static_cast<size_t>(end - out.data()));
}

// Reads what PutFields wrote (without the cluster for version 1) from
// the front of `in`; false when malformed.
bool GetFields(std::string_view& in, bool with_cluster, WireReceipt& r) {
  uint64_t partition = 0, attempt = 0, offset = 0, topic_size = 0;
  if (!GetVarint(in, r.stream) || !GetVarint(in, r.partition_epoch) ||
      !GetVarint(in, r.generation) || !GetVarint(in, partition) ||
      !GetVarint(in, attempt) || !GetVarint(in, offset) || !GetVarint(in, topic_size)) {
    return false;
  }
  const int64_t p = UnZigZag(partition), a = UnZigZag(attempt);
  if (p < 0 || p > INT32_MAX || a < 1 || a > INT32_MAX) return false;
  if (topic_size == 0 || topic_size > kMaxTopicBytes || in.size() < topic_size) {
    return false;
  }
  r.partition = static_cast<int32_t>(p);
  r.attempt = static_cast<int32_t>(a);
  r.offset = UnZigZag(offset);
  if (r.offset < 0) return false;
  r.topic = in.substr(0, topic_size);
  in.remove_prefix(topic_size);
  if (with_cluster) {
    uint64_t cluster_size = 0;
    if (!GetVarint(in, cluster_size) || cluster_size > kMaxClusterBytes ||
        in.size() < cluster_size) {
      return false;
    }
    r.cluster = in.substr(0, cluster_size);
    in.remove_prefix(cluster_size);
  }
  return true;
}

}  // namespace

std::string EncodeReceipt(const WireReceipt& receipt) {
  std::string out;
  AppendReceipt(receipt, out);
  return out;
}

void AppendReceipt(const WireReceipt& r, std::string& out) {
  AppendTo(r, out, [&r](char* p) {
    *p++ = kVersion;
    return PutFields(r, p);
  });
}

std::optional<WireReceipt> DecodeReceipt(std::string_view in) {
  if (in.empty()) return std::nullopt;
  const char version = in.front();
  if (version != kVersion && version != kVersionWithoutCluster) return std::nullopt;
  in.remove_prefix(1);
  WireReceipt r;
  if (!GetFields(in, version == kVersion, r) || !in.empty()) return std::nullopt;
  return r;
}

void AppendRun(const WireRun& run, std::string& out) {
  AppendTo(run.first, out, [&run](char* p) {
    *p++ = kRunVersion;
    return WriteVarint(run.count, PutFields(run.first, p));
  });
}

std::optional<WireRun> DecodeRun(std::string_view in) {
  if (in.empty() || in.front() != kRunVersion) return std::nullopt;
  in.remove_prefix(1);
  WireRun run;
  uint64_t count = 0;
  if (!GetFields(in, /*with_cluster=*/true, run.first) || !GetVarint(in, count) ||
      !in.empty() || count == 0 || count > UINT32_MAX ||
      run.first.offset > INT64_MAX - static_cast<int64_t>(count)) {
    return std::nullopt;
  }
  run.count = static_cast<uint32_t>(count);
  return run;
}

}  // namespace ferry::subscribe
