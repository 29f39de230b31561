#include "mirror/offset_translator.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>

#include "backend/partition_scan.h"
#include "mirror/mirror_job.h"
#include "mirror/origin.h"
#include "mirror/source_position.h"
#include "mirror/target_position.h"

namespace ferry::mirror {
namespace {

// Reads the partitions in `scans` of one of the job's clusters; errors name
// the job.
absl::Status Scan(
    const control::MirrorSpec& job, backend::Cluster& cluster,
    const std::map<backend::TopicPartition, backend::PartitionToScan>& scans,
    absl::Time deadline, absl::Duration quiet) {
  absl::Status s = backend::ScanPartitions(
      cluster, fmt::format("ferry-translate-{}", job.name), scans, deadline, quiet);
  if (s.ok()) return s;
  absl::Status named(
      s.code(), fmt::format("mirror job {}: {}", job.name, std::string(s.message())));
  // Callers retry a refused scan (backend::IsScanRefused).
  s.ForEachPayload([&named](absl::string_view url, const absl::Cord& payload) {
    named.SetPayload(url, payload);
  });
  return named;
}

int64_t ScanFrom(const ForwardHints& hints, const backend::TopicPartition& tp,
                 int64_t group_offset) {
  for (const Translation& t : hints.earlier) {
    if (t.partition == tp)
      return ForwardScanFrom(t.group_offset, t.searched_to, group_offset);
  }
  return 0;
}

std::optional<int64_t> Cutover(const ReturnHints& hints,
                               const backend::TopicPartition& tp) {
  auto it = hints.cutover.find(tp);
  if (it == hints.cutover.end()) return std::nullopt;
  return it->second;
}

std::optional<EarlierPass> EarlierFor(const ReturnHints& hints,
                                      const backend::TopicPartition& tp) {
  for (const ReturnPosition& r : hints.earlier) {
    if (r.partition != tp || !r.complete) continue;
    return EarlierPass{.target_committed = r.target_offset,
                       .source_committed = r.source_committed,
                       .last_source_read = r.last_source_read,
                       .first_unread = r.source_offset};
  }
  return std::nullopt;
}

}  // namespace

int64_t OffsetOf(const std::map<backend::TopicPartition, int64_t>& offsets,
                 const backend::TopicPartition& tp) {
  auto it = offsets.find(tp);
  return it == offsets.end() ? int64_t{-1} : it->second;
}

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

absl::StatusOr<std::vector<Translation>> TranslateOffsets(const control::MirrorSpec& job,
                                                          const std::string& group,
                                                          backend::Cluster& source,
                                                          backend::Cluster& target,
                                                          const TranslateOptions& options,
                                                          const ForwardHints& hints) {
  auto group_offsets = source.CommittedOffsets(group, job.topics);
  if (!group_offsets.ok()) return group_offsets.status();
  return TranslatePositions(job, *group_offsets, source, target, options, hints);
}

absl::StatusOr<std::vector<Translation>> TranslatePositions(
    const control::MirrorSpec& job,
    const std::map<backend::TopicPartition, int64_t>& positions, backend::Cluster& source,
    backend::Cluster& target, const TranslateOptions& options,
    const ForwardHints& hints) {
  const absl::Time deadline = absl::Now() + options.timeout;
  auto mirrored = source.CommittedOffsets(MirrorGroup(job.name), job.topics);
  if (!mirrored.ok()) return mirrored.status();

  std::vector<Translation> translations;
  std::map<backend::TopicPartition, std::unique_ptr<FirstCopyAtOrAfter>> sinks;
  std::map<backend::TopicPartition, backend::PartitionToScan> scans;
  for (const std::string& topic : job.topics) {
    auto from = source.DescribeTopic(topic);
    if (!from.ok()) return from.status();
    auto to = target.DescribeTopic(topic);
    if (!to.ok() && to.status().code() != absl::StatusCode::kNotFound) return to.status();
    for (const backend::PartitionInfo& p : from->partitions) {
      const backend::TopicPartition tp{topic, p.id};
      Translation& t = translations.emplace_back(
          Translation{.partition = tp,
                      .group_offset = OffsetOf(positions, tp),
                      .mirrored_offset = OffsetOf(*mirrored, tp)});
      if (t.group_offset < 0) continue;
      t.state = Translation::State::kNotYetMirrored;
      if (!to.ok() || p.id >= static_cast<int32_t>(to->partitions.size())) continue;
      const backend::PartitionInfo& copy = to->partitions[p.id];
      const int64_t from =
          std::max(ScanFrom(hints, tp, t.group_offset), copy.low_watermark);
      t.searched_to = from;
      if (copy.high_watermark > from) {
        auto& sink = sinks[tp] =
            std::make_unique<FirstCopyAtOrAfter>(job.source, tp, t.group_offset, from);
        scans[tp] = {.end = copy.high_watermark, .sink = sink.get(), .from = from};
      }
    }
  }
  if (absl::Status s = Scan(job, target, scans, deadline, options.quiet); !s.ok()) {
    return s;
  }
  for (Translation& t : translations) {
    auto it = sinks.find(t.partition);
    if (it == sinks.end()) continue;
    t.searched_to = it->second->searched_to();
    if (!it->second->found().has_value()) continue;
    t.state = Translation::State::kTranslated;
    t.target_offset = *it->second->found();
  }
  return translations;
}

std::optional<int64_t> TargetResumeOffset(const Translation& t, int64_t source_end,
                                          int64_t target_end) {
  switch (t.state) {
    case Translation::State::kTranslated:
      return t.target_offset;
    case Translation::State::kNotYetMirrored:
      if (t.group_offset == source_end && t.mirrored_offset >= t.group_offset) {
        return target_end;
      }
      return std::nullopt;
    case Translation::State::kNoGroupOffset:
      return std::nullopt;
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<ReturnPosition>> TranslateBack(
    const control::MirrorSpec& job, const std::string& group, backend::Cluster& source,
    backend::Cluster& target, bool copied_back, const ReturnHints& hints,
    const TranslateOptions& options) {
  const absl::Time deadline = absl::Now() + options.timeout;
  // The admin calls too end at the deadline (a write hold's bound), not
  // after the cluster's admin timeout.
  auto left = [deadline] {
    return std::max(deadline - absl::Now(), absl::ZeroDuration());
  };
  auto on_target = target.CommittedOffsetsWithin(group, job.topics, left());
  if (!on_target.ok()) return on_target.status();
  auto on_source = source.CommittedOffsetsWithin(group, job.topics, left());
  if (!on_source.ok()) return on_source.status();
  std::vector<ReturnPosition> positions;
  std::map<backend::TopicPartition, int64_t> source_ends;
  std::map<backend::TopicPartition, ReturnScanStart> starts;
  std::map<backend::TopicPartition, std::unique_ptr<SourcePosition>> read;
  std::map<backend::TopicPartition, backend::PartitionToScan> scans;
  for (const std::string& topic : job.topics) {
    auto to = target.DescribeTopicWithin(topic, left());
    if (!to.ok() && to.status().code() != absl::StatusCode::kNotFound) return to.status();
    auto from = source.DescribeTopicWithin(topic, left());
    if (!from.ok()) return from.status();
    for (const backend::PartitionInfo& p : from->partitions) {
      const backend::TopicPartition tp{topic, p.id};
      ReturnPosition& r = positions.emplace_back(ReturnPosition{
          .partition = tp,
          .target_offset = OffsetOf(*on_target, tp),
          .source_committed = OffsetOf(*on_source, tp),
      });
      source_ends[tp] = p.high_watermark;
      const ReturnScanStart& start = starts[tp] = PlanReturnScan(
          Cutover(hints, tp), r.target_offset, r.source_committed, EarlierFor(hints, tp));
      auto& sink = read[tp] = std::make_unique<SourcePosition>(
          job.source, tp, r.target_offset, start.read_before);
      const backend::PartitionInfo* copy =
          to.ok() && p.id < static_cast<int32_t>(to->partitions.size())
              ? &to->partitions[p.id]
              : nullptr;
      const int64_t target_from =
          copy == nullptr ? start.target : std::max(start.target, copy->low_watermark);
      // Nothing the group read lies at or after target_from's records.
      if (r.target_offset < 0 || copy == nullptr || r.target_offset <= target_from) {
        sink->NothingBefore();
      } else {
        scans[tp] = {
            .end = copy->high_watermark, .sink = sink.get(), .from = target_from};
      }
    }
  }
  if (absl::Status s = Scan(job, target, scans, deadline, options.quiet); !s.ok()) {
    return s;
  }
  for (ReturnPosition& r : positions) {
    const SourcePosition& sink = *read.at(r.partition);
    r.complete = sink.complete();
    r.last_source_read = sink.last_source_read();
    if (r.complete) r.source_offset = sink.ResumeOnSource(r.source_committed);
  }
  if (!copied_back) return positions;

  std::map<backend::TopicPartition, std::unique_ptr<FirstUnreadOnSource>> unread;
  scans.clear();
  for (const ReturnPosition& r : positions) {
    // Read nowhere: the group starts at its configured position.
    if (!r.complete || (r.target_offset < 0 && r.source_committed < 0)) continue;
    // Every record from the source commit up to `source` was read: the
    // search starts there as if the group had committed it.
    const int64_t source_from = starts.at(r.partition).source;
    auto& sink = unread[r.partition] = std::make_unique<FirstUnreadOnSource>(
        job.target, r.partition, std::max(r.source_committed, source_from),
        r.last_source_read, r.target_offset, source_ends.at(r.partition));
    if (!sink->complete()) {
      scans[r.partition] = {
          .end = source_ends.at(r.partition), .sink = sink.get(), .from = source_from};
    }
  }
  if (absl::Status s = Scan(job, source, scans, deadline, options.quiet); !s.ok()) {
    return s;
  }
  for (ReturnPosition& r : positions) {
    auto it = unread.find(r.partition);
    if (it == unread.end()) continue;
    r.complete = it->second->complete();
    r.source_offset = r.complete ? it->second->resume() : -1;
  }
  return positions;
}

}  // namespace ferry::mirror
