#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "backend/cluster.h"
#include "control/control_plane.h"
#include "ferry/v1/admin.pb.h"
#include "mirror/mirror_runner.h"

namespace ferry::admin {

// Admin operations on mirror jobs: checked here, written to the control
// topic, run by every node's MirrorRunner.
class MirrorOperations {
 public:
  // Everything must outlive this object; `control` and `runner` may be null
  // (no cluster configured): changes then answer FAILED_PRECONDITION.
  MirrorOperations(std::map<std::string, backend::Cluster*> clusters,
                   control::ControlPlane* control, const mirror::MirrorRunner* runner);

  absl::StatusOr<v1::MirrorJob> Start(const v1::MirrorJob& job);
  absl::Status Stop(const std::string& name);
  v1::ListMirrorsResponse List() const;
  absl::StatusOr<v1::MirrorStatus> Status(const std::string& name) const;
  // See Admin.TranslateOffsets; blocking, bounded by `timeout`.
  absl::StatusOr<v1::TranslateOffsetsResponse> TranslateOffsets(
      const std::string& name, const std::string& group, absl::Duration timeout) const;

 private:
  absl::StatusOr<control::MirrorSpec> Check(const v1::MirrorJob& job) const;
  std::optional<control::MirrorSpec> Find(const std::string& name) const;

  const std::map<std::string, backend::Cluster*> clusters_;
  control::ControlPlane* const control_;
  const mirror::MirrorRunner* const runner_;
};

}  // namespace ferry::admin
