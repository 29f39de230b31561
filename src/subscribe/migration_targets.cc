#include "subscribe/migration_targets.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "mirror/mirror_job.h"
#include "mirror/target_start.h"

namespace ferry::subscribe {
namespace {

// The stages at which the mirror A -> B runs and reads of the topic are, or
// are about to be, on B.
bool ReadsMayBeOnTarget(const std::string& stage) {
  return stage == "consumers-paused" || stage == "consumers" ||
         stage == "producers-held" || stage == "producers";
}

}  // namespace

MigrationTargets::MigrationTargets(std::map<std::string, backend::Cluster*> clusters,
                                   metrics::Registry* metrics, absl::Duration timeout)
    : clusters_(std::move(clusters)), metrics_(metrics), timeout_(timeout) {}

void MigrationTargets::SetLookup(Lookup lookup) {
  absl::MutexLock lock(&mu_);
  lookup_ = std::move(lookup);
}

void MigrationTargets::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
}

std::optional<control::MigrationState> MigrationTargets::TargetIn(
    const std::string& topic, const std::vector<backend::Cluster*>& clusters) const {
  std::optional<control::MigrationState> migration;
  {
    absl::MutexLock lock(&mu_);
    if (!lookup_ || cancelled_) return std::nullopt;
    migration = lookup_(topic);
  }
  if (!migration.has_value() || !ReadsMayBeOnTarget(migration->stage) ||
      !clusters_.contains(migration->from)) {
    return std::nullopt;
  }
  const bool read = std::any_of(clusters.begin(), clusters.end(), [&](auto* cluster) {
    return cluster->name() == migration->to;
  });
  if (!read) return std::nullopt;
  return migration;
}

bool MigrationTargets::AnyTarget(const std::vector<std::string>& topics,
                                 const std::vector<backend::Cluster*>& clusters) const {
  return std::any_of(topics.begin(), topics.end(), [&](const std::string& topic) {
    return TargetIn(topic, clusters).has_value();
  });
}

absl::Status MigrationTargets::Prepare(const GroupOptions& group,
                                       const std::vector<std::string>& topics,
                                       const std::vector<backend::Cluster*>& clusters) {
  for (const std::string& topic : topics) {
    std::optional<control::MigrationState> migration = TargetIn(topic, clusters);
    if (!migration.has_value()) continue;
    if (absl::Status s = PrepareTopic(group, *migration); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status MigrationTargets::PrepareTopic(const GroupOptions& group,
                                            const control::MigrationState& migration) {
  const std::string& topic = migration.topic;
  const absl::Time start = absl::Now();
  auto committed = mirror::CommitTargetStart(
      mirror::MigrationMirror(migration), group.group, group.start,
      *clusters_.at(migration.from), *clusters_.at(migration.to),
      {.timeout = timeout_,
       .cancelled =
           [this] {
             absl::MutexLock lock(&mu_);
             return cancelled_;
           },
       .on_wait =
           [&](const std::string& what) {
             spdlog::warn("group={} waits up to {} for the {} before it reads {}",
                          group.group, absl::FormatDuration(timeout_), what,
                          migration.to);
             Count("ferry_migration_start_waits_total",
                   "Group starts on a migration's target that waited for the mirror "
                   "to copy the group's position.",
                   topic)
                 .Inc();
           }});
  if (committed.ok()) {
    if (committed->empty()) return absl::OkStatus();
    std::vector<std::string> offsets;
    for (const auto& [tp, offset] : *committed) {
      offsets.push_back(fmt::format("{}:{}", tp.partition, offset));
    }
    spdlog::info(
        "group={} starts on {} where it was on {} (migration of {}): committed {} "
        "({})",
        group.group, migration.to, migration.from, topic, fmt::join(offsets, ","),
        absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1))));
    Count("ferry_migration_starts_total",
          "Groups given their translated start on a migration's target by this node.",
          topic)
        .Inc();
    return absl::OkStatus();
  }
  if (committed.status().code() == absl::StatusCode::kFailedPrecondition) {
    spdlog::warn(
        "group={} has members on {} already; it reads from their position there: {}",
        group.group, migration.to, std::string(committed.status().message()));
    return absl::OkStatus();
  }
  Count("ferry_migration_start_failures_total",
        "Group starts on a migration's target that failed (the mirror did not copy "
        "the group's position in time, or a cluster did not answer); retried.",
        topic)
      .Inc();
  return absl::Status(
      committed.status().code(),
      fmt::format("group {}: no start on {} for the migration of {} from {}: {}",
                  group.group, migration.to, topic, migration.from,
                  std::string(committed.status().message())));
}

metrics::Counter& MigrationTargets::Count(std::string_view name, std::string_view help,
                                          const std::string& topic) {
  return metrics_->GetCounter(name, help, {{"topic", topic}});
}

}  // namespace ferry::subscribe
