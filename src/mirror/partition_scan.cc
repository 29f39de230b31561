#include "mirror/partition_scan.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ferry::mirror {
namespace {

constexpr absl::Duration kCheckInterval = absl::Milliseconds(50);

class Scan final : public backend::GroupMemberListener {
 public:
  struct Partition {
    PartitionToScan target;
    bool done = false;
    // The quiet period counts from the assignment: until then (connecting,
    // metadata) only the deadline ends the wait.
    absl::Time last_progress = absl::InfiniteFuture();
  };

  explicit Scan(const std::map<backend::TopicPartition, PartitionToScan>& partitions) {
    for (const auto& [tp, target] : partitions) scans_[tp].target = target;
  }

  // Waits until every partition is done; false at `deadline`.
  bool Wait(absl::Time deadline, absl::Duration quiet) {
    absl::MutexLock lock(&mu_);
    while (true) {
      const absl::Time now = absl::Now();
      bool all_done = true;
      for (auto& [tp, scan] : scans_) {
        if (!scan.done && now - scan.last_progress >= quiet) scan.done = true;
        all_done &= scan.done;
      }
      if (all_done) return true;
      if (now >= deadline) return false;
      mu_.AwaitWithTimeout(absl::Condition(
                               +[](bool* b) { return *b; }, &changed_),
                           std::min(kCheckInterval, deadline - now));
      changed_ = false;
    }
  }

  void OnAssigned(const std::vector<backend::AssignedPartition>& assigned) override {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    for (const backend::AssignedPartition& a : assigned) {
      auto it = scans_.find(a.partition);
      if (it != scans_.end()) it->second.last_progress = now;
    }
  }
  std::map<backend::TopicPartition, int64_t> OnRevoked(
      const std::vector<backend::TopicPartition>&) override {
    return {};
  }
  void OnRecords(std::vector<backend::ConsumedRecord> records) override {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    for (const backend::ConsumedRecord& record : records) {
      auto it = scans_.find({record.topic, record.partition});
      if (it == scans_.end() || it->second.done) continue;
      Partition& scan = it->second;
      scan.last_progress = now;
      // Sinks are plain state machines: calling them under the lock is safe.
      scan.done = scan.target.sink->Add(record) || record.offset + 1 >= scan.target.end;
      changed_ |= scan.done;
    }
  }
  void OnSeekDone(const backend::TopicPartition&, int64_t) override {}
  void OnError(const absl::Status&) override {}

 private:
  absl::Mutex mu_;
  std::map<backend::TopicPartition, Partition> scans_ ABSL_GUARDED_BY(mu_);
  bool changed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

absl::Status ScanPartitions(
    backend::Cluster& cluster, const std::string& reader_name,
    const std::map<backend::TopicPartition, PartitionToScan>& partitions,
    absl::Time deadline, absl::Duration quiet) {
  if (partitions.empty()) return absl::OkStatus();
  std::vector<std::string> topics;
  for (const auto& [tp, unused] : partitions) {
    if (topics.empty() || topics.back() != tp.topic) topics.push_back(tp.topic);
  }
  Scan scan(partitions);
  auto reader =
      cluster.JoinGroup({.group = reader_name,
                         .topics = topics,
                         .start = {.kind = backend::StartPosition::Kind::kEarliest},
                         .standalone = true},
                        &scan);
  if (!reader.ok()) return reader.status();
  const bool finished = scan.Wait(deadline, quiet);
  reader->reset();  // stops the reader before `scan` goes
  if (finished) return absl::OkStatus();
  return absl::DeadlineExceededError(
      fmt::format("reading {} of cluster {} did not finish in time",
                  fmt::join(topics, ", "), cluster.name()));
}

}  // namespace ferry::mirror
