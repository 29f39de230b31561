#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::security {

// What a request does (DESIGN.md §6; docs/security.md has the table of RPCs
// and HTTP routes per operation).
enum class Operation : uint8_t {
  kPublish,
  kSubscribe,
  kDescribe,
  kSeek,
  kPause,
  kAdmin,
};
inline constexpr int kOperationCount = 6;

std::string_view OperationName(Operation operation);

// What a request touches: a topic or group by name, the cluster as a whole
// (listing topics, groups, nodes) or the node's administration (routes,
// mirrors, migrations, client settings, ACLs).
enum class ResourceKind : uint8_t { kTopic, kGroup, kCluster, kAdmin };

struct Resource {
  ResourceKind kind = ResourceKind::kCluster;
  std::string name = {};  // topic or group name; empty for cluster and admin
  // "topic:orders", "group:billing", "cluster", "admin".
  std::string ToString() const;
  bool operator==(const Resource&) const = default;
};

// One allow rule: `principal` (or "*" for every authenticated principal) may
// do `operations` on resources matching `resource`, written as
// "topic:GLOB", "group:GLOB", "cluster" or "admin" ('*' and '?' wildcards).
struct AclRule {
  std::string principal = {};
  Resource resource = {};   // name holds the glob
  uint32_t operations = 0;  // bit (1 << Operation)
  bool operator==(const AclRule&) const = default;

  bool Allows(Operation operation) const {
    return (operations >> static_cast<int>(operation)) & 1;
  }
  // "tenant-a topic:orders.* publish,describe": the form `ferry acl list`
  // prints and the audit log writes.
  std::string ToString() const;
};

// Parses one rule from its three parts; `operations` is a comma-separated
// list of publish, subscribe, describe, seek, pause, admin (or "all").
// INVALID_ARGUMENT names the part ("principal", "resource" or "operations")
// and the offending text.
absl::StatusOr<AclRule> ParseAclRule(std::string_view principal,
                                     std::string_view resource,
                                     std::string_view operations);

// Principals: 1..256 printable ASCII characters without spaces, or "*".
absl::Status ValidatePrincipal(std::string_view principal);

}  // namespace ferry::security
