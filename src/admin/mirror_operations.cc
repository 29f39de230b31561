#include "admin/mirror_operations.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/topic_name.h"
#include "mirror/offset_translator.h"

namespace ferry::admin {
namespace {

v1::MirrorJob ToProto(const control::MirrorSpec& spec) {
  v1::MirrorJob job;
  job.set_name(spec.name);
  job.set_source(spec.source);
  job.set_target(spec.target);
  for (const std::string& topic : spec.topics) job.add_topics(topic);
  job.set_skip_origin(spec.skip_origin);
  return job;
}

// A job's name is part of a consumer group name and a control record key.
absl::Status CheckName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("job.name: missing");
  // Same characters as a topic: safe in group names and record keys.
  if (absl::Status s = ValidateTopicName(name); !s.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("job.name: {}", std::string(s.message())));
  }
  return absl::OkStatus();
}

control::MirrorSpec SpecOf(const v1::MirrorJob& job) {
  return control::MirrorSpec{.name = job.name(),
                             .source = job.source(),
                             .target = job.target(),
                             .topics = {job.topics().begin(), job.topics().end()},
                             .skip_origin = job.skip_origin()};
}

// Starting a job whose name runs already: the job when it is the same one,
// else ALREADY_EXISTS.
absl::StatusOr<v1::MirrorJob> SameJobOrInUse(const control::MirrorSpec& existing,
                                             const control::MirrorSpec& requested) {
  if (existing == requested) return ToProto(existing);
  return absl::AlreadyExistsError(fmt::format(
      "mirror job {} runs already, copying {} from {} to {}; stop it first or choose "
      "another name",
      existing.name, fmt::join(existing.topics, ", "), existing.source, existing.target));
}

}  // namespace

MirrorOperations::MirrorOperations(std::map<std::string, backend::Cluster*> clusters,
                                   control::ControlPlane* control,
                                   const mirror::MirrorRunner* runner)
    : clusters_(std::move(clusters)), control_(control), runner_(runner) {}

absl::StatusOr<control::MirrorSpec> MirrorOperations::Check(
    const v1::MirrorJob& job) const {
  if (absl::Status s = CheckName(job.name()); !s.ok()) return s;
  std::vector<std::string> names;
  for (const auto& [name, cluster] : clusters_) names.push_back(name);
  for (const auto* field : {&job.source(), &job.target()}) {
    const std::string_view what = field == &job.source() ? "source" : "target";
    if (!clusters_.contains(*field)) {
      return absl::InvalidArgumentError(
          fmt::format("job.{}: unknown cluster \"{}\" (configured: {})", what, *field,
                      fmt::join(names, ", ")));
    }
  }
  if (job.source() == job.target()) {
    return absl::InvalidArgumentError(
        fmt::format("job.target: the same cluster as job.source (\"{}\")", job.source()));
  }
  if (!job.skip_origin().empty() && !clusters_.contains(job.skip_origin())) {
    return absl::InvalidArgumentError(
        fmt::format("job.skip_origin: unknown cluster \"{}\" (configured: {})",
                    job.skip_origin(), fmt::join(names, ", ")));
  }
  if (job.topics().empty()) return absl::InvalidArgumentError("job.topics: missing");
  backend::Cluster* source = clusters_.at(job.source());
  backend::Cluster* target = clusters_.at(job.target());
  for (const std::string& topic : job.topics()) {
    if (absl::Status s = ValidateTopicName(topic); !s.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("job.topics: {}", std::string(s.message())));
    }
    auto from = source->DescribeTopic(topic);
    if (!from.ok()) {
      return absl::Status(
          from.status().code(),
          fmt::format("job.topics: {} on source {}: {}", topic, source->name(),
                      std::string(from.status().message())));
    }
    // A target without the topic, or not answering, is left to each node's
    // job, which creates the topic or retries.
    auto to = target->DescribeTopic(topic);
    if (!to.ok()) continue;
    if (absl::Status s = mirror::CheckTargetPartitions(topic, *from, source->name(), *to,
                                                       target->name());
        !s.ok()) {
      return absl::Status(s.code(),
                          fmt::format("job.topics: {}", std::string(s.message())));
    }
  }
  return SpecOf(job);
}

std::optional<control::MirrorSpec> MirrorOperations::Find(const std::string& name) const {
  if (control_ == nullptr) return std::nullopt;
  for (control::MirrorSpec& spec : control_->Mirrors()) {
    if (spec.name == name) return spec;
  }
  return std::nullopt;
}

absl::StatusOr<v1::MirrorJob> MirrorOperations::Start(const v1::MirrorJob& job) {
  // A name in use is answered before the clusters are asked: the running
  // job may not have created its topics yet, and a topic check would then
  // refuse the request for the wrong reason. Asked again after the checks,
  // which take broker round trips, for a job started meanwhile.
  if (auto existing = Find(job.name())) return SameJobOrInUse(*existing, SpecOf(job));
  auto spec = Check(job);
  if (!spec.ok()) return spec.status();
  if (control_ == nullptr) {
    return absl::FailedPreconditionError("no control plane: configure a cluster");
  }
  if (auto existing = Find(spec->name)) return SameJobOrInUse(*existing, *spec);
  if (absl::Status s = control_->StartMirror(*spec); !s.ok()) return s;
  return ToProto(*spec);
}

absl::Status MirrorOperations::Stop(const std::string& name) {
  if (!Find(name)) {
    return absl::NotFoundError(fmt::format("no mirror job \"{}\"", name));
  }
  return control_->StopMirror(name);
}

v1::ListMirrorsResponse MirrorOperations::List() const {
  v1::ListMirrorsResponse response;
  if (control_ == nullptr) return response;
  const std::map<std::string, std::string> states =
      runner_ == nullptr ? std::map<std::string, std::string>{} : runner_->States();
  for (const control::MirrorSpec& spec : control_->Mirrors()) {
    v1::MirrorJob* job = response.add_jobs();
    *job = ToProto(spec);
    auto state = states.find(spec.name);
    job->set_state(state == states.end() ? "starting" : state->second);
  }
  return response;
}

absl::StatusOr<v1::MirrorStatus> MirrorOperations::Status(const std::string& name) const {
  auto spec = Find(name);
  if (!spec) return absl::NotFoundError(fmt::format("no mirror job \"{}\"", name));
  backend::Cluster* source = clusters_.at(spec->source);
  backend::Cluster* target = clusters_.at(spec->target);
  auto committed = source->CommittedOffsets(mirror::MirrorGroup(name), spec->topics);
  if (!committed.ok()) return committed.status();
  v1::MirrorStatus status;
  *status.mutable_job() = ToProto(*spec);
  int64_t total_lag = 0;
  for (const std::string& topic : spec->topics) {
    auto from = source->DescribeTopic(topic);
    if (!from.ok()) return from.status();
    auto to = target->DescribeTopic(topic);
    for (const backend::PartitionInfo& p : from->partitions) {
      v1::MirrorPartition* out = status.add_partitions();
      out->set_topic(topic);
      out->set_partition(p.id);
      auto it = committed->find({topic, p.id});
      const int64_t offset = it == committed->end() ? -1 : it->second;
      out->set_committed_offset(offset);
      out->set_source_high_watermark(p.high_watermark);
      int64_t target_high = -1;
      if (to.ok() && p.id < static_cast<int32_t>(to->partitions.size())) {
        target_high = to->partitions[p.id].high_watermark;
      }
      out->set_target_high_watermark(target_high);
      const int64_t lag = p.high_watermark - (offset < 0 ? p.low_watermark : offset);
      out->set_lag(std::max<int64_t>(lag, 0));
      total_lag += out->lag();
    }
  }
  status.set_lag(total_lag);
  return status;
}

absl::StatusOr<v1::TranslateOffsetsResponse> MirrorOperations::TranslateOffsets(
    const std::string& name, const std::string& group, absl::Duration timeout) const {
  if (group.empty()) return absl::InvalidArgumentError("group: empty");
  auto spec = Find(name);
  if (!spec) return absl::NotFoundError(fmt::format("no mirror job \"{}\"", name));
  auto translations =
      mirror::TranslateOffsets(*spec, group, *clusters_.at(spec->source),
                               *clusters_.at(spec->target), {.timeout = timeout});
  if (!translations.ok()) return translations.status();
  v1::TranslateOffsetsResponse response;
  for (const mirror::Translation& t : *translations) {
    v1::TranslatedOffset* out = response.add_offsets();
    out->set_topic(t.partition.topic);
    out->set_partition(t.partition.partition);
    switch (t.state) {
      case mirror::Translation::State::kTranslated:
        out->set_state(v1::TranslatedOffset::TRANSLATED);
        break;
      case mirror::Translation::State::kNotYetMirrored:
        out->set_state(v1::TranslatedOffset::NOT_YET_MIRRORED);
        break;
      case mirror::Translation::State::kNoGroupOffset:
        out->set_state(v1::TranslatedOffset::NO_GROUP_OFFSET);
        break;
    }
    out->set_source_offset(t.group_offset);
    out->set_target_offset(t.target_offset);
    out->set_mirrored_offset(t.mirrored_offset);
  }
  return response;
}

}  // namespace ferry::admin
