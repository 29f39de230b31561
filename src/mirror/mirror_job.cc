#include "mirror/mirror_job.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

namespace ferry::mirror {

std::string MirrorGroup(const std::string& job) {
  return fmt::format("__ferry_mirror.{}", job);
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
    bool paused = false;
    // The copier's duplicates already added to the metric.
    int64_t duplicates_counted = 0;
  };

  explicit Shared(metrics::Counter& copied, metrics::Counter& duplicates)
      : copied(copied), duplicates(duplicates) {}

  // A target's answer for the record copied from `source` at `offset`.
  void Answered(const backend::TopicPartition& source, int64_t offset,
                const backend::PublishOutcome& outcome) {
    absl::MutexLock lock(&mu);
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
  metrics::Counter& copied;
  metrics::Counter& duplicates;
  absl::Mutex mu;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  std::map<backend::TopicPartition, Partition> partitions ABSL_GUARDED_BY(mu);
};

namespace {

absl::Status CheckTopic(const std::string& topic, backend::Cluster* source,
                        backend::Cluster* target) {
  auto from = source->DescribeTopic(topic);
  if (!from.ok()) {
    return absl::Status(from.status().code(),
                        fmt::format("source {}: {}", source->name(),
                                    std::string(from.status().message())));
  }
  const int partitions = static_cast<int>(from->partitions.size());
  auto to = target->DescribeTopic(topic);
  if (to.ok())
    return CheckTargetPartitions(topic, *from, source->name(), *to, target->name());
  if (to.status().code() != absl::StatusCode::kNotFound) return to.status();
  absl::Status created = target->CreateTopic(topic, partitions, -1, {});
  if (created.code() == absl::StatusCode::kAlreadyExists) return absl::OkStatus();
  return created;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MirrorJob>> MirrorJob::Start(control::MirrorSpec spec,
                                                            backend::Cluster* source,
                                                            backend::Cluster* target,
                                                            Options options,
                                                            metrics::Registry* metrics) {
  for (const std::string& topic : spec.topics) {
    if (absl::Status s = CheckTopic(topic, source, target); !s.ok()) return s;
  }
  std::unique_ptr<MirrorJob> job(
      new MirrorJob(std::move(spec), target, std::move(options), metrics));
  auto member =
      source->JoinGroup({.group = MirrorGroup(job->spec_.name),
                         .client_id = fmt::format("ferryd/{}", job->options_.node_id),
                         .topics = job->spec_.topics,
                         .start = {.kind = backend::StartPosition::Kind::kEarliest}},
                        job.get());
  if (!member.ok()) return member.status();
  job->member_ = *std::move(member);
  job->ticker_ = std::thread([job = job.get()] { job->Tick(); });
  spdlog::info("mirror {}: copying {} from {} to {}", job->spec_.name,
               fmt::join(job->spec_.topics, ", "), source->name(), target->name());
  return job;
}

MirrorJob::MirrorJob(control::MirrorSpec spec, backend::Cluster* target, Options options,
                     metrics::Registry* metrics)
    : spec_(std::move(spec)), target_(target), options_(std::move(options)) {
  // Not "job": Prometheus's own target label would rename it exported_job.
  const metrics::Labels labels = {{"mirror", spec_.name}};
  shared_ = std::make_shared<Shared>(
      metrics->GetCounter("ferry_mirror_records_total",
                          "Records a mirror job copied (acknowledged by the target), "
                          "duplicates included.",
                          labels),
      metrics->GetCounter("ferry_mirror_duplicates_total",
                          "Records a mirror job copied again after a failure or a "
                          "crash (the target holds them twice).",
                          labels));
  shared_->job = spec_.name;
}

MirrorJob::~MirrorJob() {
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->stopping = true;
  }
  if (ticker_.joinable()) ticker_.join();
  member_.reset();  // OnRevoked commits the acknowledged prefixes
}

void MirrorJob::Tick() {
  absl::Time last_commit = absl::Now();
  while (true) {
    std::map<backend::TopicPartition, int64_t> rewinds;
    std::map<backend::TopicPartition, int64_t> commits;
    std::vector<backend::TopicPartition> pause, resume;
    {
      absl::MutexLock lock(&shared_->mu);
      if (shared_->mu.AwaitWithTimeout(absl::Condition(&shared_->stopping),
                                       options_.tick)) {
        return;
      }
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
        if (!partition.paused && in_flight >= options_.max_in_flight) {
          partition.paused = true;
          pause.push_back(tp);
        } else if (partition.paused && in_flight < options_.max_in_flight / 2) {
          partition.paused = false;
          resume.push_back(tp);
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
  shared_->mu.AwaitWithTimeout(absl::Condition(&settled), options_.revoke_wait);
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
    {
      absl::MutexLock lock(&shared_->mu);
      auto it = shared_->partitions.find(tp);
      if (it == shared_->partitions.end() || !it->second.copier.Accept(record.offset)) {
        continue;
      }
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
    target_->Publish({.topic = record.topic,
                      .key = std::string(record.key),
                      .value = std::string(record.value),
                      .headers = std::move(headers),
                      .timestamp_ms = record.timestamp_ms,
                      .partition = record.partition},
                     [shared = shared_, tp, offset](backend::PublishOutcome outcome) {
                       shared->Answered(tp, offset, outcome);
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
