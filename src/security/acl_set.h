#pragma once

#include <string_view>
#include <vector>

#include "security/acl_rule.h"

namespace ferry::security {

// Allow rules; whatever no rule allows is denied. Immutable; swap whole sets.
// Allows() scans the rules: O(rules x glob length) per check, fine for the
// hundreds of rules a shared tier has.
class AclSet {
 public:
  AclSet() = default;
  explicit AclSet(std::vector<AclRule> rules) : rules_(std::move(rules)) {}

  bool Allows(std::string_view principal, Operation operation,
              const Resource& resource) const;
  const std::vector<AclRule>& rules() const { return rules_; }

 private:
  std::vector<AclRule> rules_;
};

}  // namespace ferry::security
