#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
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
  absl::Status status;
  bool retryable = false;  // decided by the backend's error-mapping table
  // The failure says the cluster is unhealthy (same table); it counts towards
  // opening the cluster's circuit breaker.
  bool counts_against_cluster = false;
  int32_t partition = -1;
  int64_t offset = -1;
  int64_t timestamp_ms = 0;
};

using PublishCallback = std::function<void(PublishOutcome)>;

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
  // For shutdown, once the drain grace is over: fails the records still
  // waiting for the broker (UNAVAILABLE, retryable), so their callbacks run
  // now instead of after the publish timeout. Later publishes work as usual.
  virtual void FailPendingPublishes() {}

  // Topic administration. Blocking (bounded by the backend's admin timeout);
  // errors carry the backend's reason and a gRPC-compatible code.
  virtual absl::StatusOr<TopicInfo> DescribeTopic(const std::string& topic) = 0;
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

  // Group offsets, for administration (blocking, bounded by the admin
  // timeout). Committed offsets of every partition of `topics` (empty: of the
  // topics the group has committed offsets in); a partition without a
  // committed offset maps to -1.
  virtual absl::StatusOr<std::map<TopicPartition, int64_t>> CommittedOffsets(
      const std::string& group, const std::vector<std::string>& topics) = 0;
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
