#include "server/consumer_shutdown.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backend/member_leave.h"

namespace ferry::server {

void CutStarts(control::ControlPlane* control, mirror::MirrorRunner* mirrors) {
  if (control != nullptr) control->CutStart();
  if (mirrors != nullptr) mirrors->CutStarts();
}

std::vector<std::string> StopConsumersAndCloseClusters(
    Consumers consumers, routing::ClusterBreakers* breakers,
    std::vector<std::unique_ptr<backend::Cluster>> clusters, absl::Duration leave_timeout,
    const std::function<void(std::string)>& stage) {
  // A job's start in progress ends with its cluster call while the control
  // plane's start ends with its own: one admin call's time for both (from
  // when they were cut: the grace's start in ferryd), before the leaves'
  // window opens.
  CutStarts(consumers.control.get(), consumers.mirrors.get());
  stage("ending starts in progress");
  if (consumers.control) consumers.control->EndStart();
  if (consumers.mirrors) consumers.mirrors->EndStarts();
  backend::SetLeaveDeadline(absl::Now() + leave_timeout);
  stage("stopping the control plane");
  consumers.control.reset();
  stage("stopping mirror jobs");
  consumers.mirrors.reset();  // each commits what its target acknowledged
  if (consumers.groups) {
    std::vector<std::string> groups = consumers.groups->Groups();
    stage(fmt::format("leaving consumer groups ({}: {})", groups.size(),
                      fmt::join(groups, ", ")));
  }
  consumers.groups.reset();  // leaves the groups, committing acked prefixes
  backend::SetLeaveDeadline(absl::InfiniteFuture());
  stage("closing clusters");
  if (breakers != nullptr) breakers->Stop();  // its watchers use the clusters
  // A member abandoned while leaving may still use its cluster (the
  // embedded store): that one is kept, and main() exits without destroying
  // it.
  return backend::CloseClusters(std::move(clusters));
}

}  // namespace ferry::server
