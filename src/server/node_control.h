#pragma once

#include <set>
#include <string>
#include <vector>

#include "control/control_plane.h"
#include "mirror/mirror_runner.h"
#include "routing/cluster_breakers.h"
#include "routing/route_table.h"

namespace ferry::server {

// The node's listener of the control topic: group commands go to the group
// registry, route sets replace the node's Router (then the registry hears of
// them, so open groups follow read-list changes), drains hold the cluster's
// write breaker open, mirror jobs go to the runner.
class NodeControl final : public control::ControlListener {
 public:
  // `groups`, `routes`, `breakers` and `mirrors` must outlive this;
  // `clusters` are the configured cluster names.
  NodeControl(control::ControlListener* groups, routing::RouteTable* routes,
              routing::ClusterBreakers* breakers, mirror::MirrorRunner* mirrors,
              std::vector<std::string> clusters);

  void OnPaused(const std::string& group, bool paused) override {
    groups_->OnPaused(group, paused);
  }
  std::set<backend::TopicPartition> OnSeek(const control::SeekCommand& seek) override {
    return groups_->OnSeek(seek);
  }
  void OnCaughtUp() override { groups_->OnCaughtUp(); }
  void OnGroupFilter(const std::string& group, const std::string& filter) override {
    groups_->OnGroupFilter(group, filter);
  }
  // Routes naming a cluster this node does not have are left out (and
  // logged): another node's configuration may know more clusters.
  void OnRoutes(const std::vector<config::RouteConfig>& routes) override;
  void OnDrained(const std::string& cluster, bool drained) override;
  void OnMirrors(const std::vector<control::MirrorSpec>& jobs) override {
    mirrors_->SetJobs(jobs);
  }

 private:
  control::ControlListener* const groups_;
  routing::RouteTable* const routes_;
  routing::ClusterBreakers* const breakers_;
  mirror::MirrorRunner* const mirrors_;
  const std::vector<std::string> clusters_;
};

}  // namespace ferry::server
