#pragma once

// Runtime ACL grants (`ferry acl add|remove`, docs/security.md) as control
// records: one record per principal, resource and operation,
//
//   key "acl/<principal> <resource> <operation>"  value "1" (allowed) or
//                                                 "0" (revoked)
//
// so grants made on two nodes at once never overwrite each other (the
// latest record per key wins, and each key holds one operation only).

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "security/acl_rule.h"

namespace ferry::control {

inline constexpr std::string_view kAclPrefix = "acl/";

struct AclGrant {
  std::string principal = {};  // or "*"
  security::Resource resource = {};
  security::Operation operation = security::Operation::kDescribe;
  bool allowed = false;
  bool operator==(const AclGrant&) const = default;
};

// The record's key after kAclPrefix, and its value.
std::string AclGrantKey(const AclGrant& grant);
std::string_view AclGrantValue(const AclGrant& grant);
// nullopt unless `key` (after kAclPrefix) is "<principal> <resource>
// <operation>" that security::ParseAclRule accepts with one operation, and
// `value` is "0" or "1".
std::optional<AclGrant> DecodeAclGrant(std::string_view key, std::string_view value);

// The grants in force, folded into one rule per principal and resource.
// Not thread-safe (the control plane holds it under its lock).
class AclGrants {
 public:
  // Returns whether the grant changed anything.
  bool Apply(const AclGrant& grant);
  // Ordered by principal, then resource.
  std::vector<security::AclRule> Rules() const;
  // The operations (bits, as AclRule::operations) granted to `principal` on
  // exactly `resource`; 0 when none.
  uint32_t Operations(const std::string& principal,
                      const security::Resource& resource) const;

 private:
  // (principal, resource text) -> operation bits.
  std::map<std::pair<std::string, std::string>, std::pair<security::Resource, uint32_t>>
      rules_;
};

}  // namespace ferry::control
