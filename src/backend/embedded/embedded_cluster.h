#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "backend/cluster.h"
#include "backend/embedded/embedded_group_member.h"
#include "backend/embedded/group_coordinator.h"
#include "backend/embedded/store.h"
#include "backend/embedded/writer.h"
#include "config/config.h"

namespace ferry::backend::embedded {

// A single-machine cluster on a RocksDB directory (type "embedded"): topics,
// publishing, consumer groups and retention, with Kafka's semantics where
// they apply (murmur2 partitioning, dense offsets, committed group offsets).
//
// Publish never blocks: records go to the writer thread, which appends them
// in call order and runs the callbacks once the write is synced (both
// durability modes fsync before acknowledging; `batch` waits up to
// group_commit for more records to share one fsync). A retention thread
// deletes expired records from the head of each partition.
class EmbeddedCluster final : public Cluster {
 public:
  enum class Durability { kSync, kBatch };
  struct Options {
    std::string path = "./ferry-data";
    Durability durability = Durability::kSync;
    // Batch mode: the longest a record waits for others to share its write.
    absl::Duration group_commit = absl::Milliseconds(2);
    int max_batch_records = 1000;
    // Defaults for topics created without retention.ms / retention.bytes;
    // -1 is unlimited.
    int64_t retention_ms = int64_t{7} * 24 * 3600 * 1000;
    int64_t retention_bytes = -1;
    absl::Duration retention_check_interval = absl::Minutes(1);
    EmbeddedGroupMember::Limits fetch_limits = {};
  };

  // The options of `clusters.NAME` (type embedded).
  static Options OptionsFrom(const config::ClusterConfig& config);

  // Opens (or creates) the store. Fails with a message naming the path when
  // the directory is not usable or another process has it open.
  static absl::StatusOr<std::unique_ptr<EmbeddedCluster>> Open(std::string name,
                                                               const Options& options);

  // Writes what is queued (running its callbacks), stops the threads and
  // closes the store. Group members must be destroyed before.
  ~EmbeddedCluster() override;

  const std::string& name() const override { return name_; }
  std::string_view type() const override { return "embedded"; }
  // The store's directory.
  const std::string& bootstrap() const override { return store_->path(); }
  ClusterStatus Status() const override;
  ClusterStatus Describe(bool include_topics) override;
  void Publish(Record record, PublishCallback done) override;
  // The batch's records go into one synced write.
  void PublishBatch(const RecordBatch& batch, BatchCallback done) override;
  absl::StatusOr<TopicInfo> DescribeTopic(const std::string& topic) override;
  absl::Status CreateTopic(const std::string& topic, int partitions,
                           int replication_factor,
                           const std::map<std::string, std::string>& configs) override;
  absl::Status DeleteTopic(const std::string& topic) override;
  absl::StatusOr<std::unique_ptr<GroupMember>> JoinGroup(
      const GroupMemberOptions& options, GroupMemberListener* listener) override;
  absl::StatusOr<std::map<TopicPartition, int64_t>> CommittedOffsets(
      const std::string& group, const std::vector<std::string>& topics) override;
  absl::Status AlterCommittedOffsets(
      const std::string& group,
      const std::map<TopicPartition, int64_t>& offsets) override;
  absl::StatusOr<std::map<TopicPartition, int64_t>> OffsetsForTime(
      const std::string& topic, int64_t timestamp_ms) override;
  absl::StatusOr<std::vector<std::string>> ListGroups() override;
  // The members on this node (there are no others) and what they own: state
  // "Stable" with members, "Empty" with only committed offsets, else "Dead".
  absl::StatusOr<GroupDescription> DescribeGroup(const std::string& group) override;

  // One retention pass now (the retention thread runs one per interval).
  absl::StatusOr<int64_t> EnforceRetention();

 private:
  EmbeddedCluster(std::string name, const Options& options, std::unique_ptr<Store> store);
  void RetentionLoop();

  const std::string name_;
  const Options options_;
  const std::unique_ptr<Store> store_;
  GroupCoordinator coordinator_;
  std::unique_ptr<Writer> writer_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread retention_thread_;
};

}  // namespace ferry::backend::embedded
