#include "admin/latest_messages.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "absl/synchronization/mutex.h"

namespace ferry::admin {
namespace {

constexpr absl::Duration kCheckInterval = absl::Milliseconds(50);

// Collects the records of [from, end) of each partition. The reader starts
// at the partitions' ends (nothing to read) and is moved back to `from` as
// each partition is assigned.
class TailReader final : public backend::GroupMemberListener {
 public:
  struct Range {
    int64_t from = 0;
    int64_t end = 0;  // the high watermark when the read began
    bool done = false;
    // Only the deadline ends the wait before the assignment.
    absl::Time last_progress = absl::InfiniteFuture();
  };

  explicit TailReader(std::map<backend::TopicPartition, Range> ranges)
      : starts_(Starts(ranges)), ranges_(std::move(ranges)) {}

  // Seeks the partitions assigned before the member was known, and those
  // assigned from now on.
  void Attach(backend::GroupMember* member) {
    std::vector<backend::TopicPartition> pending;
    {
      absl::MutexLock lock(&mu_);
      member_ = member;
      pending.swap(pending_);
    }
    SeekToStarts(member, pending);
  }

  // Waits until every partition is read, or `deadline`.
  void Wait(absl::Time deadline, absl::Duration quiet) {
    absl::MutexLock lock(&mu_);
    while (true) {
      const absl::Time now = absl::Now();
      bool all_done = true;
      for (auto& [tp, range] : ranges_) {
        if (!range.done && now - range.last_progress >= quiet) range.done = true;
        all_done &= range.done;
      }
      if (all_done || now >= deadline) return;
      mu_.AwaitWithTimeout(absl::Condition(&changed_),
                           std::min(kCheckInterval, deadline - now));
      changed_ = false;
    }
  }

  std::vector<backend::ConsumedRecord> TakeRecords() {
    absl::MutexLock lock(&mu_);
    return std::move(records_);
  }

  void OnAssigned(const std::vector<backend::AssignedPartition>& assigned) override {
    std::vector<backend::TopicPartition> partitions;
    backend::GroupMember* member = nullptr;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = absl::Now();
      for (const backend::AssignedPartition& a : assigned) {
        auto it = ranges_.find(a.partition);
        if (it == ranges_.end()) continue;
        it->second.last_progress = now;
        partitions.push_back(a.partition);
      }
      member = member_;
      if (member == nullptr)
        pending_.insert(pending_.end(), partitions.begin(), partitions.end());
    }
    // Outside the lock: a seek may complete inline and call OnSeekDone.
    if (member != nullptr) SeekToStarts(member, partitions);
  }
  std::map<backend::TopicPartition, int64_t> OnRevoked(
      const std::vector<backend::TopicPartition>&) override {
    return {};
  }
  void OnRecords(std::vector<backend::ConsumedRecord> records) override {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    for (backend::ConsumedRecord& record : records) {
      auto it = ranges_.find({record.topic, record.partition});
      if (it == ranges_.end() || it->second.done) continue;
      Range& range = it->second;
      range.last_progress = now;
      if (record.offset < range.from || record.offset >= range.end) continue;
      range.done = record.offset + 1 >= range.end;
      changed_ |= range.done;
      records_.push_back(std::move(record));
    }
  }
  void OnSeekDone(const backend::TopicPartition&, int64_t) override {}
  void OnError(const absl::Status&) override {}

 private:
  static std::map<backend::TopicPartition, int64_t> Starts(
      const std::map<backend::TopicPartition, Range>& ranges) {
    std::map<backend::TopicPartition, int64_t> starts;
    for (const auto& [tp, range] : ranges) starts[tp] = range.from;
    return starts;
  }

  void SeekToStarts(backend::GroupMember* member,
                    const std::vector<backend::TopicPartition>& partitions) {
    for (const backend::TopicPartition& tp : partitions) member->Seek(tp, starts_.at(tp));
  }

  const std::map<backend::TopicPartition, int64_t> starts_;
  absl::Mutex mu_;
  std::map<backend::TopicPartition, Range> ranges_ ABSL_GUARDED_BY(mu_);
  backend::GroupMember* member_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<backend::TopicPartition> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<backend::ConsumedRecord> records_ ABSL_GUARDED_BY(mu_);
  bool changed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

absl::StatusOr<std::vector<backend::ConsumedRecord>> LatestMessages(
    backend::Cluster& cluster, const std::string& topic,
    const LatestMessagesOptions& options) {
  if (options.limit < 1 || options.limit > kMaxLatestMessages) {
    return absl::InvalidArgumentError(
        fmt::format("limit: {} is not in 1..{}", options.limit, kMaxLatestMessages));
  }
  const absl::Time deadline = absl::Now() + options.timeout;
  absl::StatusOr<backend::TopicInfo> info = cluster.DescribeTopic(topic);
  if (!info.ok()) return info.status();
  std::map<backend::TopicPartition, TailReader::Range> ranges;
  for (const backend::PartitionInfo& p : info->partitions) {
    const int64_t from = std::max(p.low_watermark, p.high_watermark - options.limit);
    if (from < p.high_watermark) {
      ranges[{topic, p.id}] = {.from = from, .end = p.high_watermark};
    }
  }
  if (ranges.empty()) return std::vector<backend::ConsumedRecord>{};

  TailReader reader(std::move(ranges));
  auto member =
      cluster.JoinGroup({.group = fmt::format("ferry-tail-{}", topic),
                         .client_id = "ferryd/tail",
                         .topics = {topic},
                         .start = {.kind = backend::StartPosition::Kind::kLatest},
                         .standalone = true},
                        &reader);
  if (!member.ok()) return member.status();
  reader.Attach(member->get());
  reader.Wait(deadline, options.quiet);
  member->reset();  // stops the member before `reader` goes
  std::vector<backend::ConsumedRecord> records = reader.TakeRecords();
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
    return std::tie(b.timestamp_ms, b.partition, b.offset) <
           std::tie(a.timestamp_ms, a.partition, a.offset);
  });
  if (records.size() > static_cast<size_t>(options.limit)) records.resize(options.limit);
  return records;
}

}  // namespace ferry::admin
