#pragma once

#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "backend/embedded/group_coordinator.h"
#include "backend/embedded/store.h"
#include "backend/group_member.h"

namespace ferry::backend::embedded {

// A consumer group member on the embedded store. Its member thread owns the
// topics the coordinator gives it (every partition of them), tails the store
// and hands records over in bounded batches: the next batch is read only
// after OnRecords returned, so nothing is read ahead. When caught up it
// sleeps until woken (records appended, a command, a group change): there
// is no polling interval.
//
// A standalone member (GroupMemberOptions::standalone) joins no group of the
// coordinator (it is only woken by it), owns every partition of its topics
// (only `partitions`, when set), starts each at its start offset or else the start
// position and commits nothing to the store, so the group never shows in ListGroups.
class EmbeddedGroupMember final : public GroupMember, public Wakeable {
 public:
  struct Limits {
    int max_records = 500;        // per OnRecords call
    int64_t max_bytes = 1 << 20;  // per OnRecords call (at least one record)
  };

  // Joins the coordinator and starts the member thread. `store`,
  // `coordinator` and `listener` outlive the member.
  EmbeddedGroupMember(Store* store, GroupCoordinator* coordinator,
                      const GroupMemberOptions& options, GroupMemberListener* listener,
                      const Limits& limits);
  ~EmbeddedGroupMember() override;

  void SetTopics(std::vector<std::string> topics) override;
  void Commit(std::map<TopicPartition, int64_t> offsets) override;
  void Pause(const std::vector<TopicPartition>& partitions) override;
  void Resume(const std::vector<TopicPartition>& partitions) override;
  void Seek(const TopicPartition& partition, int64_t offset) override;
  int64_t HighWatermark(const TopicPartition& partition) const override;
  void Wake() override;

 private:
  // A topic this member owns, as it was when assigned.
  struct OwnedTopic {
    uint64_t id = 0;
    int32_t partitions = 0;
  };

  void Run();
  void CommitNow(const std::map<TopicPartition, int64_t>& offsets);
  void ApplySeeks(std::vector<std::pair<TopicPartition, int64_t>> seeks);
  // Releases what this member should no longer own and takes what it
  // should, with OnRevoked / OnAssigned.
  void Rebalance(const std::vector<std::string>& subscription);
  void Revoke(const std::vector<std::string>& topics, bool commit);
  void Assign(const std::string& topic, const TopicMeta& meta);
  int64_t StartOffset(const std::string& topic, int32_t partition);
  // Reads the next batch from unpaused partitions, round-robin so a busy
  // partition cannot starve the others; true if it delivered records.
  bool DeliverBatch(const std::set<TopicPartition>& paused);
  // With fail_out_of_range: true, reported once through OnError, while the
  // partition's position is below its log's start (Kafka's
  // auto.offset.reset=error), instead of reading on from the start.
  bool OutOfRange(const TopicPartition& partition);

  Store* const store_;
  GroupCoordinator* const coordinator_;
  GroupMemberListener* const listener_;
  const std::string group_;
  const bool standalone_;
  const StartPosition start_;
  const std::map<TopicPartition, int64_t> start_offsets_;  // standalone only
  const std::set<TopicPartition> chosen_partitions_;       // standalone only
  const bool fail_out_of_range_;
  const Limits limits_;

  absl::Mutex mu_;
  // Commands for the member thread.
  std::vector<std::string> topics_ ABSL_GUARDED_BY(mu_);
  std::map<TopicPartition, int64_t> commits_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<TopicPartition, int64_t>> seeks_ ABSL_GUARDED_BY(mu_);
  std::set<TopicPartition> paused_ ABSL_GUARDED_BY(mu_);
  bool woken_ ABSL_GUARDED_BY(mu_) = true;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Member thread only.
  std::map<std::string, OwnedTopic> owned_;
  std::map<TopicPartition, int64_t> positions_;  // next offset to deliver
  std::set<std::string> reported_missing_;
  // With fail_out_of_range: partitions whose position fell below their log's
  // start, reported and not read on until assigned or sought again.
  std::set<TopicPartition> out_of_range_;
  size_t next_partition_ = 0;  // where the next round-robin pass starts

  std::thread thread_;
};

}  // namespace ferry::backend::embedded
