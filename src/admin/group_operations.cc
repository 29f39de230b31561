#include "admin/group_operations.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "api/convert.h"

namespace ferry::admin {
namespace {

constexpr std::string_view kNodeClientPrefix = "ferryd/";
constexpr std::string_view kControlGroupPrefix = "__ferry_control.";

std::string NodeOf(const std::string& client_id) {
  return client_id.starts_with(kNodeClientPrefix)
             ? client_id.substr(kNodeClientPrefix.size())
             : client_id;
}

}  // namespace

absl::StatusOr<std::vector<backend::Cluster*>> GroupOperations::GroupClusters(
    const std::string& requested, const std::string& group,
    const std::string& topic) const {
  auto named = [&](const std::string& name) -> absl::StatusOr<backend::Cluster*> {
    for (backend::Cluster* cluster : clusters_) {
      if (cluster->name() == name) return cluster;
    }
    return absl::NotFoundError(fmt::format("unknown cluster \"{}\"", name));
  };
  if (!requested.empty()) {
    auto cluster = named(requested);
    if (!cluster.ok()) return cluster.status();
    return std::vector<backend::Cluster*>{*cluster};
  }
  if (auto dispatcher = registry_->Find(group)) return dispatcher->clusters();
  if (!topic.empty()) {
    auto route = routes_->Current()->Resolve(topic);
    if (!route.ok()) return route.status();
    std::vector<backend::Cluster*> read;
    for (const std::string& name : route->read.empty() ? route->write : route->read) {
      auto cluster = named(name);
      if (!cluster.ok()) return cluster.status();
      read.push_back(*cluster);
    }
    if (!read.empty()) return read;
  }
  if (clusters_.size() == 1) return clusters_;
  return absl::InvalidArgumentError(
      "cluster: required (several clusters are configured and the group is not "
      "consumed on this node)");
}

std::vector<std::string> GroupOperations::GroupTopics(
    const std::string& group, const backend::GroupDescription* description) const {
  std::set<std::string> topics;
  if (auto dispatcher = registry_->Find(group)) {
    for (const auto& topic : dispatcher->Snapshot().topics) topics.insert(topic);
  }
  if (description != nullptr) {
    for (const auto& member : description->members) {
      for (const auto& tp : member.assignment) topics.insert(tp.topic);
    }
  }
  return {topics.begin(), topics.end()};
}

absl::StatusOr<v1::ListGroupsResponse> GroupOperations::List(
    const v1::ListGroupsRequest& request) {
  v1::ListGroupsResponse response;
  std::vector<backend::Cluster*> chosen = clusters_;
  if (!request.cluster().empty()) {
    auto named = GroupClusters(request.cluster(), "", "");
    if (!named.ok()) return named.status();  // an unknown cluster: NOT_FOUND
    chosen = *std::move(named);
  }
  for (backend::Cluster* cluster : chosen) {
    auto names = cluster->ListGroups();
    if (!names.ok()) return names.status();
    for (const std::string& name : *names) {
      if (name.starts_with(kControlGroupPrefix)) continue;
      v1::GroupSummary& summary = *response.add_groups();
      summary.set_name(name);
      summary.set_cluster(cluster->name());
      summary.set_paused(control_->IsPaused(name));
      if (auto description = cluster->DescribeGroup(name); description.ok()) {
        summary.set_state(description->state);
      }
    }
  }
  std::sort(response.mutable_groups()->begin(), response.mutable_groups()->end(),
            [](const auto& a, const auto& b) { return a.name() < b.name(); });
  return response;
}

absl::StatusOr<v1::Group> GroupOperations::Describe(
    const v1::DescribeGroupRequest& request) {
  if (request.group().empty()) return absl::InvalidArgumentError("group: empty");
  auto clusters = GroupClusters(request.cluster(), request.group(), "");
  if (!clusters.ok()) return clusters.status();
  v1::Group group;
  group.set_name(request.group());
  group.set_cluster(clusters->front()->name());
  group.set_paused(control_->IsPaused(request.group()));
  group.set_filter(control_->GroupFilter(request.group()));
  auto local = registry_->Find(request.group());
  std::optional<subscribe::GroupSnapshot> snapshot;
  if (local) snapshot = local->Snapshot();
  // This node's streams are listed once, under its first member.
  bool streams_listed = false;
  auto add_streams = [&](v1::GroupMember& member) {
    if (!snapshot || streams_listed) return;
    streams_listed = true;
    for (const auto& s : snapshot->streams) {
      v1::GroupStream& stream = *member.add_streams();
      stream.set_stream_id(fmt::format("{}/{}", node_id_, s.id));
      stream.set_client_id(s.client_id);
      stream.set_peer(s.peer);
      stream.set_outstanding_messages(s.outstanding_messages);
      stream.set_filter(s.filter);
    }
  };
  std::vector<std::pair<std::string, std::string>> states;  // cluster, state
  for (backend::Cluster* cluster : *clusters) {
    // During a failover the group is still described by its other clusters;
    // one the probe found down is not asked (that would wait for a timeout).
    const backend::ClusterStatus known = cluster->Status();
    absl::StatusOr<std::string> state =
        clusters->size() > 1 && known.state == backend::ClusterState::kDown
            ? absl::UnavailableError(known.error)
            : DescribeOn(*cluster, request.group(), snapshot, add_streams, group);
    const bool unreachable = state.status().code() == absl::StatusCode::kUnavailable ||
                             state.status().code() == absl::StatusCode::kDeadlineExceeded;
    if (unreachable && clusters->size() > 1) {
      state = fmt::format("unreachable ({})", std::string(state.status().message()));
    }
    if (!state.ok()) return state.status();
    states.emplace_back(cluster->name(), *state);
  }
  const bool same = std::all_of(states.begin(), states.end(), [&](const auto& s) {
    return s.second == states.front().second;
  });
  // Brokers describe a group they never heard of as "Dead" with no error;
  // one without members, commits or Ferry state does not exist.
  const bool unknown = same && states.front().second == "Dead" && !snapshot &&
                       group.partitions().empty() && !group.paused() &&
                       group.filter().empty();
  if (unknown) {
    return absl::NotFoundError(fmt::format(
        "unknown group \"{}\": no member and no committed offsets", request.group()));
  }
  std::string state = same ? states.front().second : "";
  for (size_t i = 0; !same && i < states.size(); ++i) {
    state +=
        fmt::format("{}{}: {}", i == 0 ? "" : ", ", states[i].first, states[i].second);
  }
  group.set_state(state);
  return group;
}

absl::StatusOr<std::string> GroupOperations::DescribeOn(
    backend::Cluster& cluster, const std::string& group_name,
    const std::optional<subscribe::GroupSnapshot>& snapshot,
    const std::function<void(v1::GroupMember&)>& add_streams, v1::Group& group) {
  std::string state;
  // Who owns what: the coordinator's view (every node); the embedded store
  // has no coordinator and this node is the only member.
  std::map<backend::TopicPartition, std::string> owner;
  auto description = cluster.DescribeGroup(group_name);
  if (!description.ok() &&
      description.status().code() != absl::StatusCode::kUnimplemented) {
    return description.status();
  }
  if (description.ok()) {
    state = description->state;
    for (const auto& m : description->members) {
      v1::GroupMember& member = *group.add_members();
      member.set_member_id(m.member_id);
      member.set_node_id(NodeOf(m.client_id));
      if (member.node_id() == node_id_) add_streams(member);
      for (const auto& tp : m.assignment) owner[tp] = member.node_id();
    }
  } else if (snapshot) {
    state = "Stable";
    v1::GroupMember& member = *group.add_members();
    member.set_node_id(node_id_);
    add_streams(member);
    for (const auto& p : snapshot->partitions) {
      if (p.cluster == cluster.name()) owner[p.partition] = node_id_;
    }
  } else {
    state = "Empty";
  }

  // Topics: of the members' assignments, else wherever the group committed.
  std::vector<std::string> topics =
      GroupTopics(group_name, description.ok() ? &*description : nullptr);
  auto committed = cluster.CommittedOffsets(group_name, topics);
  if (!committed.ok()) return committed.status();
  if (topics.empty()) {
    std::set<std::string> committed_topics;
    for (const auto& [tp, offset] : *committed) committed_topics.insert(tp.topic);
    topics.assign(committed_topics.begin(), committed_topics.end());
  }
  std::map<backend::TopicPartition, int64_t> in_flight;
  if (snapshot) {
    for (const auto& p : snapshot->partitions) {
      if (p.cluster == cluster.name()) in_flight[p.partition] = p.in_flight;
    }
  }
  for (const std::string& topic : topics) {
    auto info = cluster.DescribeTopic(topic);
    if (!info.ok()) return info.status();
    for (const auto& p : info->partitions) {
      const backend::TopicPartition tp{topic, p.id};
      v1::GroupPartition& out = *group.add_partitions();
      out.set_cluster(cluster.name());
      out.set_topic(topic);
      out.set_partition(p.id);
      if (auto it = owner.find(tp); it != owner.end()) out.set_node_id(it->second);
      const int64_t offset = committed->contains(tp) ? committed->at(tp) : -1;
      out.set_committed_offset(offset);
      out.set_high_watermark(p.high_watermark);
      out.set_lag(
          std::max<int64_t>(0, p.high_watermark - std::max(offset, p.low_watermark)));
      if (auto it = in_flight.find(tp); it != in_flight.end())
        out.set_in_flight(it->second);
    }
  }
  return state;
}

absl::StatusOr<std::map<backend::TopicPartition, int64_t>> GroupOperations::ResolveSeek(
    backend::Cluster* cluster, const std::vector<std::string>& topics,
    const v1::Position& to) const {
  std::map<backend::TopicPartition, int64_t> offsets;
  std::map<backend::TopicPartition, std::pair<int64_t, int64_t>> bounds;
  for (const std::string& topic : topics) {
    auto info = cluster->DescribeTopic(topic);
    if (!info.ok()) return info.status();
    for (const auto& p : info->partitions) {
      bounds[{topic, p.id}] = {p.low_watermark, p.high_watermark};
    }
    if (to.at_case() == v1::Position::kTimestamp) {
      auto found = cluster->OffsetsForTime(topic, api::ToUnixMillis(to.timestamp()));
      if (!found.ok()) return found.status();
      offsets.insert(found->begin(), found->end());
    }
  }
  switch (to.at_case()) {
    case v1::Position::kEarliest:
    case v1::Position::kLatest:
      for (const auto& [tp, b] : bounds) {
        offsets[tp] = to.at_case() == v1::Position::kEarliest ? b.first : b.second;
      }
      break;
    case v1::Position::kTimestamp:
      break;
    case v1::Position::kOffsets:
      for (const auto& o : to.offsets().offsets()) {
        const backend::TopicPartition tp{o.topic(), o.partition()};
        auto b = bounds.find(tp);
        if (b == bounds.end()) {
          return absl::InvalidArgumentError(
              fmt::format("to.offsets: {}/{} is not a partition of the group's topics",
                          o.topic(), o.partition()));
        }
        if (o.offset() < b->second.first || o.offset() > b->second.second) {
          return absl::InvalidArgumentError(
              fmt::format("to.offsets: offset {} of {}/{} is outside {}..{}", o.offset(),
                          o.topic(), o.partition(), b->second.first, b->second.second));
        }
        offsets[tp] = o.offset();
      }
      break;
    case v1::Position::AT_NOT_SET:
      return absl::InvalidArgumentError(
          "to: required (earliest, latest, timestamp or offsets)");
  }
  return offsets;
}

absl::StatusOr<v1::SeekResponse> GroupOperations::Seek(const v1::SeekRequest& request) {
  if (request.group().empty()) return absl::InvalidArgumentError("group: empty");
  const std::vector<std::string> requested_topics(request.topics().begin(),
                                                  request.topics().end());
  auto clusters = GroupClusters(request.cluster(), request.group(),
                                requested_topics.empty() ? "" : requested_topics[0]);
  if (!clusters.ok()) return clusters.status();
  if (clusters->size() > 1 && request.to().at_case() == v1::Position::kOffsets) {
    return absl::InvalidArgumentError(
        "cluster: required with explicit offsets, since the group reads several "
        "clusters and offsets differ between them (a time, earliest or latest moves "
        "every cluster)");
  }
  // Every cluster's target first, so a bad request moves nothing.
  std::vector<std::pair<backend::Cluster*, std::map<backend::TopicPartition, int64_t>>>
      targets;
  for (backend::Cluster* cluster : *clusters) {
    std::vector<std::string> topics = requested_topics;
    if (topics.empty()) {
      auto description = cluster->DescribeGroup(request.group());
      topics = GroupTopics(request.group(), description.ok() ? &*description : nullptr);
    }
    if (topics.empty()) {
      auto committed = cluster->CommittedOffsets(request.group(), {});
      if (!committed.ok()) return committed.status();
      std::set<std::string> committed_topics;
      for (const auto& [tp, offset] : *committed) committed_topics.insert(tp.topic);
      topics.assign(committed_topics.begin(), committed_topics.end());
    }
    if (topics.empty()) {
      return absl::InvalidArgumentError(fmt::format(
          "topics: the group has no members and no committed offsets on cluster {}; "
          "name the topics",
          cluster->name()));
    }
    auto offsets = ResolveSeek(cluster, topics, request.to());
    if (!offsets.ok()) return offsets.status();
    targets.emplace_back(cluster, *std::move(offsets));
  }
  v1::SeekResponse response;
  for (auto& [cluster, offsets] : targets) {
    if (absl::Status moved = MoveGroup(*cluster, request.group(), offsets); !moved.ok()) {
      return moved;
    }
    for (const auto& [tp, offset] : offsets) {
      v1::PartitionOffset& out = *response.add_offsets();
      out.set_cluster(cluster->name());
      out.set_topic(tp.topic);
      out.set_partition(tp.partition);
      out.set_offset(offset);
    }
  }
  return response;
}

absl::Status GroupOperations::MoveGroup(
    backend::Cluster& cluster, const std::string& group,
    std::map<backend::TopicPartition, int64_t> offsets) {
  const size_t total = offsets.size();
  const absl::Time deadline = absl::Now() + kSeekConfirmTimeout;
  while (true) {
    // A group without members takes the offsets directly; a live group's
    // members move themselves (pause, seek, expire receipts, commit) when
    // the command reaches them through the control topic, and say which
    // partitions they moved. A partition changing owners meanwhile (a
    // rebalance, a member leaving) is missed: the next round issues the
    // command again for those, to the new owners or directly.
    absl::Status status = cluster.AlterCommittedOffsets(group, offsets);
    if (status.code() != absl::StatusCode::kFailedPrecondition) return status;
    auto moved = control_->Seek(group, cluster.name(), offsets, kSeekRound);
    if (!moved.ok()) return moved.status();
    for (const auto& tp : *moved) offsets.erase(tp);
    if (offsets.empty()) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      std::string missing;
      for (const auto& [tp, offset] : offsets) {
        missing +=
            fmt::format("{}{}/{}", missing.empty() ? "" : ", ", tp.topic, tp.partition);
      }
      return absl::DeadlineExceededError(fmt::format(
          "group {} on cluster {}: {} of {} partitions moved; no member applied the "
          "seek to {} within {} (is the group consuming these topics? check `ferry "
          "groups describe`)",
          group, cluster.name(), total - offsets.size(), total, missing,
          absl::FormatDuration(kSeekConfirmTimeout)));
    }
    spdlog::info("group={} seek: {} partitions not applied yet, issuing again", group,
                 offsets.size());
  }
}

absl::Status GroupOperations::SetPaused(const std::string& group, bool paused) {
  if (group.empty()) return absl::InvalidArgumentError("group: empty");
  absl::Status status = control_->SetPaused(group, paused);
  if (status.ok()) registry_->OnPaused(group, paused);  // at once on this node
  return status;
}

absl::Status GroupOperations::SetFilter(const std::string& group,
                                        const std::string& filter) {
  if (group.empty()) return absl::InvalidArgumentError("group: empty");
  if (auto parsed = subscribe::ParseFilter(filter, "filter"); !parsed.ok()) {
    return parsed.status();
  }
  return control_->SetGroupFilter(group, std::string(absl::StripAsciiWhitespace(filter)));
}

}  // namespace ferry::admin
