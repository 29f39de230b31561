#include "security/acl_rule.h"

#include <fmt/format.h>

#include <array>

namespace ferry::security {
namespace {

constexpr std::array<std::string_view, kOperationCount> kOperationNames = {
    "publish", "subscribe", "describe", "seek", "pause", "admin"};

// Names, globs and principals share a character rule: printable ASCII without
// spaces, so a rule reads back unambiguously from `ferry acl list`.
bool Printable(std::string_view text) {
  for (char c : text) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

absl::Status Invalid(std::string_view part, std::string why) {
  return absl::InvalidArgumentError(fmt::format("{}: {}", part, why));
}

absl::StatusOr<Resource> ParseResource(std::string_view text) {
  if (text == "cluster") return Resource{.kind = ResourceKind::kCluster};
  if (text == "admin") return Resource{.kind = ResourceKind::kAdmin};
  Resource resource;
  std::string_view glob;
  if (text.starts_with("topic:")) {
    resource.kind = ResourceKind::kTopic;
    glob = text.substr(6);
  } else if (text.starts_with("group:")) {
    resource.kind = ResourceKind::kGroup;
    glob = text.substr(6);
  } else {
    return Invalid("resource",
                   fmt::format("\"{}\" is not topic:GLOB, group:GLOB, cluster or admin",
                               text.substr(0, 64)));
  }
  if (glob.empty() || glob.size() > 256 || !Printable(glob)) {
    return Invalid("resource", fmt::format("\"{}\" needs a glob of 1..256 printable "
                                           "characters without spaces after the colon",
                                           text.substr(0, 64)));
  }
  resource.name = std::string(glob);
  return resource;
}

}  // namespace

std::string_view OperationName(Operation operation) {
  return kOperationNames[static_cast<int>(operation)];
}

std::string Resource::ToString() const {
  switch (kind) {
    case ResourceKind::kTopic:
      return "topic:" + name;
    case ResourceKind::kGroup:
      return "group:" + name;
    case ResourceKind::kCluster:
      return "cluster";
    case ResourceKind::kAdmin:
      return "admin";
  }
  return "?";
}

std::string AclRule::ToString() const {
  std::string ops;
  for (int i = 0; i < kOperationCount; ++i) {
    if (!Allows(static_cast<Operation>(i))) continue;
    if (!ops.empty()) ops += ',';
    ops += kOperationNames[i];
  }
  return fmt::format("{} {} {}", principal, resource.ToString(), ops);
}

absl::Status ValidatePrincipal(std::string_view principal) {
  if (principal.empty() || principal.size() > 256 || !Printable(principal)) {
    return Invalid("principal",
                   fmt::format("\"{}\" is not 1..256 printable characters without spaces",
                               principal.substr(0, 64)));
  }
  return absl::OkStatus();
}

absl::StatusOr<AclRule> ParseAclRule(std::string_view principal,
                                     std::string_view resource,
                                     std::string_view operations) {
  AclRule rule;
  if (absl::Status s = ValidatePrincipal(principal); !s.ok()) return s;
  rule.principal = std::string(principal);
  auto parsed = ParseResource(resource);
  if (!parsed.ok()) return parsed.status();
  rule.resource = *std::move(parsed);
  std::string_view rest = operations;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view name = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
    while (name.starts_with(' ')) name.remove_prefix(1);
    while (name.ends_with(' ')) name.remove_suffix(1);
    if (name == "all") {
      rule.operations = (1u << kOperationCount) - 1;
      continue;
    }
    int found = -1;
    for (int i = 0; i < kOperationCount; ++i) {
      if (name == kOperationNames[i]) found = i;
    }
    if (found < 0) {
      return Invalid(
          "operations",
          fmt::format("\"{}\" is not one of publish, subscribe, describe, seek, "
                      "pause, admin, all",
                      name.substr(0, 64)));
    }
    rule.operations |= 1u << found;
  }
  if (rule.operations == 0) return Invalid("operations", "none given");
  return rule;
}

}  // namespace ferry::security
