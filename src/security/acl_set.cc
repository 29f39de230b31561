#include "security/acl_set.h"

#include "routing/router.h"

namespace ferry::security {

bool AclSet::Allows(std::string_view principal, Operation operation,
                    const Resource& resource) const {
  for (const AclRule& rule : rules_) {
    if (!rule.Allows(operation) || rule.resource.kind != resource.kind) continue;
    if (rule.principal != "*" && rule.principal != principal) continue;
    const bool named =
        resource.kind == ResourceKind::kTopic || resource.kind == ResourceKind::kGroup;
    if (named && !routing::GlobMatch(rule.resource.name, resource.name)) continue;
    return true;
  }
  return false;
}

}  // namespace ferry::security
