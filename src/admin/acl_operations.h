#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "control/control_plane.h"
#include "ferry/v1/admin.pb.h"
#include "security/authorizer.h"

namespace ferry::admin {

// Admin operations on ACL rules (docs/security.md): runtime rules are
// written to the control topic as one grant per operation
// (control/acl_grants.h), so every node, this one before the call returns,
// hands them to its Authorizer; the configuration's rules are listed beside
// them but change only with the configuration. Thread-safe.
class AclOperations {
 public:
  // `authorizer` must outlive this. `control` may be null (no cluster
  // configured): changes then answer FAILED_PRECONDITION.
  AclOperations(control::ControlPlane* control, const security::Authorizer* authorizer);

  // The rules this node applies, with their source.
  v1::ListAclsResponse List() const;
  // `caller` (the principal asking; "" with auth off) is named in the audit
  // line each change writes.
  absl::StatusOr<v1::AclRule> Add(const v1::AddAclRequest& request,
                                  std::string_view caller);
  absl::StatusOr<v1::AclRule> Remove(const v1::RemoveAclRequest& request,
                                     std::string_view caller);

 private:
  absl::StatusOr<control::ControlPlane*> Control() const;
  // Writes a grant (or revocation) of each operation in `operations` and
  // answers the runtime rule of the principal and resource afterwards.
  absl::StatusOr<v1::AclRule> Change(const security::AclRule& rule, uint32_t operations,
                                     bool allowed, std::string_view caller);

  control::ControlPlane* const control_;
  const security::Authorizer* const authorizer_;
};

}  // namespace ferry::admin
