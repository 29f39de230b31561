#include "mirror/offset_translator.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "backend/group_member.h"
#include "mirror/mirror_job.h"
#include "mirror/origin.h"

namespace ferry::mirror {
namespace {

constexpr absl::Duration kCheckInterval = absl::Milliseconds(50);

// Reads the target partitions that need an answer, each until its first
// copy of a record at or after the group's offset, or its end.
class TargetScan final : public backend::GroupMemberListener {
 public:
  struct Partition {
    int64_t from = 0;  // the group's source offset
    int64_t end = 0;   // the target's high watermark when the scan began
    std::optional<int64_t> found = std::nullopt;
    bool done = false;
    // The quiet period counts from the assignment: until then (connecting,
    // metadata) only the deadline ends the wait.
    absl::Time last_progress = absl::InfiniteFuture();
  };

  TargetScan(std::string source_cluster,
             std::map<backend::TopicPartition, Partition> scans)
      : source_cluster_(std::move(source_cluster)), scans_(std::move(scans)) {}

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

  std::map<backend::TopicPartition, Partition> Results() const {
    absl::MutexLock lock(&mu_);
    return scans_;
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
      const backend::TopicPartition tp{record.topic, record.partition};
      auto it = scans_.find(tp);
      if (it == scans_.end() || it->second.done) continue;
      Partition& scan = it->second;
      scan.last_progress = now;
      const std::optional<int64_t> origin =
          CopiedFrom(record.headers, source_cluster_, tp);
      if (origin.has_value() && *origin >= scan.from) scan.found = record.offset;
      scan.done = scan.found.has_value() || record.offset + 1 >= scan.end;
      changed_ |= scan.done;
    }
  }
  void OnSeekDone(const backend::TopicPartition&, int64_t) override {}
  void OnError(const absl::Status&) override {}

 private:
  const std::string source_cluster_;
  mutable absl::Mutex mu_;
  std::map<backend::TopicPartition, Partition> scans_ ABSL_GUARDED_BY(mu_);
  bool changed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::optional<int64_t> CopiedFrom(const std::vector<backend::HeaderView>& headers,
                                  const std::string& source_cluster,
                                  const backend::TopicPartition& partition) {
  for (const backend::HeaderView& header : headers) {
    if (header.key != kOriginHeader) continue;
    std::optional<Origin> origin = ParseOrigin(header.value);
    if (origin && origin->cluster == source_cluster && origin->partition == partition) {
      return origin->offset;
    }
    return std::nullopt;
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<Translation>> TranslateOffsets(
    const control::MirrorSpec& job, const std::string& group, backend::Cluster& source,
    backend::Cluster& target, const TranslateOptions& options) {
  const absl::Time deadline = absl::Now() + options.timeout;
  auto group_offsets = source.CommittedOffsets(group, job.topics);
  if (!group_offsets.ok()) return group_offsets.status();
  auto mirrored = source.CommittedOffsets(MirrorGroup(job.name), job.topics);
  if (!mirrored.ok()) return mirrored.status();
  const auto offset_of = [](const std::map<backend::TopicPartition, int64_t>& offsets,
                            const backend::TopicPartition& tp) {
    auto it = offsets.find(tp);
    return it == offsets.end() ? int64_t{-1} : it->second;
  };

  std::vector<Translation> translations;
  std::map<backend::TopicPartition, TargetScan::Partition> scans;
  for (const std::string& topic : job.topics) {
    auto from = source.DescribeTopic(topic);
    if (!from.ok()) return from.status();
    auto to = target.DescribeTopic(topic);
    if (!to.ok() && to.status().code() != absl::StatusCode::kNotFound) return to.status();
    for (const backend::PartitionInfo& p : from->partitions) {
      const backend::TopicPartition tp{topic, p.id};
      Translation& t = translations.emplace_back(
          Translation{.partition = tp,
                      .group_offset = offset_of(*group_offsets, tp),
                      .mirrored_offset = offset_of(*mirrored, tp)});
      if (t.group_offset < 0) continue;
      t.state = Translation::State::kNotYetMirrored;
      if (!to.ok() || p.id >= static_cast<int32_t>(to->partitions.size())) continue;
      const backend::PartitionInfo& copy = to->partitions[p.id];
      if (copy.high_watermark > copy.low_watermark) {
        scans[tp] = {.from = t.group_offset, .end = copy.high_watermark};
      }
    }
  }
  if (scans.empty()) return translations;

  std::vector<std::string> topics;
  for (const auto& [tp, scan] : scans) {
    if (topics.empty() || topics.back() != tp.topic) topics.push_back(tp.topic);
  }
  TargetScan scan(job.source, std::move(scans));
  auto reader =
      target.JoinGroup({.group = fmt::format("ferry-translate-{}", job.name),
                        .topics = topics,
                        .start = {.kind = backend::StartPosition::Kind::kEarliest},
                        .standalone = true},
                       &scan);
  if (!reader.ok()) return reader.status();
  const bool finished = scan.Wait(deadline, options.quiet);
  reader->reset();  // stops the reader before `scan` goes
  if (!finished) {
    return absl::DeadlineExceededError(
        fmt::format("reading the target {} of mirror job {} took longer than {}",
                    target.name(), job.name, absl::FormatDuration(options.timeout)));
  }
  const auto results = scan.Results();
  for (Translation& t : translations) {
    auto it = results.find(t.partition);
    if (it == results.end() || !it->second.found.has_value()) continue;
    t.state = Translation::State::kTranslated;
    t.target_offset = *it->second.found;
  }
  return translations;
}

}  // namespace ferry::mirror
