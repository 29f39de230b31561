#include "mirror/mirror_job.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace ferry::mirror {

std::string MirrorGroup(const std::string& job) {
  return fmt::format("__ferry_mirror.{}", job);
}

std::string MigrationMirrorName(const std::string& topic) {
  return fmt::format("migrate.{}", topic);
}

control::MirrorSpec MigrationMirror(const control::MigrationState& migration) {
  return {.name = MigrationMirrorName(migration.topic),
          .source = migration.from,
          .target = migration.to,
          .topics = {migration.topic}};
}

absl::Status CheckTargetPartitions(const std::string& topic,
                                   const backend::TopicInfo& source_info,
                                   const std::string& source,
                                   const backend::TopicInfo& target_info,
                                   const std::string& target) {
  if (target_info.partitions.size() >= source_info.partitions.size()) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(fmt::format(
      "topic {} has {} partitions on target {} but {} on source {}: partition-for-"
      "partition copying needs at least as many on the target (add partitions first)",
      topic, target_info.partitions.size(), target, source_info.partitions.size(),
      source));
}

struct MirrorJob::Shared {
  struct Partition {
    explicit Partition(int64_t next) : copier(next), committed(next) {}
    PartitionCopier copier;
    int64_t committed;
    // Over MirrorJob::Options::max_in_flight (until below half of it).
    bool too_many_in_flight = false;
    // As last asked of the member.
    bool paused = false;
    // The copier's duplicates already added to the metric.
    int64_t duplicates_counted = 0;
  };

  Shared(int64_t max_in_flight_bytes, metrics::Counter& copied,
         metrics::Counter& duplicates, metrics::Counter& skipped)
      : max_in_flight_bytes(max_in_flight_bytes),
        copied(copied),
        duplicates(duplicates),
        skipped(skipped) {}

  // Whether the byte budget's pause starts or ends now (wakes the ticker).
  bool BytesPauseChangeDue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return bytes_paused ? in_flight_bytes < max_in_flight_bytes / 2
                        : in_flight_bytes >= max_in_flight_bytes;
  }

  // A target's answer for the record of `bytes` copied from `source` at
  // `offset`.
  void Answered(const backend::TopicPartition& source, int64_t offset, int64_t bytes,
                const backend::PublishOutcome& outcome) {
    absl::MutexLock lock(&mu);
    in_flight_bytes -= bytes;
    auto it = partitions.find(source);
    if (it == partitions.end()) return;  // revoked meanwhile
    PartitionCopier& copier = it->second.copier;
    if (outcome.status.ok()) {
      copier.Acked(offset);
      copied.Inc();
      return;
    }
    if (!outcome.retryable) {
      spdlog::error(
          "mirror {}: {}/{} stops at offset {}: the target refuses the record "
          "({}); fix the target and restart the job",
          job, source.topic, source.partition, offset,
          std::string(outcome.status.message()));
    } else if (!copier.rewinding()) {
      spdlog::warn(
          "mirror {}: {}/{} offset {} not copied ({}); copying again from the "
          "first record not acknowledged",
          job, source.topic, source.partition, offset,
          std::string(outcome.status.message()));
    }
    copier.Failed(offset, outcome.status, outcome.retryable);
  }

  std::string job;
  const int64_t max_in_flight_bytes;
  metrics::Counter& copied;
  metrics::Counter& duplicates;
  metrics::Counter& skipped;
  absl::Mutex mu;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  // While stopping: when a revoke stops waiting for in-flight records, so
  // that the commit and the close fit in the leave's bound.
  absl::Time revoke_by ABSL_GUARDED_BY(mu) = absl::InfiniteFuture();
  // Of the records sent and not answered yet, revoked partitions' included.
  int64_t in_flight_bytes ABSL_GUARDED_BY(mu) = 0;
  // Every partition paused: in_flight_bytes reached max_in_flight_bytes.
  bool bytes_paused ABSL_GUARDED_BY(mu) = false;
  std::map<backend::TopicPartition, Partition> partitions ABSL_GUARDED_BY(mu);
};

namespace {

// What a copy of `record` holds in memory until the target answers.
int64_t PayloadBytes(const backend::ConsumedRecord& record) {
  int64_t bytes = static_cast<int64_t>(record.key.size() + record.value.size());
  for (const backend::HeaderView& header : record.headers) {
    bytes += static_cast<int64_t>(header.key.size() + header.value.size());
  }
  return bytes;
}

// Whether `record` is a copy of a record of `cluster`.
bool HasOrigin(const backend::ConsumedRecord& record, const std::string& cluster) {
  for (const backend::HeaderView& header : record.headers) {
    if (header.key != kOriginHeader) continue;
    std::optional<Origin> origin = ParseOrigin(header.value);
    return origin && origin->cluster == cluster;
  }
  return false;
}

// The topic's partitions on the source, once the target has as many.
absl::Status Stopped(const std::function<bool()>& stopping) {
  if (stopping && stopping()) return absl::CancelledError("the node is stopping");
  return absl::OkStatus();
}

// Checks `stopping` before each cluster call: a stopping node waits for
// the one in progress only.
absl::StatusOr<int> CheckTopic(const std::string& topic, backend::Cluster* source,
                               backend::Cluster* target,
                               const std::function<bool()>& stopping) {
  if (absl::Status s = Stopped(stopping); !s.ok()) return s;
  auto from = source->DescribeTopic(topic);
  if (!from.ok()) {
    return absl::Status(from.status().code(),
                        fmt::format("source {}: {}", source->name(),
                                    std::string(from.status().message())));
  }
  const int partitions = static_cast<int>(from->partitions.size());
  if (absl::Status s = Stopped(stopping); !s.ok()) return s;
  auto to = target->DescribeTopic(topic);
  if (to.ok()) {
    absl::Status enough =
        CheckTargetPartitions(topic, *from, source->name(), *to, target->name());
    if (!enough.ok()) return enough;
    return partitions;
  }
  if (to.status().code() != absl::StatusCode::kNotFound) return to.status();
  if (absl::Status s = Stopped(stopping); !s.ok()) return s;
  absl::Status created = target->CreateTopic(topic, partitions, -1, {});
  if (!created.ok() && created.code() != absl::StatusCode::kAlreadyExists) return created;
  return partitions;
}

// Per partition: half the job's byte budget shared by its partitions, so
// prefetch and records in flight together stay near the budget; at least
// 256 KiB (a fetch round trip's worth), at most the subscribe path's 8 MiB.
int64_t PrefetchBytes(int64_t max_in_flight_bytes, int partitions) {
  return std::clamp<int64_t>(max_in_flight_bytes / 2 / std::max(partitions, 1),
                             int64_t{256} << 10, int64_t{8} << 20);
}

}  // namespace

absl::StatusOr<std::unique_ptr<MirrorJob>> MirrorJob::Start(
    control::MirrorSpec spec, backend::Cluster* source, backend::Cluster* target,
    Options options, metrics::Registry* metrics, const std::function<bool()>& stopping) {
  int partitions = 0;
  for (const std::string& topic : spec.topics) {
    absl::StatusOr<int> checked = CheckTopic(topic, source, target, stopping);
    if (!checked.ok()) return checked.status();
    partitions += *checked;
  }
  std::unique_ptr<MirrorJob> job(
      new MirrorJob(std::move(spec), source, target, std::move(options), metrics));
  auto member =
      source->JoinGroup({.group = MirrorGroup(job->spec_.name),
                         .client_id = fmt::format("ferryd/{}", job->options_.node_id),
                         .topics = job->spec_.topics,
                         .start = {.kind = backend::StartPosition::Kind::kEarliest},
                         .max_prefetch_bytes = PrefetchBytes(
                             job->options_.max_in_flight_bytes, partitions)},
                        job->member_listener_.get());
  if (!member.ok()) return member.status();
  job->member_ = *std::move(member);
  job->ticker_ = std::thread([job = job.get()] { job->Tick(); });
  spdlog::info("mirror {}: copying {} from {} to {}", job->spec_.name,
               fmt::join(job->spec_.topics, ", "), source->name(), target->name());
  return job;
}

MirrorJob::MirrorJob(control::MirrorSpec spec, backend::Cluster* source,
                     backend::Cluster* target, Options options,
                     metrics::Registry* metrics)
    : spec_(std::move(spec)),
      source_(source),
      target_(target),
      options_(std::move(options)),
      member_listener_(std::make_shared<backend::CuttableListener>(
          static_cast<backend::GroupMemberListener*>(this))) {
  // Not "job": Prometheus's own target label would rename it exported_job.
  const metrics::Labels labels = {{"mirror", spec_.name}};
  shared_ = std::make_shared<Shared>(
      options_.max_in_flight_bytes,
      metrics->GetCounter("ferry_mirror_records_total",
                          "Records a mirror job copied (acknowledged by the target), "
                          "duplicates included.",
                          labels),
      metrics->GetCounter("ferry_mirror_duplicates_total",
                          "Records a mirror job copied again after a failure or a "
                          "crash (the target holds them twice).",
                          labels),
      metrics->GetCounter("ferry_mirror_skipped_total",
                          "Records a mirror job did not copy: copies of records of "
                          "its skip_origin cluster.",
                          labels));
  shared_->job = spec_.name;
}

MirrorJob::~MirrorJob() {
  {
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&shared_->mu);
    shared_->stopping = true;
    // Half of the leave's time for the revoke's wait, half for the rest.
    shared_->revoke_by = now + (backend::LeaveDeadline(options_.leave_timeout) - now) / 2;
  }
  if (ticker_.joinable()) ticker_.join();
  if (member_ == nullptr) return;
  // OnRevoked commits the acknowledged prefixes.
  backend::LeaveOneWithin(std::move(member_), member_listener_, source_,
                          backend::ConsumerKind::kMirrorJob, options_.leave_timeout,
                          fmt::format("mirror {}", spec_.name));
}

void MirrorJob::Tick() {
  absl::Time last_commit = absl::Now();
  while (true) {
    std::map<backend::TopicPartition, int64_t> rewinds;
    std::map<backend::TopicPartition, int64_t> commits;
    std::vector<backend::TopicPartition> pause, resume;
    {
      absl::MutexLock lock(&shared_->mu);
      // Woken early when the byte budget is reached or freed, so a full
      // budget neither overshoots nor idles for a tick.
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu) {
        return shared_->stopping || shared_->BytesPauseChangeDue();
      };
      shared_->mu.AwaitWithTimeout(absl::Condition(&wake), options_.tick);
      if (shared_->stopping) return;
      if (shared_->BytesPauseChangeDue()) shared_->bytes_paused = !shared_->bytes_paused;
      const bool commit_due = absl::Now() - last_commit >= options_.commit_interval;
      for (auto& [tp, partition] : shared_->partitions) {
        if (auto rewind = partition.copier.TakeRewind()) {
          rewinds[tp] = *rewind;
          shared_->duplicates.Inc(static_cast<double>(partition.copier.duplicates() -
                                                      partition.duplicates_counted));
          partition.duplicates_counted = partition.copier.duplicates();
        }
        if (commit_due && partition.copier.commit_offset() > partition.committed) {
          partition.committed = partition.copier.commit_offset();
          commits[tp] = partition.committed;
        }
        const int64_t in_flight = partition.copier.in_flight();
        if (in_flight >= options_.max_in_flight) {
          partition.too_many_in_flight = true;
        } else if (in_flight < options_.max_in_flight / 2) {
          partition.too_many_in_flight = false;
        }
        const bool pause_wanted = partition.too_many_in_flight || shared_->bytes_paused;
        if (pause_wanted != partition.paused) {
          partition.paused = pause_wanted;
          (pause_wanted ? pause : resume).push_back(tp);
        }
      }
      if (commit_due) last_commit = absl::Now();
    }
    // Member calls only queue work for its thread; made outside the lock all
    // the same, as the rule is.
    for (const auto& [tp, offset] : rewinds) member_->Seek(tp, offset);
    if (!commits.empty()) member_->Commit(std::move(commits));
    if (!pause.empty()) member_->Pause(pause);
    if (!resume.empty()) member_->Resume(resume);
  }
}

void MirrorJob::OnAssigned(const std::vector<backend::AssignedPartition>& partitions) {
  absl::MutexLock lock(&shared_->mu);
  for (const backend::AssignedPartition& p : partitions) {
    shared_->partitions.erase(p.partition);
    shared_->partitions.emplace(p.partition, Shared::Partition(p.next_offset));
    spdlog::info("mirror {}: copying {}/{} from offset {}", spec_.name, p.partition.topic,
                 p.partition.partition, p.next_offset);
  }
}

std::map<backend::TopicPartition, int64_t> MirrorJob::OnRevoked(
    const std::vector<backend::TopicPartition>& partitions) {
  absl::MutexLock lock(&shared_->mu);
  // Records in flight may still be acknowledged: wait a little, so the next
  // owner copies fewer again.
  auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu) {
    for (const auto& tp : partitions) {
      auto it = shared_->partitions.find(tp);
      if (it != shared_->partitions.end() && it->second.copier.in_flight() > 0 &&
          !it->second.copier.rewinding()) {
        return false;
      }
    }
    return true;
  };
  shared_->mu.AwaitWithDeadline(
      absl::Condition(&settled),
      std::min(absl::Now() + options_.revoke_wait, shared_->revoke_by));
  std::map<backend::TopicPartition, int64_t> commits;
  for (const auto& tp : partitions) {
    auto it = shared_->partitions.find(tp);
    if (it == shared_->partitions.end()) continue;
    commits[tp] = it->second.copier.commit_offset();
    shared_->partitions.erase(it);
  }
  return commits;
}

void MirrorJob::OnRecords(std::vector<backend::ConsumedRecord> records) {
  for (backend::ConsumedRecord& record : records) {
    const backend::TopicPartition tp{record.topic, record.partition};
    const bool skip = !spec_.skip_origin.empty() && HasOrigin(record, spec_.skip_origin);
    const int64_t bytes = PayloadBytes(record);
    {
      absl::MutexLock lock(&shared_->mu);
      auto it = shared_->partitions.find(tp);
      if (it == shared_->partitions.end()) continue;
      PartitionCopier& copier = it->second.copier;
      if (skip) {
        if (copier.Skip(record.offset)) shared_->skipped.Inc();
        continue;
      }
      if (!copier.Accept(record.offset)) continue;
      shared_->in_flight_bytes += bytes;
    }
    std::vector<backend::Header> headers = backend::CopyHeaders(record);
    std::erase_if(headers,
                  [](const backend::Header& h) { return h.key == kOriginHeader; });
    headers.push_back(
        {kOriginHeader, FormatOrigin({.cluster = spec_.source,
                                      .partition = {record.topic, record.partition},
                                      .offset = record.offset})});
    const int64_t offset = record.offset;
    // Outside the lock: the target may answer inline.
    target_->Publish(
        {.topic = record.topic,
         .key = std::string(record.key),
         .value = std::string(record.value),
         .headers = std::move(headers),
         .timestamp_ms = record.timestamp_ms,
         .partition = record.partition},
        [shared = shared_, tp, offset, bytes](backend::PublishOutcome outcome) {
          shared->Answered(tp, offset, bytes, outcome);
        });
  }
}

void MirrorJob::OnSeekDone(const backend::TopicPartition& partition, int64_t offset) {
  absl::MutexLock lock(&shared_->mu);
  auto it = shared_->partitions.find(partition);
  if (it != shared_->partitions.end()) it->second.copier.SeekDone(offset);
}

void MirrorJob::OnError(const absl::Status& error) {
  spdlog::warn("mirror {}: source: {}", spec_.name, std::string(error.message()));
}

}  // namespace ferry::mirror
