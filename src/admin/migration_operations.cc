#include "admin/migration_operations.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "api/convert.h"
#include "backend/partition_scan.h"
#include "common/topic_name.h"
#include "mirror/mirror_job.h"
#include "mirror/offset_translator.h"

namespace ferry::admin {
namespace {

constexpr absl::Duration kPoll = absl::Milliseconds(200);
// A transactional source ends with a commit marker the mirror never copies:
// its committed offset stays one below the high watermark. Waiting this long
// there means the last offset is such a marker, not a record in flight.
constexpr absl::Duration kMarkerGrace = absl::Seconds(3);

const std::vector<std::string> kDone = {"finished", "rolled-back"};
// Every stage a migration record may hold, in playbook order.
const std::vector<std::string> kStages = {
    "mirroring", "consumers-paused", "consumers",     "producers-held", "producers",
    "finished",  "rollback-paused",  "rollback-held", "rolled-back"};

// -1 for a partition the topic lacks.
int64_t HighWatermark(const backend::TopicInfo& info, int32_t partition) {
  return partition < static_cast<int32_t>(info.partitions.size())
             ? info.partitions[partition].high_watermark
             : -1;
}

// A translation's error: scans still refused at the stage's bound (each
// retried within it) name the group and what to do; others are as they are.
absl::Status TranslationError(const std::string& group, const absl::Status& status,
                              std::string_view then) {
  if (!backend::IsScanRefused(status)) return status;
  return absl::UnavailableError(
      fmt::format("group {}: {}; {}", group, std::string(status.message()), then));
}

// Left of a write hold (migration.max_write_hold) when a retry inside it
// gives up: releasing it and resuming the groups take a few admin calls.
// Half a short hold (the key allows 1 s), so its work still gets time.
absl::Duration WriteHoldMargin(absl::Duration max_write_hold) {
  return std::min(absl::Seconds(5), max_write_hold / 2);
}

bool IsDone(const control::MigrationState& state) {
  return std::find(kDone.begin(), kDone.end(), state.stage) != kDone.end();
}

}  // namespace

std::string RollbackMirrorName(const std::string& topic) {
  return fmt::format("migrate-back.{}", topic);
}

class MigrationOperations::Steps {
 public:
  // Records what was done since the previous step (or the call's start).
  void Done(std::string what) {
    const absl::Time now = absl::Now();
    lines_.push_back(fmt::format(
        "{} ({})", what,
        absl::FormatDuration(absl::Trunc(now - last_, absl::Milliseconds(1)))));
    spdlog::info("migration: {}", lines_.back());
    last_ = now;
  }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  absl::Time last_ = absl::Now();
  std::vector<std::string> lines_;
};

MigrationOperations::MigrationOperations(
    std::map<std::string, backend::Cluster*> clusters, const routing::RouteTable* routes,
    control::ControlPlane* control, MirrorOperations* mirrors, Options options)
    : clusters_(std::move(clusters)),
      routes_(routes),
      control_(control),
      mirrors_(mirrors),
      options_(options) {}

absl::StatusOr<control::MigrationState> MigrationOperations::Find(
    const std::string& topic) const {
  if (control_ == nullptr) {
    return absl::FailedPreconditionError("no control plane: configure a cluster");
  }
  std::optional<control::MigrationState> state = control_->Migration(topic);
  if (!state) {
    return absl::NotFoundError(fmt::format(
        "no migration of topic {} (start one with ferry migrate start)", topic));
  }
  return *state;
}

absl::Status MigrationOperations::RequireStage(const control::MigrationState& state,
                                               const std::vector<std::string>& allowed,
                                               const std::string& command) const {
  if (std::find(allowed.begin(), allowed.end(), state.stage) != allowed.end()) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      fmt::format("migration of {}: {} runs at stage {}, not at stage {}", state.topic,
                  command, fmt::join(allowed, " or "), state.stage));
}

v1::Migration MigrationOperations::ToProto(const control::MigrationState& state) const {
  v1::Migration out;
  out.set_topic(state.topic);
  out.set_from(state.from);
  out.set_to(state.to);
  out.set_stage(state.stage);
  for (const std::string& group : state.groups) out.add_groups(group);
  if (state.started_ms > 0) {
    api::FromUnixMillis(state.started_ms, out.mutable_started());
    api::FromUnixMillis(state.updated_ms, out.mutable_updated());
  }
  out.set_mirror_lag(-1);
  // While rolling back writes, the mirror that matters copies B to A.
  const std::string mirror = state.stage == "rollback-held"
                                 ? RollbackMirrorName(state.topic)
                                 : MigrationMirrorName(state.topic);
  if (auto status = mirrors_->Status(mirror); status.ok()) {
    out.set_mirror_lag(status->lag());
  }
  return out;
}

absl::StatusOr<int64_t> MigrationOperations::Issue(
    const control::ControlCommand& command) {
  return control_->Issue(command);
}

absl::StatusOr<v1::Migration> MigrationOperations::Start(const std::string& topic,
                                                         const std::string& from,
                                                         const std::string& to) {
  if (control_ == nullptr) {
    return absl::FailedPreconditionError("no control plane: configure a cluster");
  }
  if (absl::Status s = ValidateTopicName(topic); !s.ok()) {
    return absl::InvalidArgumentError(fmt::format("topic: {}", std::string(s.message())));
  }
  for (const std::string* cluster : {&from, &to}) {
    if (!clusters_.contains(*cluster)) {
      std::vector<std::string> names;
      for (const auto& [name, unused] : clusters_) names.push_back(name);
      return absl::NotFoundError(fmt::format(
          "{}: unknown cluster \"{}\" (configured: {})", cluster == &from ? "from" : "to",
          *cluster, fmt::join(names, ", ")));
    }
  }
  if (from == to) {
    return absl::InvalidArgumentError(
        fmt::format("to: the same cluster as from (\"{}\")", from));
  }
  if (std::optional<control::MigrationState> running = control_->Migration(topic);
      running && !IsDone(*running)) {
    if (running->from == from && running->to == to && running->stage == "mirroring") {
      return ToProto(*running);  // started already: nothing to do
    }
    return absl::AlreadyExistsError(fmt::format(
        "a migration of {} from {} to {} is at stage {}; finish or roll it back first",
        topic, running->from, running->to, running->stage));
  }
  absl::StatusOr<routing::Route> route = routes_->Current()->Resolve(topic);
  if (!route.ok()) return route.status();
  if (route->write.empty() || route->write.front() != from) {
    return absl::FailedPreconditionError(
        fmt::format("topic {} is written to {}, not to {}", topic,
                    route->write.empty() ? "no cluster" : route->write.front(), from));
  }
  // The mirror job's checks: the topic exists on A, B has as many partitions
  // (or none yet: the job creates it with A's count).
  v1::MirrorJob job;
  job.set_name(MigrationMirrorName(topic));
  job.set_source(from);
  job.set_target(to);
  job.add_topics(topic);
  absl::StatusOr<v1::MirrorJob> started = mirrors_->Start(job);
  if (!started.ok()) return started.status();
  control::MigrationState state{
      .topic = topic, .from = from, .to = to, .stage = "mirroring"};
  if (absl::Status s = control_->PutMigration(state); !s.ok()) return s;
  return ToProto(state);
}

absl::StatusOr<v1::Migration> MigrationOperations::Advance(const std::string& topic,
                                                           const std::string& stage) {
  absl::StatusOr<control::MigrationState> state = Find(topic);
  if (!state.ok()) return state.status();
  Steps steps;
  absl::StatusOr<v1::Migration> result;
  if (stage == "consumers") {
    result = Consumers(*std::move(state), steps);
  } else if (stage == "producers") {
    result = Producers(*std::move(state), steps);
  } else if (stage == "finish") {
    result = Finish(*std::move(state), steps);
  } else {
    return absl::InvalidArgumentError(
        fmt::format("stage: \"{}\" is not one of consumers, producers, finish", stage));
  }
  if (!result.ok()) return result;
  for (const std::string& line : steps.lines()) result->add_steps(line);
  return result;
}

absl::StatusOr<v1::Migration> MigrationOperations::Consumers(
    control::MigrationState state, Steps& steps) {
  if (absl::Status s = RequireStage(state, {"mirroring", "consumers-paused", "consumers"},
                                    "consumers");
      !s.ok()) {
    return s;
  }
  if (state.stage == "consumers") {
    // Done but for, perhaps, the resume (the previous run died there).
    if (absl::Status s = SetPaused(state.groups, false); !s.ok()) return s;
    return ToProto(state);
  }
  backend::Cluster& from = *clusters_.at(state.from);
  if (state.stage == "mirroring") {
    absl::StatusOr<std::vector<std::string>> groups = GroupsOf(from, state.topic);
    if (!groups.ok()) return groups.status();
    state.groups = *std::move(groups);
    state.stage = "consumers-paused";
    if (absl::Status s = control_->PutMigration(state); !s.ok()) return s;
  }
  // Most of the translation before the pause: the groups wait only for what
  // they read since.
  const EarlierForwards earlier = TranslateForwardEarly(state, steps);
  if (absl::Status s = SetPaused(state.groups, true); !s.ok()) return s;
  steps.Done(fmt::format("paused {} group(s) on every node", state.groups.size()));
  if (absl::Status s = Settle(from, state.topic, state.groups); !s.ok()) return s;
  steps.Done("acknowledged messages committed on " + state.from);
  if (absl::Status s = AddLateGroups(state, steps); !s.ok()) return s;
  if (absl::Status s = MoveOffsetsForward(state, earlier, steps); !s.ok()) return s;
  absl::StatusOr<routing::Route> route = routes_->Current()->Resolve(state.topic);
  if (!route.ok()) return route.status();
  // Reads of B only: the mirror brings A's ongoing writes to B in partition
  // order; reading A too would deliver each of them twice.
  if (absl::Status s = RouteTo(state.topic, route->write, state.to); !s.ok()) return s;
  steps.Done("reads routed to " + state.to);
  state.stage = "consumers";
  if (absl::Status s = control_->PutMigration(state); !s.ok()) return s;
  if (absl::Status s = SetPaused(state.groups, false); !s.ok()) return s;
  steps.Done("groups resumed");
  return ToProto(state);
}

absl::StatusOr<v1::Migration> MigrationOperations::Producers(
    control::MigrationState state, Steps& steps) {
  if (absl::Status s =
          RequireStage(state, {"consumers", "producers-held", "producers"}, "producers");
      !s.ok()) {
    return s;
  }
  const control::WriteHoldCommand release{.topic = state.topic, .held = false};
  if (state.stage == "producers") {
    // Done but for, perhaps, the release.
    if (absl::StatusOr<int64_t> s = Issue(release); !s.ok()) return s.status();
    return ToProto(state);
  }
  state.stage = "producers-held";
  if (absl::Status s = control_->PutMigration(state); !s.ok()) return s;
  absl::StatusOr<int64_t> held =
      Issue(control::WriteHoldCommand{.topic = state.topic, .held = true});
  if (!held.ok()) return held.status();
  const absl::Time hold_start = absl::Now();
  // Any failure below releases the hold: writes stay on A, and the stage can
  // be run again.
  auto fail = [&](absl::Status status) -> absl::Status {
    if (absl::StatusOr<int64_t> released = Issue(release); !released.ok()) {
      spdlog::error("migration of {}: cannot release the write hold: {}", state.topic,
                    std::string(released.status().message()));
    }
    return status;
  };
  if (absl::Status s = control_->AwaitApplied(*held, options_.barrier_timeout); !s.ok()) {
    return fail(s);
  }
  steps.Done("writes held on every node, none in flight");
  absl::StatusOr<std::map<int32_t, int64_t>> ends = Ends(state.from, state.topic);
  if (!ends.ok()) return fail(ends.status());
  if (absl::Status s = AwaitMirrored(
          MigrationMirrorName(state.topic), state.from, *ends,
          fmt::format("writes stay on {} (run producers again)", state.from));
      !s.ok()) {
    return fail(s);
  }
  steps.Done(fmt::format("mirror copied {} to its end", state.from));
  if (absl::Status s = RouteTo(state.topic, {state.to}, state.to); !s.ok()) {
    return fail(s);
  }
  state.stage = "producers";
  if (absl::Status s = control_->PutMigration(state); !s.ok()) return fail(s);
  if (absl::StatusOr<int64_t> s = Issue(release); !s.ok()) return s.status();
  steps.Done(fmt::format("writes routed to {} and released; writes were held {}",
                         state.to,
                         absl::FormatDuration(absl::Trunc(absl::Now() - hold_start,
                                                          absl::Milliseconds(1)))));
  return ToProto(state);
}

absl::StatusOr<v1::Migration> MigrationOperations::Finish(control::MigrationState state,
                                                          Steps& steps) {
  if (absl::Status s = RequireStage(state, {"producers", "finished"}, "finish");
      !s.ok()) {
    return s;
  }
  if (state.stage == "finished") return ToProto(state);
  // What producers outside Ferry wrote to A must reach B first.
  const absl::Time give_up = absl::Now() + options_.mirror_timeout;
  const std::string mirror = MigrationMirrorName(state.topic);
  while (true) {
    absl::StatusOr<v1::MirrorStatus> status = mirrors_->Status(mirror);
    if (status.ok() && status->lag() == 0) break;
    if (status.status().code() == absl::StatusCode::kNotFound) break;  // stopped before
    if (absl::Now() >= give_up) {
      return absl::DeadlineExceededError(fmt::format(
          "migration of {}: the mirror still lags ({}) after {}; run finish again",
          state.topic,
          status.ok() ? fmt::format("{} records", status->lag())
                      : std::string(status.status().message()),
          absl::FormatDuration(options_.mirror_timeout)));
    }
    absl::SleepFor(kPoll);
  }
  steps.Done("mirror has no lag");
  if (absl::Status s = mirrors_->Stop(mirror);
      !s.ok() && s.code() != absl::StatusCode::kNotFound) {
    return s;
  }
  state.stage = "finished";
  if (absl::Status s = control_->PutMigration(state); !s.ok()) return s;
  steps.Done("mirror stopped; " + state.topic + " lives on " + state.to);
  return ToProto(state);
}

absl::StatusOr<v1::Migration> MigrationOperations::Rollback(const std::string& topic) {
  absl::StatusOr<control::MigrationState> found = Find(topic);
  if (!found.ok()) return found.status();
  control::MigrationState state = *std::move(found);
  if (absl::Status s =
          RequireStage(state,
                       {"mirroring", "consumers-paused", "consumers", "producers-held",
                        "rollback-paused", "producers", "rollback-held"},
                       "rollback");
      !s.ok()) {
    return s;
  }
  Steps steps;
  if (state.stage == "producers" || state.stage == "rollback-held") {
    if (absl::Status s = RollbackWrites(state, steps); !s.ok()) return s;
  } else {
    if (absl::Status s = RollbackReads(state, steps); !s.ok()) return s;
  }
  v1::Migration out = ToProto(state);
  for (const std::string& line : steps.lines()) out.add_steps(line);
  return out;
}

absl::Status MigrationOperations::RollbackReads(control::MigrationState& state,
                                                Steps& steps) {
  const std::string& topic = state.topic;
  if (state.stage == "producers-held") {
    // A producer stage that failed or died: writes never left A.
    absl::StatusOr<int64_t> released =
        Issue(control::WriteHoldCommand{.topic = topic, .held = false});
    if (!released.ok()) return released.status();
  }
  if (state.stage != "mirroring") {
    absl::StatusOr<routing::Route> route = routes_->Current()->Resolve(topic);
    if (!route.ok()) return route.status();
    // Reads still on B (the mirror runs until they leave it): the groups'
    // offsets on A are the cutover's; move them past what was read on B.
    const bool reads_b =
        std::find(route->read.begin(), route->read.end(), state.to) != route->read.end();
    // Most of the translation before the pause: the groups wait only for
    // what they read since.
    const EarlierReturns earlier =
        reads_b ? TranslateBackEarly(state, false, steps) : EarlierReturns{};
    state.stage = "rollback-paused";
    if (absl::Status s = control_->PutMigration(state); !s.ok()) return s;
    if (absl::Status s = SetPaused(state.groups, true); !s.ok()) return s;
    steps.Done(fmt::format("paused {} group(s) on every node", state.groups.size()));
    if (reads_b) {
      if (absl::Status s = Settle(*clusters_.at(state.to), topic, state.groups);
          !s.ok()) {
        return s;
      }
      steps.Done("acknowledged messages committed on " + state.to);
      if (absl::Status s =
              MoveOffsetsBack(state, false, earlier, absl::InfiniteFuture(),
                              "run rollback again (the groups stay paused)", steps);
          !s.ok()) {
        return s;
      }
    }
    if (absl::Status s = RouteTo(topic, route->write, state.from); !s.ok()) return s;
    steps.Done("reads routed to " + state.from);
  }
  if (absl::Status s = StopMirror(MigrationMirrorName(topic)); !s.ok()) return s;
  steps.Done("mirror stopped");
  state.stage = "rolled-back";
  if (absl::Status s = control_->PutMigration(state); !s.ok()) return s;
  if (absl::Status s = SetPaused(state.groups, false); !s.ok()) return s;
  steps.Done("groups resumed");
  return absl::OkStatus();
}

absl::Status MigrationOperations::RollbackWrites(control::MigrationState& state,
                                                 Steps& steps) {
  const std::string& topic = state.topic;
  const std::string back = RollbackMirrorName(topic);
  const control::WriteHoldCommand release{.topic = topic, .held = false};
  absl::StatusOr<routing::Route> route = routes_->Current()->Resolve(topic);
  if (!route.ok()) return route.status();
  // Writes still on B; otherwise a previous run died after routing them to
  // A and only the steps after the routing remain.
  if (!route->write.empty() && route->write.front() == state.to) {
    state.stage = "rollback-held";
    if (absl::Status s = control_->PutMigration(state); !s.ok()) return s;
    // What producers outside Ferry still write to A stays there, where the
    // groups will read it; nothing must go round A -> B -> A.
    if (absl::Status s = StopMirror(MigrationMirrorName(topic)); !s.ok()) return s;
    v1::MirrorJob job;
    job.set_name(back);
    job.set_source(state.to);
    job.set_target(state.from);
    job.add_topics(topic);
    job.set_skip_origin(state.from);
    if (absl::StatusOr<v1::MirrorJob> s = mirrors_->Start(job); !s.ok()) {
      return s.status();
    }
    steps.Done(fmt::format("mirror {0} -> {1} stopped; mirror {1} -> {0} started",
                           state.from, state.to));
    // Most of B is copied before writes are held: the hold waits only for
    // the last records.
    const std::string then =
        fmt::format("writes stay on {} (run rollback again)", state.to);
    absl::StatusOr<std::map<int32_t, int64_t>> ends = Ends(state.to, topic);
    if (!ends.ok()) return ends.status();
    if (absl::Status s = AwaitMirrored(back, state.to, *ends, then); !s.ok()) return s;
    steps.Done(fmt::format("mirror {} -> {} caught up", state.to, state.from));
    // Translated up to the groups' current offsets while writes still flow:
    // inside the hold only what they read since is read again.
    const EarlierReturns earlier = TranslateBackEarly(state, true, steps);
    absl::StatusOr<int64_t> held =
        Issue(control::WriteHoldCommand{.topic = topic, .held = true});
    if (!held.ok()) return held.status();
    const absl::Time hold_start = absl::Now();
    // Any failure below releases the hold and resumes the groups: the topic
    // works on B as before, and rollback can run again.
    auto fail = [&](absl::Status status) -> absl::Status {
      if (absl::StatusOr<int64_t> s = Issue(release); !s.ok()) {
        spdlog::error("migration of {}: cannot release the write hold: {}", topic,
                      std::string(s.status().message()));
      }
      if (absl::Status s = SetPaused(state.groups, false); !s.ok()) {
        spdlog::error("migration of {}: cannot resume the groups: {}", topic,
                      std::string(s.message()));
      }
      return status;
    };
    if (absl::Status s = control_->AwaitApplied(*held, options_.barrier_timeout);
        !s.ok()) {
      return fail(s);
    }
    if (absl::Status s = SetPaused(state.groups, true); !s.ok()) return fail(s);
    steps.Done(fmt::format("writes held and {} group(s) paused on every node",
                           state.groups.size()));
    ends = Ends(state.to, topic);
    if (!ends.ok()) return fail(ends.status());
    if (absl::Status s = AwaitMirrored(back, state.to, *ends, then); !s.ok()) {
      return fail(s);
    }
    steps.Done(fmt::format("mirror {} -> {} copied {} to its end", state.to, state.from,
                           state.to));
    if (absl::Status s = Settle(*clusters_.at(state.to), topic, state.groups); !s.ok()) {
      return fail(s);
    }
    steps.Done("acknowledged messages committed on " + state.to);
    if (absl::Status s = MoveOffsetsBack(
            state, true, earlier,
            hold_start + options_.max_write_hold -
                WriteHoldMargin(options_.max_write_hold),
            "run rollback again (the write hold was released and the groups resumed)",
            steps);
        !s.ok()) {
      return fail(s);
    }
    if (absl::Status s = RouteTo(topic, {state.from}, state.from); !s.ok()) {
      return fail(s);
    }
    steps.Done("writes and reads routed to " + state.from);
  }
  if (absl::StatusOr<int64_t> s = Issue(release); !s.ok()) return s.status();
  if (absl::Status s = SetPaused(state.groups, false); !s.ok()) return s;
  steps.Done("writes released, groups resumed");
  // A node whose hold expired (migration.max_write_hold) may have written to
  // B after the copy above: B's end must reach A before the mirror stops.
  absl::StatusOr<std::map<int32_t, int64_t>> ends = Ends(state.to, topic);
  if (!ends.ok()) return ends.status();
  if (absl::Status s = AwaitMirrored(back, state.to, *ends, "run rollback again");
      !s.ok() && s.code() != absl::StatusCode::kNotFound) {
    return s;
  }
  for (const std::string& mirror : {back, MigrationMirrorName(topic)}) {
    if (absl::Status s = StopMirror(mirror); !s.ok()) return s;
  }
  state.stage = "rolled-back";
  if (absl::Status s = control_->PutMigration(state); !s.ok()) return s;
  steps.Done("mirrors stopped");
  return absl::OkStatus();
}

bool MigrationOperations::Stopping() const {
  return options_.stopping && options_.stopping();
}

absl::Status MigrationOperations::StopMirror(const std::string& name) {
  absl::Status s = mirrors_->Stop(name);
  return s.code() == absl::StatusCode::kNotFound ? absl::OkStatus() : s;
}

absl::StatusOr<v1::Migration> MigrationOperations::Get(const std::string& topic) const {
  absl::StatusOr<control::MigrationState> state = Find(topic);
  if (!state.ok()) return state.status();
  return ToProto(*state);
}

absl::StatusOr<std::vector<v1::Migration>> MigrationOperations::List(
    const std::string& stage) const {
  if (!stage.empty() &&
      std::find(kStages.begin(), kStages.end(), stage) == kStages.end()) {
    return absl::InvalidArgumentError(fmt::format(
        "stage: unknown stage \"{}\" (one of {})", stage, fmt::join(kStages, ", ")));
  }
  std::vector<v1::Migration> listed;
  if (control_ == nullptr) return listed;
  for (const control::MigrationState& state : control_->Migrations()) {
    if (stage.empty() || state.stage == stage) listed.push_back(ToProto(state));
  }
  return listed;
}

absl::StatusOr<std::vector<std::string>> MigrationOperations::GroupsOf(
    backend::Cluster& cluster, const std::string& topic) const {
  absl::StatusOr<std::vector<std::string>> groups = cluster.ListGroups();
  if (!groups.ok()) return groups.status();
  std::vector<std::string> found;
  for (const std::string& group : *groups) {
    if (group.starts_with("__ferry") ||
        group == mirror::MirrorGroup(MigrationMirrorName(topic))) {
      continue;
    }
    absl::StatusOr<std::map<backend::TopicPartition, int64_t>> committed =
        cluster.CommittedOffsets(group, {topic});
    if (!committed.ok()) return committed.status();
    if (std::any_of(committed->begin(), committed->end(),
                    [](const auto& entry) { return entry.second >= 0; })) {
      found.push_back(group);
    }
  }
  return found;
}

absl::Status MigrationOperations::AddLateGroups(control::MigrationState& state,
                                                Steps& steps) {
  backend::Cluster& from = *clusters_.at(state.from);
  absl::StatusOr<std::vector<std::string>> listed = GroupsOf(from, state.topic);
  if (!listed.ok()) return listed.status();
  std::vector<std::string> late;
  for (const std::string& group : *listed) {
    if (std::find(state.groups.begin(), state.groups.end(), group) ==
        state.groups.end()) {
      late.push_back(group);
    }
  }
  if (late.empty()) return absl::OkStatus();
  // Recorded before they are paused: a run that dies next resumes them too.
  state.groups.insert(state.groups.end(), late.begin(), late.end());
  if (absl::Status s = control_->PutMigration(state); !s.ok()) return s;
  if (absl::Status s = SetPaused(late, true); !s.ok()) return s;
  if (absl::Status s = Settle(from, state.topic, late); !s.ok()) return s;
  steps.Done(fmt::format("{} group(s) that subscribed meanwhile paused and settled: {}",
                         late.size(), fmt::join(late, ", ")));
  return absl::OkStatus();
}

absl::Status MigrationOperations::SetPaused(const std::vector<std::string>& groups,
                                            bool paused) {
  int64_t last = -1;
  for (const std::string& group : groups) {
    absl::StatusOr<int64_t> offset =
        Issue(control::PauseCommand{.group = group, .paused = paused});
    if (!offset.ok()) return offset.status();
    last = *offset;
  }
  if (last < 0) return absl::OkStatus();
  return control_->AwaitApplied(last, options_.barrier_timeout);
}

absl::Status MigrationOperations::Settle(backend::Cluster& cluster,
                                         const std::string& topic,
                                         const std::vector<std::string>& groups) {
  const absl::Time give_up = absl::Now() + options_.mirror_timeout;
  for (const std::string& group : groups) {
    std::map<backend::TopicPartition, int64_t> before;
    absl::Time unchanged_since = absl::Now();
    while (true) {
      auto now = cluster.CommittedOffsets(group, {topic});
      if (!now.ok()) return now.status();
      if (*now != before) {
        before = *std::move(now);
        unchanged_since = absl::Now();
      } else if (absl::Now() - unchanged_since >= options_.settle) {
        break;
      }
      if (absl::Now() >= give_up) {
        return absl::DeadlineExceededError(fmt::format(
            "group {}: its committed offsets on {} kept changing while "
            "paused for {}",
            group, cluster.name(), absl::FormatDuration(options_.mirror_timeout)));
      }
      absl::SleepFor(kPoll);
    }
  }
  return absl::OkStatus();
}

MigrationOperations::EarlierForwards MigrationOperations::TranslateForwardEarly(
    const control::MigrationState& state, Steps& steps) {
  EarlierForwards earlier;
  for (const std::string& group : state.groups) {
    absl::StatusOr<std::vector<mirror::Translation>> translated =
        mirror::TranslateOffsets(ForwardSpec(state), group, *clusters_.at(state.from),
                                 *clusters_.at(state.to),
                                 {.timeout = options_.translate_timeout});
    // Only a head start: MoveOffsetsForward does the whole work without it.
    if (!translated.ok()) {
      spdlog::warn("migration of {}: group {}: no early translation: {}", state.topic,
                   group, std::string(translated.status().message()));
      continue;
    }
    earlier[group] = *std::move(translated);
  }
  steps.Done(fmt::format("{} of {} group(s) translated up to their current offsets",
                         earlier.size(), state.groups.size()));
  return earlier;
}

absl::Status MigrationOperations::MoveOffsetsForward(control::MigrationState& state,
                                                     const EarlierForwards& earlier,
                                                     Steps& steps) {
  backend::Cluster& from = *clusters_.at(state.from);
  backend::Cluster& to = *clusters_.at(state.to);
  // A partition some group had no offset in: that group may read B from
  // its start, so a rollback must too.
  std::map<int32_t, int64_t> cutover;
  std::set<int32_t> from_start;
  for (const std::string& group : state.groups) {
    const absl::Time give_up = absl::Now() + options_.mirror_timeout;
    std::map<backend::TopicPartition, int64_t> target;
    mirror::ForwardHints hints;
    if (auto it = earlier.find(group); it != earlier.end()) hints.earlier = it->second;
    while (true) {
      absl::StatusOr<std::vector<mirror::Translation>> translated;
      auto translate = [&] {
        translated =
            mirror::TranslateOffsets(ForwardSpec(state), group, from, to,
                                     {.timeout = options_.translate_timeout}, hints);
        return translated.status();
      };
      if (absl::Status s = backend::RetryRefusedScans(
              give_up, [this] { return Stopping(); }, translate);
          !s.ok()) {
        return TranslationError(group, s, "run the stage again (the groups stay paused)");
      }
      // B's end, read before A's: when the group is at A's end and the
      // mirror copied everything below it, B's end (read first) holds no
      // copy of a later record.
      absl::StatusOr<backend::TopicInfo> to_info = to.DescribeTopic(state.topic);
      absl::StatusOr<backend::TopicInfo> from_info = from.DescribeTopic(state.topic);
      if (!to_info.ok()) return to_info.status();
      if (!from_info.ok()) return from_info.status();
      target.clear();
      bool complete = true;
      for (const mirror::Translation& t : *translated) {
        if (t.state == mirror::Translation::State::kNoGroupOffset) continue;
        const int32_t p = t.partition.partition;
        std::optional<int64_t> offset = mirror::TargetResumeOffset(
            t, HighWatermark(*from_info, p), HighWatermark(*to_info, p));
        if (offset.has_value()) {
          target[t.partition] = *offset;
        } else {
          complete = false;
        }
      }
      if (complete) break;
      hints.earlier = *std::move(translated);
      if (Stopping()) return absl::CancelledError("the node is stopping");
      if (absl::Now() >= give_up) {
        return absl::DeadlineExceededError(fmt::format(
            "group {}: the mirror has not copied its committed offsets on {} within {}; "
            "run the stage again (the groups stay paused)",
            group, state.from, absl::FormatDuration(options_.mirror_timeout)));
      }
      absl::SleepFor(kPoll);
    }
    if (!target.empty()) {
      if (absl::Status s = to.AlterCommittedOffsets(group, target); !s.ok()) return s;
    }
    absl::StatusOr<std::map<int32_t, int64_t>> ends = Ends(state.to, state.topic);
    if (!ends.ok()) return ends.status();
    for (const auto& [partition, unused] : *ends) {
      auto offset = target.find({state.topic, partition});
      if (offset == target.end()) {
        from_start.insert(partition);
      } else if (auto [it, added] = cutover.try_emplace(partition, offset->second);
                 !added) {
        it->second = std::min(it->second, offset->second);
      }
    }
    steps.Done(
        fmt::format("group {}: {} partition offsets translated and committed on {}",
                    group, target.size(), state.to));
  }
  for (int32_t partition : from_start) cutover.erase(partition);
  state.cutover = std::move(cutover);
  return absl::OkStatus();
}

control::MirrorSpec MigrationOperations::ForwardSpec(
    const control::MigrationState& state) const {
  return mirror::MigrationMirror(state);
}

mirror::ReturnHints MigrationOperations::ReturnHintsFor(
    const control::MigrationState& state, const EarlierReturns& earlier,
    const std::string& group) const {
  mirror::ReturnHints hints;
  for (const auto& [partition, offset] : state.cutover) {
    hints.cutover[{state.topic, partition}] = offset;
  }
  if (auto it = earlier.find(group); it != earlier.end()) hints.earlier = it->second;
  return hints;
}

MigrationOperations::EarlierReturns MigrationOperations::TranslateBackEarly(
    const control::MigrationState& state, bool copied_back, Steps& steps) {
  EarlierReturns earlier;
  for (const std::string& group : state.groups) {
    absl::StatusOr<std::vector<mirror::ReturnPosition>> positions = mirror::TranslateBack(
        ForwardSpec(state), group, *clusters_.at(state.from), *clusters_.at(state.to),
        copied_back, ReturnHintsFor(state, {}, group),
        {.timeout = options_.translate_timeout});
    // Only a head start: MoveOffsetsBack does the whole work without it.
    if (!positions.ok()) {
      spdlog::warn("migration of {}: group {}: no early translation back: {}",
                   state.topic, group, std::string(positions.status().message()));
      continue;
    }
    earlier[group] = *std::move(positions);
  }
  steps.Done(fmt::format("{} of {} group(s) translated back up to their current offsets",
                         earlier.size(), state.groups.size()));
  return earlier;
}

absl::Status MigrationOperations::MoveOffsetsBack(const control::MigrationState& state,
                                                  bool copied_back,
                                                  const EarlierReturns& earlier,
                                                  absl::Time hold_bound,
                                                  std::string_view then, Steps& steps) {
  for (const std::string& group : state.groups) {
    const absl::Time started = absl::Now();
    const absl::Time give_up = std::min(started + options_.mirror_timeout, hold_bound);
    std::map<backend::TopicPartition, int64_t> source;
    while (true) {
      absl::StatusOr<std::vector<mirror::ReturnPosition>> positions =
          absl::DeadlineExceededError("no time left to read");
      // Whether the last attempt ended at the hold's bound rather than its
      // own timeout: its calls then return at or slightly before the bound
      // (librdkafka rounds down, gives up a back-off early, and reports a
      // silent broker as UNAVAILABLE), so the clock cannot tell.
      bool bounded_by_hold = false;
      auto translate = [&] {
        // A write hold ends at its bound, not after an attempt's reads. The
        // bound passing in a back-off leaves the last attempt's cause.
        const absl::Duration left = hold_bound - absl::Now();
        bounded_by_hold = left <= options_.translate_timeout;
        if (left > absl::ZeroDuration()) {
          positions = mirror::TranslateBack(
              ForwardSpec(state), group, *clusters_.at(state.from),
              *clusters_.at(state.to), copied_back, ReturnHintsFor(state, earlier, group),
              {.timeout = std::min(options_.translate_timeout, left)});
        }
        return positions.status();
      };
      if (absl::Status s = backend::RetryRefusedScans(
              give_up, [this] { return Stopping(); }, translate);
          !s.ok()) {
        // Out of time (an attempt cut by the bound, or refused until it).
        const bool refused = backend::IsScanRefused(s);
        const bool cut = bounded_by_hold && !refused &&
                         (s.code() == absl::StatusCode::kDeadlineExceeded ||
                          s.code() == absl::StatusCode::kUnavailable);
        if (cut || (refused && absl::Now() >= hold_bound)) {
          return absl::DeadlineExceededError(fmt::format(
              "group {}: translating its offsets back reached the write hold's bound "
              "(migration.max_write_hold {} less {} to release it), last: {}; {}",
              group, absl::FormatDuration(options_.max_write_hold),
              absl::FormatDuration(WriteHoldMargin(options_.max_write_hold)),
              std::string(s.message()), then));
        }
        return TranslationError(group, s, then);
      }
      source.clear();
      const mirror::ReturnPosition* unknown = nullptr;
      for (const mirror::ReturnPosition& p : *positions) {
        if (!p.complete) {
          unknown = &p;
        } else if (p.source_offset >= 0) {
          source[p.partition] = p.source_offset;
        }
      }
      if (unknown == nullptr) break;
      if (Stopping()) return absl::CancelledError("the node is stopping");
      if (absl::Now() >= give_up) {
        return absl::DeadlineExceededError(fmt::format(
            "group {}: its committed offset {} on {} in {}/{} could not be translated "
            "back to {} within {} (the records before it were not all read); {}",
            group, unknown->target_offset, state.to, unknown->partition.topic,
            unknown->partition.partition, state.from,
            absl::FormatDuration(absl::Now() - started), then));
      }
      absl::SleepFor(kPoll);
    }
    if (!source.empty()) {
      if (absl::Status s = clusters_.at(state.from)->AlterCommittedOffsets(group, source);
          !s.ok()) {
        return s;
      }
    }
    steps.Done(
        fmt::format("group {}: {} partition offsets translated back and committed on {}",
                    group, source.size(), state.from));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<int32_t, int64_t>> MigrationOperations::Ends(
    const std::string& cluster, const std::string& topic) {
  absl::StatusOr<backend::TopicInfo> info = clusters_.at(cluster)->DescribeTopic(topic);
  if (!info.ok()) return info.status();
  std::map<int32_t, int64_t> ends;
  for (const backend::PartitionInfo& p : info->partitions) ends[p.id] = p.high_watermark;
  return ends;
}

absl::Status MigrationOperations::AwaitMirrored(const std::string& mirror,
                                                const std::string& cluster,
                                                const std::map<int32_t, int64_t>& ends,
                                                const std::string& then) {
  const absl::Time give_up = absl::Now() + options_.mirror_timeout;
  std::map<int32_t, absl::Time> one_short_since;
  while (true) {
    absl::StatusOr<v1::MirrorStatus> status = mirrors_->Status(mirror);
    if (!status.ok()) return status.status();
    const absl::Time now = absl::Now();
    bool done = true;
    for (const v1::MirrorPartition& p : status->partitions()) {
      auto end = ends.find(p.partition());
      if (end == ends.end() || p.committed_offset() >= end->second) continue;
      if (p.committed_offset() == end->second - 1) {
        auto [since, unused] = one_short_since.try_emplace(p.partition(), now);
        if (now - since->second >= kMarkerGrace) continue;
      }
      done = false;
    }
    if (done) return absl::OkStatus();
    if (now >= give_up) {
      return absl::DeadlineExceededError(
          fmt::format("mirror {} did not copy {} up to its end within {}; {}", mirror,
                      cluster, absl::FormatDuration(options_.mirror_timeout), then));
    }
    absl::SleepFor(kPoll);
  }
}

absl::Status MigrationOperations::RouteTo(const std::string& topic,
                                          const std::vector<std::string>& write,
                                          const std::string& read) {
  absl::StatusOr<routing::Route> current = routes_->Current()->Resolve(topic);
  return control_->PutRoute(
      {.topic = topic,
       .write = write,
       .read = {read},
       .auto_create_topics = current.ok() && current->auto_create_topics});
}

}  // namespace ferry::admin
