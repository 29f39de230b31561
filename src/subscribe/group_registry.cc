#include "subscribe/group_registry.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "absl/strings/ascii.h"
#include "api/convert.h"
#include "common/topic_name.h"

namespace ferry::subscribe {
namespace {

constexpr absl::Duration kTickInterval = absl::Milliseconds(20);
constexpr size_t kMaxGroupBytes = 255;
// The longest a group's start on a migration's target waits for the mirror
// to copy the group's position (the consumer stage waits up to 90 s).
constexpr absl::Duration kMigrationStartTimeout = absl::Seconds(60);

absl::StatusOr<OrderingMode> ToMode(v1::Ordering ordering) {
  switch (ordering) {
    case v1::ORDERING_UNSPECIFIED:
    case v1::ORDERING_NONE:
      return OrderingMode::kNone;
    case v1::ORDERING_KEY:
      return OrderingMode::kKey;
    case v1::ORDERING_PARTITION:
      return OrderingMode::kPartition;
    default:
      return absl::InvalidArgumentError(
          fmt::format("open.ordering: unknown value {}", static_cast<int>(ordering)));
  }
}

absl::StatusOr<backend::StartPosition> ToStart(const v1::SubscriptionOpen& open) {
  if (!open.has_start()) return backend::StartPosition{};
  const v1::Position& start = open.start();
  switch (start.at_case()) {
    case v1::Position::AT_NOT_SET:
    case v1::Position::kLatest:
      return backend::StartPosition{};
    case v1::Position::kEarliest:
      return backend::StartPosition{.kind = backend::StartPosition::Kind::kEarliest};
    case v1::Position::kTimestamp:
      return backend::StartPosition{.kind = backend::StartPosition::Kind::kTimestamp,
                                    .timestamp_ms = api::ToUnixMillis(start.timestamp())};
    case v1::Position::kOffsets:
      break;
  }
  return absl::InvalidArgumentError(
      "open.start: explicit offsets are not a start position; use Admin.Seek");
}

std::string ClusterNames(const std::vector<backend::Cluster*>& clusters) {
  std::string names;
  for (const backend::Cluster* cluster : clusters) {
    names += (names.empty() ? "" : ", ") + cluster->name();
  }
  return names;
}

// A cluster that does not answer (as opposed to one that answers "no").
bool IsUnreachable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

absl::StatusOr<absl::Duration> ToDuration(const google::protobuf::Duration& d,
                                          std::string_view field, absl::Duration fallback,
                                          absl::Duration min, absl::Duration max) {
  absl::Duration value = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
  if (value == absl::ZeroDuration()) return fallback;
  if (value < min || value > max) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {} is not in {}..{}", field, absl::FormatDuration(value),
                    absl::FormatDuration(min), absl::FormatDuration(max)));
  }
  return value;
}

}  // namespace

absl::StatusOr<filter::Filter> ParseFilter(std::string_view text,
                                           std::string_view field) {
  auto filter = filter::Filter::Parse(text);
  if (filter.ok()) return filter;
  // "filter: column N: ..." names the field it came from.
  std::string_view message(filter.status().message().data(),
                           filter.status().message().size());
  message.remove_prefix(message.starts_with("filter") ? 6 : 0);
  return absl::InvalidArgumentError(fmt::format("{}{}", field, message));
}

GroupRegistry::GroupRegistry(std::string node_id, const config::SubscribeConfig& config,
                             const routing::RouteTable* routes,
                             std::map<std::string, backend::Cluster*> clusters,
                             metrics::Registry* metrics)
    : node_id_(std::move(node_id)),
      config_(config),
      routes_(routes),
      clusters_(std::move(clusters)),
      metrics_(metrics),
      migration_targets_(clusters_, metrics, kMigrationStartTimeout) {
  ticker_ = std::thread([this] { TickLoop(); });
}

GroupRegistry::~GroupRegistry() {
  migration_targets_.Cancel();
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (ticker_.joinable()) ticker_.join();
  std::vector<std::shared_ptr<GroupDispatcher>> groups;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, dispatcher] : groups_) groups.push_back(dispatcher);
    groups_.clear();
    // Idle groups still queued on leaver_ (behind stuck leaves) or leaving
    // there: Stop() is idempotent, and waits for a leave under way.
    groups.insert(groups.end(), leaving_.begin(), leaving_.end());
  }
  // All at once: shutdown then takes one subscribe.leave_timeout at most.
  std::vector<std::thread> stopping;
  for (auto& dispatcher : groups) {
    stopping.emplace_back([dispatcher = dispatcher] { dispatcher->Stop(); });
  }
  for (std::thread& thread : stopping) thread.join();
}

absl::StatusOr<OpenRequest> GroupRegistry::Validate(const v1::SubscriptionOpen& open) {
  OpenRequest request;
  if (open.group().empty()) return absl::InvalidArgumentError("open.group: empty");
  if (open.group().size() > kMaxGroupBytes) {
    return absl::InvalidArgumentError(
        fmt::format("open.group: longer than {} bytes", kMaxGroupBytes));
  }
  if (open.topics().empty()) return absl::InvalidArgumentError("open.topics: empty");
  auto filter = ParseFilter(open.filter(), "open.filter");
  if (!filter.ok()) return filter.status();
  if (open.max_delivery_attempts() < 0) {
    return absl::InvalidArgumentError("open.max_delivery_attempts: negative");
  }
  if (!open.dead_letter_topic().empty()) {
    if (absl::Status s = ValidateTopicName(open.dead_letter_topic()); !s.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("open.dead_letter_topic: {}", std::string(s.message())));
    }
  }
  auto mode = ToMode(open.ordering());
  if (!mode.ok()) return mode.status();
  auto start = ToStart(open);
  if (!start.ok()) return start.status();
  auto deadline = ToDuration(open.ack_deadline(), "open.ack_deadline", absl::Seconds(30),
                             absl::Seconds(1), absl::Minutes(10));
  if (!deadline.ok()) return deadline.status();
  if (open.flow().max_outstanding_messages() < 0 ||
      open.flow().max_outstanding_bytes() < 0) {
    return absl::InvalidArgumentError("open.flow: negative limit");
  }
  request.group = {.group = open.group(),
                   .client_id = "ferryd/" + node_id_,
                   .ordering = *mode,
                   .start = *start,
                   .max_delivery_attempts = open.max_delivery_attempts(),
                   .dead_letter_topic = open.dead_letter_topic()};
  request.stream.ack_deadline = *deadline;
  request.stream.client_id = open.client_id();
  request.stream.filter = *std::move(filter);
  request.stream.filter_text = std::string(absl::StripAsciiWhitespace(open.filter()));
  if (open.flow().max_outstanding_messages() > 0) {
    request.stream.max_outstanding_messages = open.flow().max_outstanding_messages();
  }
  if (open.flow().max_outstanding_bytes() > 0) {
    request.stream.max_outstanding_bytes = open.flow().max_outstanding_bytes();
  }

  std::set<backend::Cluster*> unreachable;
  for (const std::string& topic : open.topics()) {
    if (absl::Status s = ValidateTopicName(topic); !s.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("open.topics: {}", std::string(s.message())));
    }
    auto clusters = ReadClusters(topic);
    if (!clusters.ok()) return clusters.status();
    if (!request.clusters.empty() && request.clusters != *clusters) {
      return absl::InvalidArgumentError(fmt::format(
          "open.topics: {} is read from clusters [{}] but {} from [{}]; the topics of "
          "one stream must be read from the same clusters",
          topic, ClusterNames(*clusters), request.stream.topics.front(),
          ClusterNames(request.clusters)));
    }
    request.clusters = *std::move(clusters);
    absl::Status last_unreachable;
    for (backend::Cluster* cluster : request.clusters) {
      if (unreachable.contains(cluster)) continue;
      // A cluster the probe found down is not asked: its metadata request
      // would only time out (the admin timeout, 30 s on Kafka).
      const backend::ClusterStatus known = cluster->Status();
      absl::Status status =
          known.state == backend::ClusterState::kDown
              ? absl::UnavailableError(fmt::format("cluster is down: {}", known.error))
              : cluster->DescribeTopic(topic).status();
      if (status.ok()) status = CheckDeadLetterTopic(request, *cluster, topic);
      if (IsUnreachable(status)) {
        spdlog::warn(
            "group={} open: cluster {} does not answer ({}); the group reads its other "
            "clusters and picks {} up when it answers",
            request.group.group, cluster->name(), std::string(status.message()),
            cluster->name());
        unreachable.insert(cluster);
        last_unreachable = status;
      } else if (status.code() == absl::StatusCode::kNotFound) {
        return absl::NotFoundError(fmt::format("cluster {}: {}", cluster->name(),
                                               std::string(status.message())));
      } else if (!status.ok()) {
        return status;
      }
    }
    const bool any_reachable =
        std::any_of(request.clusters.begin(), request.clusters.end(),
                    [&](backend::Cluster* c) { return !unreachable.contains(c); });
    if (!any_reachable) {
      return absl::UnavailableError(fmt::format(
          "no cluster topic {} is read from answers (last: {}); retry", topic,
          last_unreachable.ok() ? "none" : std::string(last_unreachable.message())));
    }
    request.stream.topics.push_back(topic);
  }
  return request;
}

absl::StatusOr<std::vector<backend::Cluster*>> GroupRegistry::ReadClusters(
    const std::string& topic) const {
  auto route = routes_->Current()->Resolve(topic);
  if (!route.ok()) return route.status();
  const std::vector<std::string>& read = route->read.empty() ? route->write : route->read;
  std::vector<backend::Cluster*> clusters;
  for (const std::string& name : read) {
    auto cluster = clusters_.find(name);
    if (cluster == clusters_.end()) {
      return absl::InternalError(
          fmt::format("route of {} names unknown cluster {}", topic, name));
    }
    clusters.push_back(cluster->second);
  }
  return clusters;
}

absl::Status GroupRegistry::CheckDeadLetterTopic(const OpenRequest& request,
                                                 backend::Cluster& cluster,
                                                 const std::string& topic) const {
  if (request.group.max_delivery_attempts == 0) return absl::OkStatus();
  const std::string dlq =
      DeadLetterer(request.group.group, request.group.dead_letter_topic).TopicFor(topic);
  absl::Status status = cluster.DescribeTopic(dlq).status();
  if (status.code() != absl::StatusCode::kNotFound) return status;
  // Dead letters go to the cluster the message was read from: every read
  // cluster needs the topic.
  return absl::NotFoundError(fmt::format(
      "open.dead_letter_topic: topic {} does not exist on cluster {}; messages of {} "
      "delivered more than max_delivery_attempts ({}) times are written there: create "
      "it first (ferry topics create {} --cluster {})",
      dlq, cluster.name(), topic, request.group.max_delivery_attempts, dlq,
      cluster.name()));
}

absl::StatusOr<std::shared_ptr<GroupDispatcher>> GroupRegistry::Attach(
    const OpenRequest& request, StreamId stream, std::shared_ptr<StreamSink> sink) {
  if (absl::Status s = StartOnMigrationTargets(request); !s.ok()) return s;
  // A dispatcher found here may be reaped as idle before the stream attaches;
  // then the next round creates a new one.
  while (true) {
    std::shared_ptr<GroupDispatcher> dispatcher;
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("node is shutting down");
    auto it = groups_.find(request.group.group);
    if (it != groups_.end()) {
      dispatcher = it->second;
      if (dispatcher->options().ordering != request.group.ordering) {
        return absl::FailedPreconditionError(fmt::format(
            "group {} is consumed with another ordering mode on this node; all streams "
            "of a group must use the same ordering",
            request.group.group));
      }
      if (dispatcher->clusters() != request.clusters) {
        // The route changed, and the group follows it (or a stale open was
        // validated before the change): check it soon.
        route_follower_.Post([this] { FollowRoutes(); });
      }
    } else {
      dispatcher = std::make_shared<GroupDispatcher>(request.group, request.clusters,
                                                     config_, metrics_, seeks_);
      dispatcher->SetTickRequest([this, group = request.group.group](absl::Time at) {
        tick_schedule_.Wake(group, at);
      });
      dispatcher->SetPaused(!control_caught_up_ || paused_.contains(request.group.group));
      if (auto it = group_filters_.find(request.group.group);
          it != group_filters_.end()) {
        dispatcher->SetGroupFilter(it->second.first, it->second.second);
      }
      if (absl::Status s = dispatcher->Start(request.stream.topics); !s.ok()) return s;
      groups_[request.group.group] = dispatcher;
      spdlog::info("group={} joined on clusters {}", request.group.group,
                   ClusterNames(request.clusters));
      // The read list was taken at validation: a route change since then
      // may have been followed before this group existed.
      if (CurrentReadClusters(*dispatcher) != request.clusters) {
        route_follower_.Post([this] { FollowRoutes(); });
      }
    }
    // Attaching under mu_ keeps the reaper (which takes mu_ first) from
    // stopping the dispatcher in between.
    if (dispatcher->Attach(stream, request.stream, sink)) return dispatcher;
    groups_.erase(request.group.group);
  }
}

absl::Status GroupRegistry::StartOnMigrationTargets(const OpenRequest& request) {
  // A group open here got its start when it came, or gets it when it
  // follows its route.
  if (Find(request.group.group) != nullptr) return absl::OkStatus();
  absl::Status s =
      migration_targets_.Prepare(request.group, request.stream.topics, request.clusters);
  if (s.ok()) return s;
  return absl::UnavailableError(fmt::format("{}; retry", std::string(s.message())));
}

void GroupRegistry::SetMigrationLookup(MigrationTargets::Lookup lookup) {
  migration_targets_.SetLookup(std::move(lookup));
}

void GroupRegistry::SetSeekLedger(control::SeekLedger* seeks) {
  absl::MutexLock lock(&mu_);
  seeks_ = seeks;
  for (auto& [name, dispatcher] : groups_) dispatcher->SetSeekLedger(seeks);
}

std::shared_ptr<GroupDispatcher> GroupRegistry::Find(const std::string& group) const {
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(group);
  return it == groups_.end() ? nullptr : it->second;
}

std::vector<std::string> GroupRegistry::Groups() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, unused] : groups_) names.push_back(name);
  return names;
}

void GroupRegistry::OnPaused(const std::string& group, bool paused) {
  std::shared_ptr<GroupDispatcher> dispatcher;
  {
    absl::MutexLock lock(&mu_);
    paused ? (void)paused_.insert(group) : (void)paused_.erase(group);
    auto it = groups_.find(group);
    if (it == groups_.end() || !control_caught_up_) return;
    dispatcher = it->second;
  }
  // A route change applied just before (the consumer stage of a migration)
  // is followed on route_follower_: resumed before it, the group would
  // deliver what it buffered from a cluster it no longer reads, after its
  // offsets there were translated. So the resume queues behind it.
  if (!paused && CurrentReadClusters(*dispatcher) != dispatcher->clusters()) {
    route_follower_.Post([this, group] { ResumeUnlessPaused(group); });
    return;
  }
  spdlog::info("group={} {}", group, paused ? "paused" : "resumed");
  dispatcher->SetPaused(paused);
}

void GroupRegistry::ResumeUnlessPaused(const std::string& group) {
  std::shared_ptr<GroupDispatcher> dispatcher;
  {
    absl::MutexLock lock(&mu_);
    auto it = groups_.find(group);
    if (paused_.contains(group) || it == groups_.end()) return;
    dispatcher = it->second;
  }
  spdlog::info("group={} resumed (after following its route)", group);
  dispatcher->SetPaused(false);
}

void GroupRegistry::OnGroupFilter(const std::string& group, const std::string& text) {
  // Checked when it was set; a record written by a node whose language knew
  // more is refused here, and the group keeps its previous filter.
  auto parsed = filter::Filter::Parse(text);
  if (!parsed.ok()) {
    spdlog::error("group={} group filter not applied: {}", group,
                  std::string(parsed.status().message()));
    return;
  }
  std::shared_ptr<GroupDispatcher> dispatcher;
  {
    absl::MutexLock lock(&mu_);
    if (text.empty()) {
      group_filters_.erase(group);
    } else {
      group_filters_[group] = {*parsed, text};
    }
    auto it = groups_.find(group);
    if (it == groups_.end()) return;
    dispatcher = it->second;
  }
  spdlog::info("group={} group filter {}", group,
               text.empty() ? "cleared" : fmt::format("set to {}", text));
  dispatcher->SetGroupFilter(*std::move(parsed), text);
}

std::set<backend::TopicPartition> GroupRegistry::OnSeek(
    const control::SeekCommand& seek) {
  auto dispatcher = Find(seek.group);
  if (!dispatcher) return {};
  std::set<backend::TopicPartition> moved = dispatcher->Seek(seek.cluster, seek.offsets);
  spdlog::info("group={} seek {} on {}: {} of {} partitions owned here", seek.group,
               seek.id, seek.cluster.empty() ? "every cluster" : seek.cluster,
               moved.size(), seek.offsets.size());
  return moved;
}

void GroupRegistry::OnCaughtUp() {
  std::vector<std::shared_ptr<GroupDispatcher>> running;
  {
    absl::MutexLock lock(&mu_);
    control_caught_up_ = true;
    for (const auto& [group, dispatcher] : groups_) {
      if (!paused_.contains(group)) running.push_back(dispatcher);
    }
  }
  for (auto& dispatcher : running) dispatcher->SetPaused(false);
}

void GroupRegistry::OnRoutes(const std::vector<config::RouteConfig>& /*routes*/) {
  route_follower_.Post([this] { FollowRoutes(); });
}

void GroupRegistry::FollowRoutes() {
  std::vector<std::shared_ptr<GroupDispatcher>> groups;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, dispatcher] : groups_) groups.push_back(dispatcher);
  }
  for (const auto& dispatcher : groups) {
    const std::optional<std::vector<backend::Cluster*>> wanted =
        CurrentReadClusters(*dispatcher);
    const std::vector<backend::Cluster*> current = dispatcher->clusters();
    if (!wanted.has_value() || *wanted == current) continue;
    spdlog::info("group={} follows its route: reads [{}] (was [{}])",
                 dispatcher->options().group, ClusterNames(*wanted),
                 ClusterNames(current));
    FollowRoute(*dispatcher, current, *wanted);
  }
}

void GroupRegistry::FollowRoute(GroupDispatcher& dispatcher,
                                const std::vector<backend::Cluster*>& current,
                                const std::vector<backend::Cluster*>& wanted) {
  std::vector<backend::Cluster*> kept, added;
  for (backend::Cluster* cluster : wanted) {
    const bool read = std::find(current.begin(), current.end(), cluster) != current.end();
    (read ? kept : added).push_back(cluster);
  }
  if (!migration_targets_.AnyTarget(dispatcher.topics(), added)) {
    dispatcher.SetClusters(wanted);
    return;
  }
  dispatcher.SetClusters(kept);
  absl::Status s =
      migration_targets_.Prepare(dispatcher.options(), dispatcher.topics(), added);
  if (s.ok()) {
    dispatcher.SetClusters(wanted);
    return;
  }
  spdlog::error("group={} reads [{}] again and follows its route later: {}",
                dispatcher.options().group, ClusterNames(current),
                std::string(s.message()));
  dispatcher.SetClusters(current);
  absl::MutexLock lock(&mu_);
  if (!stopping_) route_follower_.Post([this] { FollowRoutes(); });
}

std::optional<std::vector<backend::Cluster*>> GroupRegistry::CurrentReadClusters(
    const GroupDispatcher& dispatcher) const {
  std::optional<std::vector<backend::Cluster*>> wanted;
  for (const std::string& topic : dispatcher.topics()) {
    auto clusters = ReadClusters(topic);
    if (!clusters.ok()) {
      spdlog::warn("group={} keeps reading [{}]: {}", dispatcher.options().group,
                   ClusterNames(dispatcher.clusters()),
                   std::string(clusters.status().message()));
      return std::nullopt;
    }
    if (wanted.has_value() && *wanted != *clusters) {
      spdlog::warn(
          "group={} keeps reading [{}]: its topics are now read from different "
          "clusters ({} from [{}], others from [{}])",
          dispatcher.options().group, ClusterNames(dispatcher.clusters()), topic,
          ClusterNames(*clusters), ClusterNames(*wanted));
      return std::nullopt;
    }
    wanted = *std::move(clusters);
  }
  return wanted;
}

void GroupRegistry::TickLoop() {
  while (true) {
    std::vector<std::shared_ptr<GroupDispatcher>> active, idle;
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), kTickInterval)) return;
      // Only the groups that asked for a tick by now: each asks again for
      // what its Tick() leaves due, and for its idle timeout.
      const absl::Time now = absl::Now();
      for (const std::string& group : tick_schedule_.TakeDue(now)) {
        auto it = groups_.find(group);
        if (it == groups_.end()) continue;  // left since it asked
        if (now - it->second->idle_since() >= config_.group_idle_timeout) {
          idle.push_back(it->second);
          leaving_.insert(it->second);
          groups_.erase(it);
        } else {
          active.push_back(it->second);
        }
      }
    }
    const absl::Time now = absl::Now();
    for (auto& dispatcher : active) dispatcher->Tick(now);
    for (auto& dispatcher : idle) {
      leaver_.Post([this, dispatcher] {
        const std::string& group = dispatcher->options().group;
        spdlog::info("group={} idle, leaving", group);
        dispatcher->Tick(absl::Now());  // commit what was acked
        dispatcher->Stop();
        // A stopped dispatcher touches no series any more. Under mu_, so a
        // dispatcher of the same group created meanwhile (which shares the
        // series) is seen, and one created later gets fresh series.
        absl::MutexLock lock(&mu_);
        leaving_.erase(dispatcher);
        if (!groups_.contains(group)) metrics_->RemoveSeries({{"group", group}});
      });
    }
  }
}

}  // namespace ferry::subscribe
