#include "admin/acl_operations.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

namespace ferry::admin {
namespace {

v1::AclRule ToProto(const security::AclRule& rule, std::string_view source) {
  v1::AclRule out;
  out.set_principal(rule.principal);
  out.set_resource(rule.resource.ToString());
  for (int i = 0; i < security::kOperationCount; ++i) {
    const auto operation = static_cast<security::Operation>(i);
    if (rule.Allows(operation)) {
      out.add_operations(std::string(security::OperationName(operation)));
    }
  }
  out.set_source(std::string(source));
  return out;
}

absl::StatusOr<security::AclRule> Parse(
    const std::string& principal, const std::string& resource,
    const google::protobuf::RepeatedPtrField<std::string>& operations) {
  return security::ParseAclRule(principal, resource,
                                fmt::format("{}", fmt::join(operations, ",")));
}

}  // namespace

AclOperations::AclOperations(control::ControlPlane* control,
                             const security::Authorizer* authorizer)
    : control_(control), authorizer_(authorizer) {}

v1::ListAclsResponse AclOperations::List() const {
  v1::ListAclsResponse response;
  for (const security::AclRule& rule : authorizer_->config_rules()) {
    *response.add_rules() = ToProto(rule, "config");
  }
  for (const security::AclRule& rule : authorizer_->RuntimeRules()) {
    *response.add_rules() = ToProto(rule, "runtime");
  }
  response.set_enforced(authorizer_->enabled());
  return response;
}

absl::StatusOr<control::ControlPlane*> AclOperations::Control() const {
  if (control_ == nullptr) {
    return absl::FailedPreconditionError(
        "no control plane: configure a cluster to hold the control topic (until "
        "then only auth.acl rules apply)");
  }
  return control_;
}

absl::StatusOr<v1::AclRule> AclOperations::Add(const v1::AddAclRequest& request,
                                               std::string_view caller) {
  auto rule = Parse(request.principal(), request.resource(), request.operations());
  if (!rule.ok()) return rule.status();
  return Change(*rule, rule->operations, /*allowed=*/true, caller);
}

absl::StatusOr<v1::AclRule> AclOperations::Remove(const v1::RemoveAclRequest& request,
                                                  std::string_view caller) {
  auto rule = Parse(request.principal(), request.resource(), request.operations());
  if (!rule.ok()) return rule.status();
  auto control = Control();
  if (!control.ok()) return control.status();
  const uint32_t granted =
      (*control)->RuntimeAcls().Operations(rule->principal, rule->resource);
  if ((granted & rule->operations) == 0) {
    std::string configured;
    for (const security::AclRule& config : authorizer_->config_rules()) {
      if (config.principal == rule->principal && config.resource == rule->resource &&
          (config.operations & rule->operations) != 0) {
        configured =
            " (auth.acl in the configuration does: change it there and restart the "
            "nodes)";
      }
    }
    return absl::NotFoundError(
        fmt::format("no runtime rule allows {}{}", rule->ToString(), configured));
  }
  return Change(*rule, granted & rule->operations, /*allowed=*/false, caller);
}

absl::StatusOr<v1::AclRule> AclOperations::Change(const security::AclRule& rule,
                                                  uint32_t operations, bool allowed,
                                                  std::string_view caller) {
  auto control = Control();
  if (!control.ok()) return control.status();
  const uint32_t granted =
      (*control)->RuntimeAcls().Operations(rule.principal, rule.resource);
  // Only what changes is written: repeating a call writes nothing.
  const uint32_t changing = allowed ? operations & ~granted : operations & granted;
  std::vector<control::AclGrant> grants;
  for (int i = 0; i < security::kOperationCount; ++i) {
    if ((changing >> i) & 1) {
      grants.push_back({.principal = rule.principal,
                        .resource = rule.resource,
                        .operation = static_cast<security::Operation>(i),
                        .allowed = allowed});
    }
  }
  if (!grants.empty()) {
    if (absl::Status s = (*control)->PutAclGrants(grants); !s.ok()) return s;
    security::AclRule changed = rule;
    changed.operations = changing;
    spdlog::info("audit: {} {} runtime ACL rule {}", caller.empty() ? "-" : caller,
                 allowed ? "added" : "removed", changed.ToString());
  }
  security::AclRule after = rule;
  after.operations = (*control)->RuntimeAcls().Operations(rule.principal, rule.resource);
  return ToProto(after, "runtime");
}

}  // namespace ferry::admin
