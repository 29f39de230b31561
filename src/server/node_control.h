#pragma once

#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "control/control_plane.h"
#include "mirror/mirror_runner.h"
#include "publish/write_hold.h"
#include "routing/cluster_breakers.h"
#include "routing/route_table.h"
#include "security/authorizer.h"

namespace ferry::server {

// The node's listener of the control topic: group commands go to the group
// registry, route sets replace the node's Router (then the registry hears of
// them, so open groups follow read-list changes), drains hold the cluster's
// write breaker open, mirror jobs go to the runner, write holds to the
// publish path's hold, runtime ACL rules to the authorizer.
class NodeControl final : public control::ControlListener {
 public:
  // `groups`, `routes`, `breakers`, `mirrors`, `holds` and `authorizer`
  // (null: runtime ACLs are dropped) must outlive this; `clusters` are the
  // configured cluster names.
  NodeControl(control::ControlListener* groups, routing::RouteTable* routes,
              routing::ClusterBreakers* breakers, mirror::MirrorRunner* mirrors,
              publish::WriteHold* holds, std::vector<std::string> clusters,
              security::Authorizer* authorizer = nullptr);

  // The control plane that hears when a hold settled (null: none, e.g.
  // before it is built and once it is stopping).
  void SetControlPlane(control::ControlPlane* control);
  // A hold's in-flight publishes completed: heartbeat now, so a barrier
  // waiting for it passes without waiting for the next interval.
  void HoldSettled();

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
  void OnWriteHold(const std::string& topic, bool held, int64_t offset) override {
    holds_->Set(topic, held, offset);
  }
  std::optional<int64_t> OldestUnsettled() const override {
    return holds_->OldestUnsettled();
  }
  void OnAcls(const std::vector<security::AclRule>& rules) override {
    if (authorizer_ != nullptr) authorizer_->SetRuntimeRules(rules);
  }

 private:
  control::ControlListener* const groups_;
  routing::RouteTable* const routes_;
  routing::ClusterBreakers* const breakers_;
  mirror::MirrorRunner* const mirrors_;
  publish::WriteHold* const holds_;
  const std::vector<std::string> clusters_;
  security::Authorizer* const authorizer_;
  absl::Mutex control_mu_;
  control::ControlPlane* control_ ABSL_GUARDED_BY(control_mu_) = nullptr;
};

}  // namespace ferry::server
