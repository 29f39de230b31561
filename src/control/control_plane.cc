#include "control/control_plane.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <random>

namespace ferry::control {
namespace {

constexpr absl::Duration kRetryInterval = absl::Seconds(2);
// How often to look whether the first probe of the cluster has answered.
constexpr absl::Duration kProbeWait = absl::Milliseconds(100);
// How long departed nodes stay listed.
constexpr absl::Duration kKeepDeparted = absl::Minutes(10);
// How long a stopping node waits for its departure record.
constexpr absl::Duration kLeaveTimeout = absl::Seconds(2);
// How often a barrier looks again (liveness changes with time alone).
constexpr absl::Duration kBarrierRecheck = absl::Milliseconds(100);

std::string RandomHex() {
  std::random_device device;
  return fmt::format("{:016x}", (uint64_t{device()} << 32) | device());
}

// The same routes, in any order (the control topic lists them by glob).
bool SameRoutes(std::vector<config::RouteConfig> a, std::vector<config::RouteConfig> b) {
  auto by_topic = [](const config::RouteConfig& x, const config::RouteConfig& y) {
    return x.topic < y.topic;
  };
  std::sort(a.begin(), a.end(), by_topic);
  std::sort(b.begin(), b.end(), by_topic);
  return a == b;
}

}  // namespace

ControlPlane::ControlPlane(backend::Cluster* cluster, Options options,
                           ControlListener* listener)
    : cluster_(cluster),
      options_(std::move(options)),
      listener_(listener),
      member_listener_(std::make_shared<backend::CuttableListener>(
          static_cast<backend::GroupMemberListener*>(this))),
      nodes_(options_.node_timeout, kKeepDeparted) {
  starter_ = std::thread([this] { Run(); });
  heartbeat_ = std::thread([this] { Heartbeat(); });
}

void ControlPlane::CutStart() {
  absl::MutexLock lock(&mu_);
  start_cut_ = true;
}

bool ControlPlane::StartCut() const {
  absl::MutexLock lock(&mu_);
  return start_cut_;
}

void ControlPlane::EndStart() {
  {
    absl::MutexLock lock(&mu_);
    start_cut_ = true;
    stopping_ = true;
  }
  if (starter_.joinable()) starter_.join();
}

ControlPlane::~ControlPlane() {
  EndStart();
  bool ready;
  {
    absl::MutexLock lock(&mu_);
    ready = topic_ready_;
  }
  if (heartbeat_.joinable()) heartbeat_.join();
  // Others stop waiting for this node at once instead of after node_timeout.
  if (ready) {
    if (auto left = Write(OwnBeat(/*left=*/true), kLeaveTimeout); !left.ok()) {
      spdlog::warn("control topic {}: cannot record this node's departure: {}",
                   options_.topic, std::string(left.status().message()));
    }
  }
  if (member_ != nullptr) {
    backend::LeaveOneWithin(std::move(member_), member_listener_, cluster_,
                            backend::ConsumerKind::kControlReader, options_.leave_timeout,
                            fmt::format("control topic {} reader", options_.topic));
  }
}

NodeBeat ControlPlane::OwnBeat(bool left) const {
  int64_t applied;
  {
    absl::MutexLock lock(&mu_);
    applied = last_command_;
  }
  // Outside mu_: the listener takes its own locks.
  if (std::optional<int64_t> unsettled = listener_->OldestUnsettled()) {
    applied = std::min(applied, *unsettled - 1);
  }
  return {.node_id = options_.node_id,
          .left = left,
          .started_ms = absl::ToUnixMillis(options_.started),
          .seen_ms = absl::ToUnixMillis(absl::Now()),
          .applied_offset = applied,
          .version = options_.version,
          .grpc_address = options_.grpc_address,
          .http_address = options_.http_address};
}

void ControlPlane::Heartbeat() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || beat_due_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&woken), options_.heartbeat_interval);
      if (stopping_) return;
      beat_due_ = false;
      if (!topic_ready_) continue;
    }
    WriteAsync(OwnBeat(/*left=*/false), "write this node's heartbeat");
  }
}

void ControlPlane::BeatSoon() {
  absl::MutexLock lock(&mu_);
  beat_due_ = true;
}

absl::Status ControlPlane::EnsureTopic() {
  auto info = cluster_->DescribeTopicWithin(options_.topic, options_.start_call_timeout);
  if (info.ok()) {
    absl::MutexLock lock(&mu_);
    start_end_ = info->partitions.empty() ? 0 : info->partitions[0].high_watermark;
    return absl::OkStatus();
  }
  if (info.status().code() != absl::StatusCode::kNotFound) return info.status();
  // A stopping node waits for one call of its start at most (the watchdog's
  // margin counts one admin_timeout, less the grace it overlaps).
  if (StartCut()) return absl::CancelledError("the node is stopping");
  absl::Status created =
      cluster_->CreateTopic(options_.topic, 1, -1,
                            // Hourly segments: Kafka compacts only closed
                            // segments, and heartbeats would otherwise pile
                            // up for the default week.
                            {{"cleanup.policy", "compact"}, {"segment.ms", "3600000"}});
  if (!created.ok() && created.code() != absl::StatusCode::kAlreadyExists) return created;
  absl::MutexLock lock(&mu_);
  start_end_ = 0;
  return absl::OkStatus();
}

void ControlPlane::Run() {
  // Retries until the control cluster answers; the node serves meanwhile,
  // with new groups held paused until the pause state is known.
  while (true) {
    if (StartCut()) return;
    // Asked only once the probe found the cluster up: a call to a down
    // cluster blocks for the admin timeout, and a stopping node waits for it.
    const backend::ClusterStatus known = cluster_->Status();
    absl::Status status =
        known.state == backend::ClusterState::kUp
            ? EnsureTopic()
            : absl::UnavailableError(known.error.empty() ? "waiting for the first probe"
                                                         : known.error);
    if (status.ok()) break;
    if (known.state != backend::ClusterState::kConnecting &&
        status.code() != absl::StatusCode::kCancelled) {
      spdlog::warn("control topic {} on cluster {}: {} (retrying)", options_.topic,
                   cluster_->name(), std::string(status.message()));
    }
    absl::MutexLock lock(&mu_);
    const absl::Duration pause =
        known.state == backend::ClusterState::kConnecting ? kProbeWait : kRetryInterval;
    if (mu_.AwaitWithTimeout(absl::Condition(&start_cut_), pause)) return;
  }
  if (StartCut()) return;
  // Standalone: the name never reaches the cluster as a group (Kafka only
  // looks up its coordinator); stable per node, so an ACL can name it.
  auto member =
      cluster_->JoinGroup({.group = fmt::format("__ferry_control.{}", options_.node_id),
                           .client_id = "ferryd/" + options_.node_id,
                           .topics = {options_.topic},
                           .start = {.kind = backend::StartPosition::Kind::kEarliest},
                           .standalone = true},
                          member_listener_.get());
  if (!member.ok()) {
    spdlog::error("control topic {}: cannot read: {}", options_.topic,
                  std::string(member.status().message()));
    return;
  }
  absl::MutexLock lock(&mu_);
  // Also when stopping: the destructor closes it, within its bound.
  member_ = *std::move(member);
  topic_ready_ = true;
}

void ControlPlane::OnAssigned(const std::vector<backend::AssignedPartition>& partitions) {
  bool caught_up = false;
  {
    absl::MutexLock lock(&mu_);
    // Nothing to read (empty topic, or compaction left nothing below the end).
    for (const auto& p : partitions) caught_up |= p.next_offset >= start_end_;
  }
  if (caught_up) MarkCaughtUp();
}

void ControlPlane::OnRecords(std::vector<backend::ConsumedRecord> records) {
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  for (const backend::ConsumedRecord& record : records) {
    std::optional<ControlCommand> command = Decode(record.key, record.value);
    if (!command.has_value()) {
      spdlog::warn("control topic {}: skipping record at offset {} (key \"{}\")",
                   options_.topic, record.offset, record.key);
    } else if (const auto* pause = std::get_if<PauseCommand>(&*command)) {
      bool changed;
      {
        absl::MutexLock lock(&mu_);
        changed = pause->paused ? paused_.insert(pause->group).second
                                : paused_.erase(pause->group) > 0;
      }
      if (changed) listener_->OnPaused(pause->group, pause->paused);
    } else if (const auto* filter = std::get_if<GroupFilterCommand>(&*command)) {
      {
        absl::MutexLock lock(&mu_);
        if (filter->filter.empty()) {
          group_filters_.erase(filter->group);
        } else {
          group_filters_[filter->group] = filter->filter;
        }
      }
      listener_->OnGroupFilter(filter->group, filter->filter);
    } else if (const auto* seek = std::get_if<SeekCommand>(&*command)) {
      OnSeekRecord(*seek, now_ms);
    } else if (const auto* applied = std::get_if<SeekApplied>(&*command)) {
      OnSeekAppliedRecord(*applied);
    } else if (const auto* route = std::get_if<RouteChange>(&*command)) {
      OnRouteRecord(*route);
    } else if (const auto* drain = std::get_if<DrainCommand>(&*command)) {
      OnDrainRecord(*drain);
    } else if (const auto* mirror = std::get_if<MirrorChange>(&*command)) {
      OnMirrorRecord(*mirror);
    } else if (const auto* beat = std::get_if<NodeBeat>(&*command)) {
      absl::MutexLock lock(&mu_);
      nodes_.Record(*beat, absl::Now(), /*replaying=*/!caught_up_);
    } else if (const auto* hold = std::get_if<WriteHoldCommand>(&*command)) {
      listener_->OnWriteHold(hold->topic, hold->held, record.offset);
    } else if (const auto* migration = std::get_if<MigrationState>(&*command)) {
      absl::MutexLock lock(&mu_);
      migrations_[migration->topic] = *migration;
    } else if (const auto* client = std::get_if<ClientSettingsChange>(&*command)) {
      absl::MutexLock lock(&mu_);
      client_settings_ = client->settings;
    } else if (const auto* grant = std::get_if<AclGrant>(&*command)) {
      OnAclRecord(*grant);
    } else {
      OnRouteRecord(std::nullopt);
    }
    bool caught_up;
    {
      absl::MutexLock lock(&mu_);
      read_next_ = record.offset + 1;
      if (!command.has_value() || !std::holds_alternative<NodeBeat>(*command)) {
        last_command_ = record.offset;
        beat_due_ = caught_up_;  // a barrier may wait for it
      }
      caught_up = record.offset + 1 >= start_end_;
    }
    if (caught_up) MarkCaughtUp();
  }
}

void ControlPlane::OnSeekRecord(const SeekCommand& seek, int64_t now_ms) {
  if (seek.valid_until_ms < now_ms) return;
  {
    absl::MutexLock lock(&mu_);
    std::erase_if(latest_seeks_, [now_ms](const auto& entry) {
      return entry.second.command.valid_until_ms < now_ms;
    });
    latest_seeks_[{seek.group, seek.cluster}] = {.command = seek, .applied = {}};
  }
  std::set<backend::TopicPartition> moved = listener_->OnSeek(seek);
  if (!moved.empty()) ConfirmSeek(seek.group, seek.id, std::move(moved));
}

void ControlPlane::OnRouteRecord(const std::optional<RouteChange>& change) {
  std::optional<std::vector<config::RouteConfig>> changed;
  {
    absl::MutexLock lock(&mu_);
    if (!change) {
      routes_seeded_ = true;
    } else if (change->route) {
      routes_[change->topic] = *change->route;
    } else {
      routes_.erase(change->topic);
    }
    if (caught_up_ && routes_seeded_) changed = RouteList();
  }
  if (changed) listener_->OnRoutes(*changed);
}

void ControlPlane::OnDrainRecord(const DrainCommand& drain) {
  bool changed;
  {
    absl::MutexLock lock(&mu_);
    changed = drain.drained ? drained_.insert(drain.cluster).second
                            : drained_.erase(drain.cluster) > 0;
  }
  if (changed) listener_->OnDrained(drain.cluster, drain.drained);
}

void ControlPlane::OnMirrorRecord(const MirrorChange& change) {
  std::optional<std::vector<MirrorSpec>> changed;
  {
    absl::MutexLock lock(&mu_);
    if (change.spec) {
      mirrors_[change.name] = *change.spec;
    } else {
      mirrors_.erase(change.name);
    }
    if (caught_up_) changed = MirrorList();
  }
  if (changed) listener_->OnMirrors(*changed);
}

std::vector<MirrorSpec> ControlPlane::MirrorList() const {
  std::vector<MirrorSpec> mirrors;
  mirrors.reserve(mirrors_.size());
  for (const auto& [name, spec] : mirrors_) mirrors.push_back(spec);
  return mirrors;
}

std::vector<config::RouteConfig> ControlPlane::RouteList() const {
  std::vector<config::RouteConfig> routes;
  routes.reserve(routes_.size());
  for (const auto& [topic, route] : routes_) routes.push_back(route);
  return routes;
}

void ControlPlane::SeedOrPublishRoutes() {
  std::vector<config::RouteConfig> routes;
  bool seeded;
  {
    absl::MutexLock lock(&mu_);
    seeded = routes_seeded_;
    if (seeded) {
      routes = RouteList();
    } else {
      for (const config::RouteConfig& route : options_.seed_routes) {
        if (!routes_.contains(route.topic)) routes.push_back(route);
      }
    }
  }
  if (seeded) {
    spdlog::info(
        "control topic {}: {} routes apply (the control topic's; YAML routes "
        "only seed a fresh control topic)",
        options_.topic, routes.size());
    if (!SameRoutes(routes, options_.seed_routes)) {
      spdlog::warn(
          "control topic {}: the configuration's routes differ from the control "
          "topic's, which apply; change routes with ferry routes put|delete",
          options_.topic);
    }
    listener_->OnRoutes(routes);
    return;
  }
  // Asynchronous: this runs on the reading thread, which must go on reading.
  // Nodes starting together may both seed; they write the same YAML, or the
  // later node's records win as a whole route each.
  spdlog::info("control topic {}: seeding {} routes from the configuration",
               options_.topic, routes.size());
  for (const config::RouteConfig& route : routes) {
    WriteAsync(RouteChange{.topic = route.topic, .route = route}, "seed route");
  }
  WriteAsync(RoutesSeeded{}, "mark routes seeded");
}

void ControlPlane::WriteAsync(const ControlCommand& command, std::string what) {
  EncodedRecord encoded = Encode(command);
  cluster_->Publish(
      {.topic = options_.topic,
       .key = std::move(encoded.key),
       .value = std::move(encoded.value)},
      [topic = options_.topic, what = std::move(what)](backend::PublishOutcome outcome) {
        if (outcome.status.ok()) return;
        spdlog::warn("control topic {}: cannot {}: {}", topic, what,
                     std::string(outcome.status.message()));
      });
}

void ControlPlane::OnSeekAppliedRecord(const SeekApplied& applied) {
  absl::MutexLock lock(&mu_);
  if (auto it = awaited_seeks_.find(applied.seek_id); it != awaited_seeks_.end()) {
    it->second.insert(applied.partitions.begin(), applied.partitions.end());
  }
  for (auto it = latest_seeks_.lower_bound({applied.group, ""});
       it != latest_seeks_.end() && it->first.first == applied.group; ++it) {
    if (it->second.command.id == applied.seek_id) {
      it->second.applied.insert(applied.partitions.begin(), applied.partitions.end());
    }
  }
}

std::optional<SeekLedger::Unapplied> ControlPlane::UnappliedSeek(
    const std::string& group, const std::string& cluster,
    const backend::TopicPartition& partition) const {
  absl::MutexLock lock(&mu_);
  // The seek for this cluster, or one for every cluster (an older node's),
  // whichever was issued last.
  const SeekProgress* found = nullptr;
  for (const std::string& key : {cluster, std::string()}) {
    auto it = latest_seeks_.find({group, key});
    if (it != latest_seeks_.end() &&
        (found == nullptr ||
         it->second.command.valid_until_ms > found->command.valid_until_ms)) {
      found = &it->second;
    }
  }
  if (found == nullptr) return std::nullopt;
  const SeekProgress& progress = *found;
  auto offset = progress.command.offsets.find(partition);
  if (offset == progress.command.offsets.end() || progress.applied.contains(partition) ||
      progress.command.valid_until_ms < absl::ToUnixMillis(absl::Now())) {
    return std::nullopt;
  }
  return Unapplied{.seek_id = progress.command.id, .offset = offset->second};
}

void ControlPlane::ConfirmSeek(const std::string& group, const std::string& seek_id,
                               std::set<backend::TopicPartition> partitions) {
  // Answered without waiting: this may run on the reading thread, which must
  // go on reading (the issuer may be this very node).
  WriteAsync(
      SeekApplied{
          .group = group, .seek_id = seek_id, .partitions = std::move(partitions)},
      fmt::format("confirm seek of group {}", group));
}

void ControlPlane::MarkCaughtUp() {
  {
    absl::MutexLock lock(&mu_);
    if (caught_up_) return;
    caught_up_ = true;
    spdlog::info("control topic {}: caught up ({} paused groups)", options_.topic,
                 paused_.size());
  }
  // Outside mu_: the listener takes its groups' locks, which call in here.
  listener_->OnCaughtUp();
  SeedOrPublishRoutes();
  listener_->OnMirrors(Mirrors());
  listener_->OnAcls(RuntimeAcls().Rules());
}

void ControlPlane::OnError(const absl::Status& error) {
  spdlog::warn("control topic {}: {}", options_.topic, std::string(error.message()));
}

absl::StatusOr<int64_t> ControlPlane::Write(const ControlCommand& command) {
  return Write(command, options_.write_timeout);
}

absl::StatusOr<int64_t> ControlPlane::Write(const ControlCommand& command,
                                            absl::Duration timeout) {
  EncodedRecord encoded = Encode(command);
  auto done = std::make_shared<std::promise<backend::PublishOutcome>>();
  std::future<backend::PublishOutcome> result = done->get_future();
  cluster_->Publish(
      {.topic = options_.topic,
       .key = std::move(encoded.key),
       .value = std::move(encoded.value)},
      [done](backend::PublishOutcome outcome) { done->set_value(std::move(outcome)); });
  if (result.wait_for(absl::ToChronoMilliseconds(timeout)) != std::future_status::ready) {
    return absl::DeadlineExceededError(
        fmt::format("control topic {} did not acknowledge within {}", options_.topic,
                    absl::FormatDuration(timeout)));
  }
  backend::PublishOutcome outcome = result.get();
  if (!outcome.status.ok()) {
    return absl::Status(outcome.status.code(),
                        fmt::format("control topic {}: {}", options_.topic,
                                    std::string(outcome.status.message())));
  }
  return outcome.offset;
}

absl::Status ControlPlane::WriteAndApply(const ControlCommand& command) {
  absl::StatusOr<int64_t> offset = Write(command);
  if (!offset.ok()) return offset.status();
  absl::MutexLock lock(&mu_);
  auto read_past = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return read_next_ > *offset || stopping_;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&read_past), options_.write_timeout)) {
    return absl::DeadlineExceededError(fmt::format(
        "control topic {}: written at offset {}, but this node did not read it back "
        "within {}; nodes apply it when they read it",
        options_.topic, *offset, absl::FormatDuration(options_.write_timeout)));
  }
  return absl::OkStatus();
}

absl::Status ControlPlane::PutRoute(const config::RouteConfig& route) {
  return WriteAndApply(RouteChange{.topic = route.topic, .route = route});
}

absl::Status ControlPlane::DeleteRoute(const std::string& topic) {
  return WriteAndApply(RouteChange{.topic = topic});
}

absl::Status ControlPlane::SetDrained(const std::string& cluster, bool drained) {
  return WriteAndApply(DrainCommand{.cluster = cluster, .drained = drained});
}

absl::Status ControlPlane::StartMirror(const MirrorSpec& spec) {
  return WriteAndApply(MirrorChange{.name = spec.name, .spec = spec});
}

absl::Status ControlPlane::StopMirror(const std::string& name) {
  return WriteAndApply(MirrorChange{.name = name});
}

absl::Status ControlPlane::SetPaused(const std::string& group, bool paused) {
  return Write(PauseCommand{.group = group, .paused = paused}).status();
}

absl::StatusOr<std::set<backend::TopicPartition>> ControlPlane::Seek(
    const std::string& group, const std::string& cluster,
    const std::map<backend::TopicPartition, int64_t>& offsets, absl::Duration wait) {
  const std::string id = RandomHex();
  {
    absl::MutexLock lock(&mu_);
    awaited_seeks_[id];
  }
  absl::Status written = Write(SeekCommand{.group = group,
                                           .valid_until_ms = absl::ToUnixMillis(
                                               absl::Now() + options_.seek_validity),
                                           .id = id,
                                           .cluster = cluster,
                                           .offsets = offsets})
                             .status();
  absl::MutexLock lock(&mu_);
  auto all_applied = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return awaited_seeks_[id].size() >= offsets.size();
  };
  if (written.ok()) mu_.AwaitWithTimeout(absl::Condition(&all_applied), wait);
  std::set<backend::TopicPartition> applied = std::move(awaited_seeks_[id]);
  awaited_seeks_.erase(id);
  if (!written.ok()) return written;
  return applied;
}

absl::StatusOr<int64_t> ControlPlane::Issue(const ControlCommand& command) {
  return Write(command);
}

absl::Status ControlPlane::AwaitApplied(int64_t offset, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (true) {
    // This node's own heartbeat counts like any other: it says the effects
    // (held publishes drained) settled, which reading the record does not.
    std::vector<std::string> lagging = nodes_.Lagging(offset, absl::Now());
    if (lagging.empty() && read_next_ > offset) return absl::OkStatus();
    if (stopping_) return absl::UnavailableError("this node is stopping");
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(fmt::format(
          "control record {} not applied within {} by live node(s) {} (a node that "
          "stops heartbeating drops out after {})",
          offset, absl::FormatDuration(timeout), fmt::join(lagging, ", "),
          absl::FormatDuration(options_.node_timeout)));
    }
    mu_.AwaitWithDeadline(absl::Condition(&stopping_),
                          std::min(deadline, absl::Now() + kBarrierRecheck));
  }
}

absl::Status ControlPlane::PutMigration(MigrationState& state) {
  state.updated_ms = absl::ToUnixMillis(absl::Now());
  if (state.started_ms == 0) state.started_ms = state.updated_ms;
  return WriteAndApply(state);
}

std::optional<MigrationState> ControlPlane::Migration(const std::string& topic) const {
  absl::MutexLock lock(&mu_);
  auto it = migrations_.find(topic);
  if (it == migrations_.end()) return std::nullopt;
  return it->second;
}

std::vector<MigrationState> ControlPlane::Migrations() const {
  absl::MutexLock lock(&mu_);
  std::vector<MigrationState> all;
  for (const auto& [topic, state] : migrations_) all.push_back(state);
  return all;
}

std::vector<NodeRegistry::Node> ControlPlane::Nodes() const {
  absl::MutexLock lock(&mu_);
  return nodes_.List(absl::Now());
}

absl::Status ControlPlane::SetGroupFilter(const std::string& group,
                                          const std::string& filter) {
  return WriteAndApply(GroupFilterCommand{.group = group, .filter = filter});
}

std::string ControlPlane::GroupFilter(const std::string& group) const {
  absl::MutexLock lock(&mu_);
  auto it = group_filters_.find(group);
  return it == group_filters_.end() ? "" : it->second;
}

bool ControlPlane::IsPaused(const std::string& group) const {
  absl::MutexLock lock(&mu_);
  return paused_.contains(group);
}

bool ControlPlane::caught_up() const {
  absl::MutexLock lock(&mu_);
  return caught_up_;
}

std::optional<std::vector<config::RouteConfig>> ControlPlane::Routes() const {
  absl::MutexLock lock(&mu_);
  if (!caught_up_ || !routes_seeded_) return std::nullopt;
  return RouteList();
}

absl::Status ControlPlane::SetClientSettings(const config::ClientSettings& settings) {
  return WriteAndApply(ClientSettingsChange{.settings = settings});
}

std::optional<config::ClientSettings> ControlPlane::PushedClientSettings() const {
  absl::MutexLock lock(&mu_);
  return client_settings_;
}

std::set<std::string> ControlPlane::Drained() const {
  absl::MutexLock lock(&mu_);
  return drained_;
}

std::vector<MirrorSpec> ControlPlane::Mirrors() const {
  absl::MutexLock lock(&mu_);
  return MirrorList();
}

void ControlPlane::OnAclRecord(const AclGrant& grant) {
  std::optional<std::vector<security::AclRule>> changed;
  {
    absl::MutexLock lock(&mu_);
    if (acl_grants_.Apply(grant) && caught_up_) changed = acl_grants_.Rules();
  }
  if (!changed) return;
  spdlog::info("control topic {}: {} {} {} on {}; {} runtime ACL rules apply",
               options_.topic, grant.allowed ? "allowed" : "revoked", grant.principal,
               security::OperationName(grant.operation), grant.resource.ToString(),
               changed->size());
  listener_->OnAcls(*changed);
}

absl::Status ControlPlane::PutAclGrants(const std::vector<AclGrant>& grants) {
  for (const AclGrant& grant : grants) {
    if (absl::Status s = WriteAndApply(grant); !s.ok()) return s;
  }
  return absl::OkStatus();
}

AclGrants ControlPlane::RuntimeAcls() const {
  absl::MutexLock lock(&mu_);
  return acl_grants_;
}

}  // namespace ferry::control
