#include "server/node_control.h"

#include <spdlog/spdlog.h>

#include "config/config.h"

namespace ferry::server {

NodeControl::NodeControl(control::ControlListener* groups, routing::RouteTable* routes,
                         routing::ClusterBreakers* breakers,
                         mirror::MirrorRunner* mirrors, publish::WriteHold* holds,
                         std::vector<std::string> clusters,
                         security::Authorizer* authorizer)
    : groups_(groups),
      routes_(routes),
      breakers_(breakers),
      mirrors_(mirrors),
      holds_(holds),
      clusters_(std::move(clusters)),
      authorizer_(authorizer) {}

void NodeControl::SetControlPlane(control::ControlPlane* control) {
  absl::MutexLock lock(&control_mu_);
  control_ = control;
}

void NodeControl::HoldSettled() {
  absl::MutexLock lock(&control_mu_);
  if (control_ != nullptr) control_->BeatSoon();
}

void NodeControl::OnRoutes(const std::vector<config::RouteConfig>& routes) {
  const std::set<std::string> known(clusters_.begin(), clusters_.end());
  std::vector<config::RouteConfig> usable;
  for (const config::RouteConfig& route : routes) {
    if (absl::Status s = config::ValidateRoute(route, known, "route"); !s.ok()) {
      spdlog::error("routes: ignoring the control topic's route for \"{}\": {}",
                    route.topic, std::string(s.message()));
      continue;
    }
    usable.push_back(route);
  }
  spdlog::info("routes: {} routes apply", usable.size());
  routes_->Swap(std::make_shared<const routing::Router>(usable, clusters_));
  // After the swap: the groups read their new read lists from the table.
  groups_->OnRoutes(usable);
}

void NodeControl::OnDrained(const std::string& cluster, bool drained) {
  // The breakers log the transition; a cluster this node lacks is named.
  if (absl::Status s = breakers_->SetDrained(cluster, drained); !s.ok()) {
    spdlog::warn("control topic: cannot {} cluster {}: {}", drained ? "drain" : "undrain",
                 cluster, std::string(s.message()));
  }
}

}  // namespace ferry::server
