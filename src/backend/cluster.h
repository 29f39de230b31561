#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fmt/format.h"

namespace ferry::backend {

class GroupMember;
class GroupMemberListener;
struct GroupMemberOptions;

enum class ClusterState { kConnecting, kUp, kDown };

std::string_view ToString(ClusterState state);

struct BrokerInfo {
  int32_t id = 0;
  std::string host;
  int32_t port = 0;
};

// What ferryd last learnt about a cluster.
struct ClusterStatus {
  ClusterState state = ClusterState::kConnecting;
  // Why the cluster is down; empty when up.
  std::string error = {};
  std::vector<BrokerInfo> brokers = {};
  // Topic names, internal ones (starting with "__") excluded. Filled only by
  // Describe(/*include_topics=*/true).
  std::vector<std::string> topics = {};
  // When the cluster last answered; InfinitePast() if never.
  absl::Time last_contact = absl::InfinitePast();
};

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;

  auto operator<=>(const TopicPartition&) const = default;
};

// A consumer group as the broker's group coordinator sees it.
struct GroupDescription {
  struct Member {
    std::string member_id = {};
    // The member's client id; Ferry nodes use "ferryd/<node id>".
    std::string client_id = {};
    std::string host = {};
    std::vector<TopicPartition> assignment = {};
  };
  std::string state = {};  // e.g. "Stable", "Empty", "PreparingRebalance", "Dead"
  std::vector<Member> members = {};
};

struct Header {
  std::string key;
  std::string value;
};

// One message to write.
struct Record {
  std::string topic = {};
  std::string key = {};  // empty: no key
  std::string value = {};
  std::vector<Header> headers = {};
  // Partitions by this instead of `key` when set (murmur2, as the Java client).
  std::string ordering_key = {};
  int64_t timestamp_ms = 0;  // 0: the backend's clock
  // >= 0: exactly this partition (the mirror keeps source partition p in
  // target partition p); a partition the topic lacks fails INVALID_ARGUMENT.
  int32_t partition = -1;
  // Placement of a record without key and ordering key. Kafka puts those of
  // one nonzero group in one partition, random per group: its producer sends
  // a request per partition, so a batch spread over them all costs a request
  // each. The publish path gives each batch a random group; the embedded
  // store ignores it (round robin). 0: each record a random partition.
  uint32_t keyless_group = 0;
};

// The outcome of one Publish. `status` is OK only once the broker
// acknowledged the record durably (Kafka: acks=all).
struct PublishOutcome {
  absl::Status status = {};
  bool retryable = false;  // decided by the backend's error-mapping table
  // The failure says the cluster is unhealthy (same table); it counts towards
  // opening the cluster's circuit breaker.
  bool counts_against_cluster = false;
  int32_t partition = -1;
  int64_t offset = -1;
  int64_t timestamp_ms = 0;
  // Failed without being sent, because an earlier record of its batch with
  // the same ordering key failed first (see Cluster::PublishBatch).
  bool behind_failed_key = false;
};

using PublishCallback = std::function<void(PublishOutcome)>;

// A header as views into memory owned elsewhere.
struct HeaderView {
  std::string_view key;
  std::string_view value;
};

// One message of a RecordBatch: views into memory the caller keeps valid
// until the batch's callback ran. Fields as in Record.
struct RecordView {
  std::string_view key = {};  // empty: no key
  std::string_view value = {};
  std::string_view ordering_key = {};
  // The record's headers are RecordBatch::headers[first_header,
  // first_header + header_count).
  uint32_t first_header = 0;
  uint32_t header_count = 0;
  int64_t timestamp_ms = 0;
  int32_t partition = -1;
};

// Messages for one topic, written with one call (Cluster::PublishBatch), so
// a backend pays its per-call costs once per batch and can reference the
// caller's bytes instead of copying them into a Record each.
struct RecordBatch {
  std::string topic = {};
  std::vector<RecordView> records = {};
  std::vector<HeaderView> headers = {};
  // Record::keyless_group for every record of the batch without a key and
  // ordering key.
  uint32_t keyless_group = 0;

  std::span<const HeaderView> HeadersOf(const RecordView& record) const {
    return std::span<const HeaderView>(headers).subspan(record.first_header,
                                                        record.header_count);
  }
};

// The records partition by this: the ordering key if set, else the key;
// empty: unordered.
inline std::string_view OrderingKeyOf(const RecordView& record) {
  return record.ordering_key.empty() ? record.key : record.ordering_key;
}

// Runs once per batch with one outcome per record, `outcomes[i]` being
// `records[i]`'s (valid during the call only).
using BatchCallback = std::function<void(std::span<const PublishOutcome> outcomes)>;

struct PartitionInfo {
  int32_t id = 0;
  int32_t leader = -1;
  std::vector<int32_t> replicas;
  std::vector<int32_t> in_sync_replicas;
  int64_t low_watermark = -1;
  int64_t high_watermark = -1;
};

struct TopicInfo {
  std::string name = {};
  std::vector<PartitionInfo> partitions = {};
};

// One broker cluster as ferryd sees it; every backend (Kafka, embedded)
// implements it. Implementations are thread-safe.
class Cluster {
 public:
  virtual ~Cluster() = default;

  virtual const std::string& name() const = 0;
  virtual std::string_view type() const = 0;
  virtual const std::string& bootstrap() const = 0;

  // The last known status, without I/O.
  virtual ClusterStatus Status() const = 0;

  // Asks the cluster now, bounded by its probe timeout, and records the
  // outcome as the new status. Blocks the calling thread: not for use on a
  // gRPC callback thread.
  virtual ClusterStatus Describe(bool include_topics) = 0;

  // Writes `record` asynchronously. `done` runs exactly once, on a backend
  // thread, possibly before Publish returns; it must not block. Records
  // with the same partitioning key reach the same partition in call order.
  virtual void Publish(Record record, PublishCallback done) = 0;
  // Writes the records of `batch` asynchronously, in order; the per-message
  // cost of Publish (a Record, a callback and a completion each) is paid
  // once per batch. `done` runs exactly once, when every record has its
  // outcome, on a backend thread or before PublishBatch returns; it must not
  // block. `batch` and every byte its views name must stay valid until
  // `done` ran: backends reference them instead of copying. A record whose
  // ordering key is that of an earlier record of the batch that already
  // failed when its turn came is not written: it gets that record's failure
  // with behind_failed_key set, so a retry of the earlier record cannot land
  // behind it. Each outcome is OK only once the record is durably written,
  // as with Publish.
  virtual void PublishBatch(const RecordBatch& batch, BatchCallback done) = 0;
  // For shutdown, once the drain grace is over: fails the records still
  // waiting for the broker (UNAVAILABLE, retryable), so their callbacks run
  // now instead of after the publish timeout. Later publishes work as usual.
  virtual void FailPendingPublishes() {}

  // Topic administration. Blocking (bounded by the backend's admin timeout);
  // errors carry the backend's reason and a gRPC-compatible code.
  virtual absl::StatusOr<TopicInfo> DescribeTopic(const std::string& topic) = 0;
  // DescribeTopic bounded by `timeout` when that is shorter than the admin
  // timeout: for a caller that must stay quick to stop (a starting node's
  // control plane). Backends without remote calls ignore it.
  virtual absl::StatusOr<TopicInfo> DescribeTopicWithin(const std::string& topic,
                                                        absl::Duration timeout) {
    static_cast<void>(timeout);
    return DescribeTopic(topic);
  }
  virtual absl::Status CreateTopic(const std::string& topic, int partitions,
                                   int replication_factor,
                                   const std::map<std::string, std::string>& configs) = 0;
  virtual absl::Status DeleteTopic(const std::string& topic) = 0;

  // Consuming (see group_member.h). Joins `options.group` as a new member
  // whose callbacks go to `listener` (which must outlive the member). Fails
  // only for invalid options; an unreachable cluster is retried by the member
  // and reported through OnError.
  virtual absl::StatusOr<std::unique_ptr<GroupMember>> JoinGroup(
      const GroupMemberOptions& options, GroupMemberListener* listener) = 0;
  // Whether a member uses this cluster until it is destroyed (the embedded
  // store, a fake's coordinator). A cluster whose members do not may be
  // closed while one is still leaving (backend::CloseClusters).
  virtual bool MembersUseCluster() const { return true; }

  // Group offsets, for administration (blocking, bounded by the admin
  // timeout). Committed offsets of every partition of `topics` (empty: of the
  // topics the group has committed offsets in); a partition without a
  // committed offset maps to -1.
  virtual absl::StatusOr<std::map<TopicPartition, int64_t>> CommittedOffsets(
      const std::string& group, const std::vector<std::string>& topics) = 0;
  // CommittedOffsets bounded by `timeout` when that is shorter than the admin
  // timeout: for a caller bound by a deadline of its own (a translation
  // inside a write hold). Backends without remote calls ignore it.
  virtual absl::StatusOr<std::map<TopicPartition, int64_t>> CommittedOffsetsWithin(
      const std::string& group, const std::vector<std::string>& topics,
      absl::Duration timeout) {
    static_cast<void>(timeout);
    return CommittedOffsets(group, topics);
  }
  // Overwrites committed offsets. Kafka refuses this while the group has
  // active members (FAILED_PRECONDITION); live groups are moved by their
  // members (GroupMember::Seek).
  virtual absl::Status AlterCommittedOffsets(
      const std::string& group, const std::map<TopicPartition, int64_t>& offsets) = 0;
  // The earliest offset of each partition of `topic` whose timestamp is at or
  // after `timestamp_ms` (the high watermark where there is none).
  virtual absl::StatusOr<std::map<TopicPartition, int64_t>> OffsetsForTime(
      const std::string& topic, int64_t timestamp_ms) = 0;
  // Consumer groups known to the cluster.
  virtual absl::StatusOr<std::vector<std::string>> ListGroups() = 0;
  // Members and their assignments. Backends without a broker-side group
  // coordinator (embedded: one node) answer UNIMPLEMENTED and the node's own
  // view is the whole truth.
  virtual absl::StatusOr<GroupDescription> DescribeGroup(const std::string& group) {
    return absl::UnimplementedError(
        fmt::format("cluster {} has no group coordinator to describe {}", name(), group));
  }
};

inline std::string_view ToString(ClusterState state) {
  switch (state) {
    case ClusterState::kConnecting:
      return "connecting";
    case ClusterState::kUp:
      return "up";
    case ClusterState::kDown:
      return "down";
  }
  return "unknown";
}

}  // namespace ferry::backend
