#pragma once

// The Admin API's consumer-group calls: list, describe, seek, pause, resume,
// group filters. Seeks, pauses and filters go through the control plane so
// every node consuming the group applies them; a seek of a group with no active member
// is written to the broker directly.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backend/cluster.h"
#include "control/control_plane.h"
#include "ferry/v1/admin.pb.h"
#include "routing/route_table.h"
#include "subscribe/group_registry.h"

namespace ferry::admin {

class GroupOperations {
 public:
  // Everything must outlive this object.
  GroupOperations(std::string node_id, std::vector<backend::Cluster*> clusters,
                  const routing::RouteTable* routes, subscribe::GroupRegistry* registry,
                  control::ControlPlane* control)
      : node_id_(std::move(node_id)),
        clusters_(std::move(clusters)),
        routes_(routes),
        registry_(registry),
        control_(control) {}

  // Blocking (broker requests); for the Admin service's sync threads.
  absl::StatusOr<v1::ListGroupsResponse> List(const v1::ListGroupsRequest& request);
  absl::StatusOr<v1::Group> Describe(const v1::DescribeGroupRequest& request);
  absl::StatusOr<v1::SeekResponse> Seek(const v1::SeekRequest& request);
  absl::Status SetPaused(const std::string& group, bool paused);
  // Writes the group filter to the control topic; returns once this node
  // applies it.
  absl::Status SetFilter(const std::string& group, const std::string& filter);

 private:
  // The clusters holding the group: `requested`, else the ones this node
  // consumes it from, else the read clusters of `topic`, else the only one.
  absl::StatusOr<std::vector<backend::Cluster*>> GroupClusters(
      const std::string& requested, const std::string& group,
      const std::string& topic) const;
  // Adds the group's members and partitions on `cluster` to `group`; returns
  // the coordinator's state there. `add_streams` lists this node's streams
  // under its member.
  absl::StatusOr<std::string> DescribeOn(
      backend::Cluster& cluster, const std::string& group_name,
      const std::optional<subscribe::GroupSnapshot>& snapshot,
      const std::function<void(v1::GroupMember&)>& add_streams, v1::Group& group);
  // The group's topics: this node's view, else the broker's assignments.
  std::vector<std::string> GroupTopics(
      const std::string& group, const backend::GroupDescription* description) const;
  absl::StatusOr<std::map<backend::TopicPartition, int64_t>> ResolveSeek(
      backend::Cluster* cluster, const std::vector<std::string>& topics,
      const v1::Position& to) const;
  // Moves the group's committed positions, live or idle; returns once every
  // partition moved, DEADLINE_EXCEEDED naming the ones that did not.
  absl::Status MoveGroup(backend::Cluster& cluster, const std::string& group,
                         std::map<backend::TopicPartition, int64_t> offsets);

  // How long one round waits for the owners' answers, and all rounds together
  // (under the CLI's 40 s admin deadline and the commands' 30 s validity).
  static constexpr absl::Duration kSeekRound = absl::Seconds(3);
  static constexpr absl::Duration kSeekConfirmTimeout = absl::Seconds(20);

  const std::string node_id_;
  const std::vector<backend::Cluster*> clusters_;
  const routing::RouteTable* const routes_;
  subscribe::GroupRegistry* const registry_;
  control::ControlPlane* const control_;
};

}  // namespace ferry::admin
