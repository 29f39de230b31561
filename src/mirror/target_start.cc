#include "mirror/target_start.h"

#include <fmt/format.h>

namespace ferry::mirror {
namespace {

// Per partition of the job's topics on `cluster`: its high watermark.
absl::StatusOr<std::map<backend::TopicPartition, int64_t>> Ends(
    backend::Cluster& cluster, const std::vector<std::string>& topics) {
  std::map<backend::TopicPartition, int64_t> ends;
  for (const std::string& topic : topics) {
    absl::StatusOr<backend::TopicInfo> info = cluster.DescribeTopic(topic);
    if (!info.ok()) return info.status();
    for (const backend::PartitionInfo& p : info->partitions) {
      ends[{topic, p.id}] = p.high_watermark;
    }
  }
  return ends;
}

// The source's offsets for the start time, per partition; empty unless the
// group starts at a time.
absl::StatusOr<std::map<backend::TopicPartition, int64_t>> OffsetsAtStartTime(
    backend::Cluster& source, const std::vector<std::string>& topics,
    const backend::StartPosition& start) {
  std::map<backend::TopicPartition, int64_t> offsets;
  if (start.kind != backend::StartPosition::Kind::kTimestamp) return offsets;
  for (const std::string& topic : topics) {
    auto at = source.OffsetsForTime(topic, start.timestamp_ms);
    if (!at.ok()) return at.status();
    offsets.insert(at->begin(), at->end());
  }
  return offsets;
}

}  // namespace

std::optional<int64_t> SourcePositionFor(int64_t target_committed,
                                         int64_t source_committed,
                                         const backend::StartPosition& start,
                                         int64_t source_end, int64_t source_at_time) {
  if (target_committed >= 0) return std::nullopt;
  if (source_committed >= 0) return source_committed;
  switch (start.kind) {
    case backend::StartPosition::Kind::kLatest:
      return source_end;
    case backend::StartPosition::Kind::kTimestamp:
      if (source_at_time >= 0) return source_at_time;
      return std::nullopt;
    case backend::StartPosition::Kind::kEarliest:
      return std::nullopt;
  }
  return std::nullopt;
}

absl::StatusOr<std::map<backend::TopicPartition, int64_t>> CommitTargetStart(
    const control::MirrorSpec& job, const std::string& group,
    const backend::StartPosition& start, backend::Cluster& source,
    backend::Cluster& target, const TargetStartOptions& options) {
  const absl::Time deadline = absl::Now() + options.timeout;
  TargetStartOptions::Translate translate = options.translate;
  if (!translate) {
    translate = [&](const std::map<backend::TopicPartition, int64_t>& positions,
                    const ForwardHints& hints) {
      return TranslatePositions(job, positions, source, target,
                                {.timeout = options.timeout}, hints);
    };
  }
  auto on_target = target.CommittedOffsets(group, job.topics);
  if (!on_target.ok()) return on_target.status();
  auto on_source = source.CommittedOffsets(group, job.topics);
  if (!on_source.ok()) return on_source.status();
  // The target's ends before the source's: records at or after a source end
  // did not exist when the target's end was read, so no copy of them lies
  // below it, and a search for such a position starts there.
  auto target_ends = Ends(target, job.topics);
  if (!target_ends.ok()) return target_ends.status();
  auto source_ends = Ends(source, job.topics);
  if (!source_ends.ok()) return source_ends.status();
  auto at_time = OffsetsAtStartTime(source, job.topics, start);
  if (!at_time.ok()) return at_time.status();

  std::map<backend::TopicPartition, int64_t> positions;
  ForwardHints hints;
  for (const auto& [tp, source_end] : *source_ends) {
    std::optional<int64_t> position =
        SourcePositionFor(OffsetOf(*on_target, tp), OffsetOf(*on_source, tp), start,
                          source_end, OffsetOf(*at_time, tp));
    if (!position.has_value()) continue;
    positions[tp] = *position;
    if (*position == source_end && target_ends->contains(tp)) {
      hints.earlier.push_back({.partition = tp,
                               .state = Translation::State::kNotYetMirrored,
                               .group_offset = *position,
                               .searched_to = target_ends->at(tp)});
    }
  }
  std::map<backend::TopicPartition, int64_t> commit;
  if (positions.empty()) return commit;

  bool waited = false;
  while (true) {
    auto translated = translate(positions, hints);
    if (!translated.ok()) return translated.status();
    auto target_now = Ends(target, job.topics);
    if (!target_now.ok()) return target_now.status();
    auto source_now = Ends(source, job.topics);
    if (!source_now.ok()) return source_now.status();
    commit.clear();
    const Translation* pending = nullptr;
    for (const Translation& t : *translated) {
      if (!positions.contains(t.partition)) continue;
      std::optional<int64_t> offset = TargetResumeOffset(
          t, OffsetOf(*source_now, t.partition), OffsetOf(*target_now, t.partition));
      if (offset.has_value()) {
        commit[t.partition] = *offset;
      } else {
        pending = &t;
      }
    }
    if (pending == nullptr) break;
    const std::string what = fmt::format(
        "mirror {} to copy offset {} of {}/{} from {} to {} (it copied up to {})",
        job.name, pending->group_offset, pending->partition.topic,
        pending->partition.partition, job.source, job.target, pending->mirrored_offset);
    if (!waited && options.on_wait) options.on_wait(what);
    waited = true;
    if (options.cancelled && options.cancelled()) {
      return absl::CancelledError("stopped waiting for the " + what);
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          fmt::format("group {}: waited {} for the {}; nothing committed on {}", group,
                      absl::FormatDuration(options.timeout), what, job.target));
    }
    hints.earlier = *std::move(translated);
    absl::SleepFor(options.poll);
  }
  if (absl::Status s = target.AlterCommittedOffsets(group, commit); !s.ok()) return s;
  return commit;
}

}  // namespace ferry::mirror
