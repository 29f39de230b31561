#include "backend/partition_scan.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/synchronization/mutex.h"
#include "backend/member_leave.h"

namespace ferry::backend {
namespace {

constexpr absl::Duration kCheckInterval = absl::Milliseconds(50);
// How long closing the reader may take before it is abandoned. It joined no
// group and commits nothing: closing ends its fetch in flight (librdkafka's
// fetch.wait.max.ms, 500 ms by default) and its connections, well under
// this; only a stuck broker client takes longer. The admin call waiting for
// the scan answers at most this much later.
constexpr absl::Duration kReaderCloseTimeout = absl::Seconds(2);
// Abandoned readers of one cluster still closing past which new scans are
// refused: any scanning reader may be abandoned (its broker client's threads
// and sockets stay), so retries of an admin call against a stuck cluster
// would pile them up. While any is abandoned, scanning and abandoned readers
// together stay below this too: every new scan may be abandoned as well.
constexpr int kMaxAbandonedReaders = 3;
// Scans of one cluster at once on a healthy cluster; a further scan waits
// for a slot (console pages, translations, migration stages share them).
constexpr int kMaxScanningReaders = 16;

// Per cluster, the readers alive. Never destroyed: a reader may finish at
// exit.
struct LiveReaders {
  absl::Mutex mu;
  struct Count {
    int scanning = 0;
    int abandoned = 0;  // not finished closing yet
  };
  std::map<const Cluster*, Count> by_cluster ABSL_GUARDED_BY(mu);
  absl::CondVar slot_freed;  // signalled whenever a count goes down
};

LiveReaders& ReadersState() {
  static LiveReaders* const readers = new LiveReaders;
  return *readers;
}

// A reader's place among its cluster's readers, taken before it starts and
// held until it is gone: the scan's or, once abandoned, the leaving thread's
// (it releases the listener, so this, last).
class ReaderSlot {
 public:
  // The slot, taken in the same step as the counts are checked (concurrent
  // scans cannot all pass one check). Waits until `deadline` while
  // kMaxScanningReaders scan; UNAVAILABLE (IsScanRefused) while abandoned
  // readers still close, or when no slot was free by `deadline`.
  static absl::StatusOr<std::shared_ptr<ReaderSlot>> Take(
      const Cluster& cluster, std::shared_ptr<CuttableListener> listener,
      absl::Time deadline) {
    LiveReaders& readers = ReadersState();
    absl::MutexLock lock(&readers.mu);
    bool timed_out = false;
    while (true) {
      // Looked up again after each wait: an entry at zero is erased.
      LiveReaders::Count& count = readers.by_cluster[&cluster];
      if (count.abandoned > 0 &&
          count.abandoned + count.scanning >= kMaxAbandonedReaders) {
        return Refusal(fmt::format(
            "cluster {}: {} readers are closing past their bound (its broker client "
            "is stuck) and {} scanning",
            cluster.name(), count.abandoned, count.scanning));
      }
      if (count.scanning < kMaxScanningReaders) {
        ++count.scanning;
        return std::shared_ptr<ReaderSlot>(new ReaderSlot(&cluster, std::move(listener)));
      }
      if (timed_out) {
        return Refusal(fmt::format("cluster {}: {} scans running, none ended in time",
                                   cluster.name(), count.scanning));
      }
      timed_out = readers.slot_freed.WaitWithDeadline(&readers.mu, deadline);
    }
  }

  ~ReaderSlot() {
    LiveReaders& readers = ReadersState();
    absl::MutexLock lock(&readers.mu);
    LiveReaders::Count& count = readers.by_cluster[cluster_];
    --(abandoned_ ? count.abandoned : count.scanning);
    if (count.scanning == 0 && count.abandoned == 0) readers.by_cluster.erase(cluster_);
    readers.slot_freed.SignalAll();
  }
  ReaderSlot(const ReaderSlot&) = delete;
  ReaderSlot& operator=(const ReaderSlot&) = delete;

  void MarkAbandoned() {
    LiveReaders& readers = ReadersState();
    absl::MutexLock lock(&readers.mu);
    LiveReaders::Count& count = readers.by_cluster[cluster_];
    --count.scanning;
    ++count.abandoned;
    abandoned_ = true;
    readers.slot_freed.SignalAll();  // waiting scans are refused now
  }

 private:
  static absl::Status Refusal(const std::string& message) {
    absl::Status refused = absl::UnavailableError(message);
    refused.SetPayload(kScanRefusedPayload, absl::Cord("1"));
    return refused;
  }

  ReaderSlot(const Cluster* cluster, std::shared_ptr<CuttableListener> listener)
      : cluster_(cluster), listener_(std::move(listener)) {}

  const Cluster* const cluster_;
  const std::shared_ptr<CuttableListener> listener_;
  bool abandoned_ = false;  // guarded by ReadersState().mu
};

// Hands each partition's records to its sink. The reader is assigned every
// partition with a start offset at that offset (GroupMemberOptions::
// start_offsets), so its first fetch is from there and no seek is needed: a
// seek after an assignment elsewhere left a window in which records of the
// other position arrived (bench/RESULTS.md, branch migflake). A reader may
// still lose and get back a partition (the embedded store re-assigns a topic
// deleted and re-created during the scan, at the start offsets again): a
// revocation fails every unfinished partition (ABORTED), as the sink has
// records of the partition it lost and the second assignment would hand
// them again, or those of another log. Records count only after an
// assignment at `from`: one anywhere else (a backend not honouring the
// start offsets) ends its partition without reaching the sink, and the scan
// fails.
class Scan final : public GroupMemberListener {
 public:
  struct Partition {
    PartitionToScan target;
    bool done = false;
    // The reader was assigned the partition at `from` (or at its start,
    // without one): its records are the scan's.
    bool positioned = false;
    // The quiet period counts from the assignment: until then (connecting,
    // metadata) only the deadline ends the wait.
    absl::Time last_progress = absl::InfiniteFuture();
  };

  explicit Scan(const std::map<TopicPartition, PartitionToScan>& partitions) {
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

  void OnAssigned(const std::vector<AssignedPartition>& assigned) override {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    for (const AssignedPartition& a : assigned) {
      auto it = scans_.find(a.partition);
      // A partition done (its sink has its answer, or it failed) stays so.
      if (it == scans_.end() || it->second.done) continue;
      Partition& scan = it->second;
      const std::optional<int64_t> from = scan.target.from;
      scan.positioned = !from.has_value() || a.next_offset == *from;
      scan.last_progress = now;
      if (scan.positioned) continue;
      Fail(scan, absl::InternalError(fmt::format(
                     "reader assigned {}/{} at {}, not at the scan's start {}: its "
                     "records were not read",
                     a.partition.topic, a.partition.partition, a.next_offset, *from)));
    }
  }
  std::map<TopicPartition, int64_t> OnRevoked(
      const std::vector<TopicPartition>& revoked) override {
    absl::MutexLock lock(&mu_);
    for (const TopicPartition& tp : revoked) {
      auto it = scans_.find(tp);
      if (it == scans_.end() || it->second.done) continue;
      Fail(it->second, absl::AbortedError(fmt::format(
                           "reader lost {}/{} (revoked during the scan: the topic was "
                           "deleted or re-created)",
                           tp.topic, tp.partition)));
    }
    return {};
  }
  void OnRecords(std::vector<ConsumedRecord> records) override {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    for (const ConsumedRecord& record : records) {
      auto it = scans_.find({record.topic, record.partition});
      if (it == scans_.end() || it->second.done || !it->second.positioned) continue;
      Partition& scan = it->second;
      scan.last_progress = now;
      // Nothing promises a member's records start at its assigned offset
      // (Kafka fetches whole batches): one before `from` is not the scan's,
      // the later ones still are.
      if (record.offset < scan.target.from.value_or(0)) continue;
      // Beyond the range the reader can only be when it jumped there (Kafka
      // resets a position below the log start, which `from` can fall
      // below after the offsets were read): what lay before is gone, and
      // this record must not count as if it came after `from`.
      if (record.offset >= scan.target.end) {
        scan.done = changed_ = true;
        continue;
      }
      // Sinks are plain state machines: calling them under the lock is safe.
      scan.done = scan.target.sink->Add(record) || record.offset + 1 >= scan.target.end;
      changed_ |= scan.done;
    }
  }
  // The scan never seeks.
  void OnSeekDone(const TopicPartition&, int64_t) override {}
  // Kept for the answer of a scan that does not finish in time. Out of
  // range (a start offset below the log start, fail_out_of_range) fails the
  // scan at once: the reader does not read that partition on, so quiet
  // would count it as read and hand its sink nothing. The error does not
  // name its partition, so every unfinished one fails.
  void OnError(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    last_error_ = status;
    if (status.code() != absl::StatusCode::kOutOfRange) return;
    for (auto& [tp, scan] : scans_) {
      if (!scan.done) Fail(scan, status);
    }
  }
  absl::Status last_error() {
    absl::MutexLock lock(&mu_);
    return last_error_;
  }
  // The first partition's failure: assigned anywhere but at its start
  // offset, or revoked before it was read.
  absl::Status failure() {
    absl::MutexLock lock(&mu_);
    return failure_;
  }

 private:
  absl::Mutex mu_;
  std::map<TopicPartition, Partition> scans_ ABSL_GUARDED_BY(mu_);
  bool changed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  absl::Status failure_ ABSL_GUARDED_BY(mu_);

  // Ends `scan` without its answer; the scan reports the first failure.
  void Fail(Partition& scan, absl::Status failure) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    scan.done = changed_ = true;
    if (failure_.ok()) failure_ = std::move(failure);
  }
};

}  // namespace

bool IsScanRefused(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable &&
         status.GetPayload(kScanRefusedPayload).has_value();
}

absl::Status RetryRefusedScans(absl::Time give_up, absl::FunctionRef<bool()> cancelled,
                               absl::FunctionRef<absl::Status()> attempt) {
  constexpr absl::Duration kFirstWait = absl::Milliseconds(100);
  constexpr absl::Duration kLongestWait = absl::Seconds(2);
  // How late a cancellation is noticed while waiting.
  constexpr absl::Duration kCancelCheck = absl::Milliseconds(100);
  const absl::Time start = absl::Now();
  absl::Duration wait = kFirstWait;
  for (int attempts = 1;; ++attempts) {
    absl::Status status = attempt();
    if (!IsScanRefused(status)) return status;
    const absl::Time now = absl::Now();
    if (now >= give_up) {
      absl::Status refused = absl::UnavailableError(fmt::format(
          "partition scans refused for {} ({} attempts), last: {}",
          absl::FormatDuration(now - start), attempts, std::string(status.message())));
      refused.SetPayload(kScanRefusedPayload, absl::Cord("1"));
      return refused;
    }
    const absl::Time next = std::min(now + wait, give_up);
    for (absl::Time t = now; t < next; t = absl::Now()) {
      if (cancelled()) {
        return absl::CancelledError(fmt::format(
            "cancelled while partition scans were refused ({} attempts), last: {}",
            attempts, std::string(status.message())));
      }
      absl::SleepFor(std::min(kCancelCheck, next - t));
    }
    wait = std::min(2 * wait, kLongestWait);
  }
}

absl::Status ScanPartitions(Cluster& cluster, const std::string& reader_name,
                            const std::map<TopicPartition, PartitionToScan>& partitions,
                            absl::Time deadline, absl::Duration quiet) {
  if (partitions.empty()) return absl::OkStatus();
  std::vector<std::string> topics;
  std::map<TopicPartition, int64_t> start_offsets;
  std::set<TopicPartition> scanned;
  for (const auto& [tp, target] : partitions) {
    if (topics.empty() || topics.back() != tp.topic) topics.push_back(tp.topic);
    if (target.from.has_value()) start_offsets[tp] = *target.from;
    scanned.insert(tp);
  }
  Scan scan(partitions);
  // The reader may be abandoned while closing, and call back after `scan`
  // is gone.
  auto listener = std::make_shared<CuttableListener>(&scan);
  absl::StatusOr<std::shared_ptr<ReaderSlot>> slot =
      ReaderSlot::Take(cluster, listener, deadline);
  if (!slot.ok()) return slot.status();
  // The reader owns only the scanned partitions: another one's start position
  // is not looked up, so one without a leader cannot hold up the scan.
  auto reader = cluster.JoinGroup({.group = reader_name,
                                   .topics = topics,
                                   .start = {.kind = StartPosition::Kind::kEarliest},
                                   .standalone = true,
                                   .start_offsets = std::move(start_offsets),
                                   .partitions = std::move(scanned),
                                   .fail_out_of_range = true},
                                  listener.get());
  if (!reader.ok()) return reader.status();
  const bool finished = scan.Wait(deadline, quiet);
  // Stops the reader before `scan` goes; bounded, as the admin call or
  // migration step waiting for this must answer.
  if (!LeaveOneWithin(
          *std::move(reader), std::shared_ptr<CuttableListener>(*slot, listener.get()),
          &cluster, ConsumerKind::kPartitionScan, kReaderCloseTimeout,
          fmt::format("reader {} of cluster {}", reader_name, cluster.name()))) {
    (*slot)->MarkAbandoned();
  }
  slot->reset();
  if (absl::Status failure = scan.failure(); !failure.ok()) return failure;
  if (finished) return absl::OkStatus();
  const absl::Status error = scan.last_error();
  return absl::DeadlineExceededError(
      fmt::format("reading {} of cluster {} did not finish in time{}",
                  fmt::join(topics, ", "), cluster.name(),
                  error.ok() ? "" : fmt::format(" (last error: {})", error.ToString())));
}

}  // namespace ferry::backend
