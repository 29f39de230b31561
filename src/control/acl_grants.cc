#include "control/acl_grants.h"

#include <fmt/format.h>

#include <bit>

namespace ferry::control {

std::string AclGrantKey(const AclGrant& grant) {
  return fmt::format("{} {} {}", grant.principal, grant.resource.ToString(),
                     security::OperationName(grant.operation));
}

std::string_view AclGrantValue(const AclGrant& grant) {
  return grant.allowed ? "1" : "0";
}

std::optional<AclGrant> DecodeAclGrant(std::string_view key, std::string_view value) {
  if (value != "0" && value != "1") return std::nullopt;
  const size_t first = key.find(' ');
  if (first == std::string_view::npos) return std::nullopt;
  const size_t second = key.find(' ', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  const std::string_view operation = key.substr(second + 1);
  auto rule = security::ParseAclRule(
      key.substr(0, first), key.substr(first + 1, second - first - 1), operation);
  if (!rule.ok() || !std::has_single_bit(rule->operations)) return std::nullopt;
  AclGrant grant{
      .principal = rule->principal,
      .resource = rule->resource,
      .operation = static_cast<security::Operation>(std::countr_zero(rule->operations)),
      .allowed = value == "1"};
  // One operation by its name: a list or "all" would not read back the same.
  if (security::OperationName(grant.operation) != operation) return std::nullopt;
  return grant;
}

bool AclGrants::Apply(const AclGrant& grant) {
  const uint32_t bit = 1u << static_cast<int>(grant.operation);
  auto key = std::make_pair(grant.principal, grant.resource.ToString());
  auto it = rules_.find(key);
  const uint32_t before = it == rules_.end() ? 0 : it->second.second;
  const uint32_t after = grant.allowed ? before | bit : before & ~bit;
  if (after == before) return false;
  if (after == 0) {
    rules_.erase(it);
  } else {
    rules_[key] = {grant.resource, after};
  }
  return true;
}

std::vector<security::AclRule> AclGrants::Rules() const {
  std::vector<security::AclRule> rules;
  rules.reserve(rules_.size());
  for (const auto& [key, entry] : rules_) {
    rules.push_back(
        {.principal = key.first, .resource = entry.first, .operations = entry.second});
  }
  return rules;
}

uint32_t AclGrants::Operations(const std::string& principal,
                               const security::Resource& resource) const {
  auto it = rules_.find({principal, resource.ToString()});
  return it == rules_.end() ? 0 : it->second.second;
}

}  // namespace ferry::control
