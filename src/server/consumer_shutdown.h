#pragma once

// The end of Server::Shutdown, on its own so that tests run it on fake
// clusters: stops what reads from the clusters, then closes them.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "backend/cluster.h"
#include "control/control_plane.h"
#include "mirror/mirror_runner.h"
#include "routing/cluster_breakers.h"
#include "subscribe/group_registry.h"

namespace ferry::server {

struct Consumers {
  std::unique_ptr<control::ControlPlane> control;
  std::unique_ptr<mirror::MirrorRunner> mirrors;
  std::unique_ptr<subscribe::GroupRegistry> groups;
};

// Tells the starts in progress to stop (the control plane's, the mirror
// runner's: each ends after its cluster call in progress, and no new one
// begins); what already started runs on. Returns at once. Server::Shutdown
// calls it when draining begins, so that call runs during the grace instead
// of after it. Either may be null.
void CutStarts(control::ControlPlane* control, mirror::MirrorRunner* mirrors);

// Cuts the starts (CutStarts) and waits for them to end, then stops the
// control plane (its reader), the mirror jobs and the groups, in this order, then
// `breakers` (may be null) and closes `clusters` (backend::CloseClusters). Every leave
// waits until one deadline, `leave_timeout` from now (backend::SetLeaveDeadline), or its
// floor (backend::LeaveFloor) if an earlier step used it up, so all of them take one
// leave_timeout and two floors at most together. `stage` is told each step. Returns the
// names of the clusters kept for a member still leaving.
std::vector<std::string> StopConsumersAndCloseClusters(
    Consumers consumers, routing::ClusterBreakers* breakers,
    std::vector<std::unique_ptr<backend::Cluster>> clusters, absl::Duration leave_timeout,
    const std::function<void(std::string)>& stage);

}  // namespace ferry::server
