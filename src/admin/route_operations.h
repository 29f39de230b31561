#pragma once

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backend/cluster.h"
#include "control/control_plane.h"
#include "ferry/v1/admin.pb.h"
#include "routing/route_table.h"

namespace ferry::admin {

// Admin operations on routes and cluster drains: checked here, written to
// the control topic, applied by every node when it reads them (this one
// included, before the call returns).
class RouteOperations {
 public:
  // Everything must outlive this object. `control` may be null (no cluster
  // configured): changes then answer FAILED_PRECONDITION.
  RouteOperations(std::vector<backend::Cluster*> clusters,
                  const routing::RouteTable* routes, control::ControlPlane* control);

  v1::ListRoutesResponse List() const;
  absl::StatusOr<v1::Route> Put(const v1::Route& route);
  absl::Status Delete(const std::string& topic);
  absl::Status SetDrained(const std::string& cluster, bool drained);
  // Clusters an operator drained (empty before the control topic was read).
  std::set<std::string> Drained() const;

 private:
  absl::StatusOr<control::ControlPlane*> Control() const;
  // Topics on the clusters that `current` serves and `without` (the same
  // routes minus one) would not; clusters that do not answer are skipped
  // (their topics cannot be listed).
  std::vector<std::string> TopicsLeftUnrouted(const routing::Router& current,
                                              const routing::Router& without) const;

  const std::vector<backend::Cluster*> clusters_;
  std::set<std::string> cluster_names_;
  const routing::RouteTable* const routes_;
  control::ControlPlane* const control_;
};

}  // namespace ferry::admin
