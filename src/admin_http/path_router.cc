#include "admin_http/path_router.h"

#include <algorithm>
#include <array>

#include "common/strings.h"

namespace ferry::admin_http {
namespace {

constexpr auto kRoutes = std::to_array<ResourceRoute>({
    {"GET", "/api/v1/node", "GetNode"},
    {"GET", "/api/v1/nodes", "ListNodes"},
    {"GET", "/api/v1/clusters", "ListClusters"},
    {"POST", "/api/v1/clusters/{cluster}/drain", "DrainCluster"},
    {"POST", "/api/v1/clusters/{cluster}/undrain", "UndrainCluster"},
    {"GET", "/api/v1/topics", "ListTopics"},
    {"POST", "/api/v1/topics", "CreateTopic"},
    {"GET", "/api/v1/topics/{name}", "DescribeTopic"},
    {"DELETE", "/api/v1/topics/{name}", "DeleteTopic"},
    {"GET", "/api/v1/topics/{name}/messages", "ListLatestMessages"},
    {"GET", "/api/v1/groups", "ListGroups"},
    {"GET", "/api/v1/groups/{group}", "DescribeGroup"},
    {"POST", "/api/v1/groups/{group}/seek", "Seek"},
    {"POST", "/api/v1/groups/{group}/pause", "PauseGroup"},
    {"POST", "/api/v1/groups/{group}/resume", "ResumeGroup"},
    {"PUT", "/api/v1/groups/{group}/filter", "SetGroupFilter"},
    {"GET", "/api/v1/routes", "ListRoutes"},
    {"PUT", "/api/v1/routes", "PutRoute", "route"},
    {"DELETE", "/api/v1/routes/{topic}", "DeleteRoute"},
    {"GET", "/api/v1/mirrors", "ListMirrors"},
    {"POST", "/api/v1/mirrors", "StartMirror", "job"},
    {"GET", "/api/v1/mirrors/{name}", "GetMirrorStatus"},
    {"DELETE", "/api/v1/mirrors/{name}", "StopMirror"},
    {"GET", "/api/v1/migrations", "ListMigrations"},
    {"POST", "/api/v1/migrations", "StartMigration"},
    {"GET", "/api/v1/migrations/{topic}", "GetMigration"},
    {"POST", "/api/v1/migrations/{topic}/advance", "AdvanceMigration"},
    {"POST", "/api/v1/migrations/{topic}/rollback", "RollbackMigration"},
    // DELETE takes the rule as query parameters, as OpenAPI describes it.
    {"GET", "/api/v1/acls", "ListAcls"},
    {"POST", "/api/v1/acls", "AddAcl"},
    {"DELETE", "/api/v1/acls", "RemoveAcl"},
});

bool IsField(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

// The path's values for the pattern's fields, or nullopt when it does not fit.
std::optional<QueryParams> Fit(std::string_view pattern,
                               const std::vector<std::string_view>& segments) {
  std::vector<std::string_view> want = Split(pattern, '/');
  if (want.size() != segments.size()) return std::nullopt;
  QueryParams fields;
  for (size_t i = 0; i < want.size(); ++i) {
    if (IsField(want[i])) {
      if (segments[i].empty()) return std::nullopt;
      fields.emplace_back(want[i].substr(1, want[i].size() - 2), segments[i]);
    } else if (want[i] != segments[i]) {
      return std::nullopt;
    }
  }
  return fields;
}

void AddVerb(std::vector<std::string>& verbs, std::string_view verb) {
  if (std::find(verbs.begin(), verbs.end(), verb) == verbs.end())
    verbs.emplace_back(verb);
}

}  // namespace

std::span<const ResourceRoute> ResourceRoutes() { return kRoutes; }

std::vector<std::string_view> PatternFields(std::string_view pattern) {
  std::vector<std::string_view> fields;
  for (std::string_view segment : Split(pattern, '/')) {
    if (IsField(segment)) fields.push_back(segment.substr(1, segment.size() - 2));
  }
  return fields;
}

PathLookup LookUpPath(std::string_view verb, std::string_view path) {
  PathLookup lookup;
  if (path.starts_with(kGenericPrefix)) {
    std::string_view method = path.substr(kGenericPrefix.size());
    if (method.empty() || method.find('/') != std::string_view::npos) return lookup;
    if (verb == "POST") {
      lookup.match = PathMatch{.method = std::string(method)};
    } else {
      lookup.allowed_verbs.emplace_back("POST");
    }
    return lookup;
  }
  const std::vector<std::string_view> segments = Split(path, '/');
  for (const ResourceRoute& route : kRoutes) {
    std::optional<QueryParams> fields = Fit(route.pattern, segments);
    if (!fields.has_value()) continue;
    if (route.verb != verb) {
      AddVerb(lookup.allowed_verbs, route.verb);
      continue;
    }
    lookup.match = PathMatch{.method = std::string(route.method),
                             .path_fields = *std::move(fields),
                             .body_field = std::string(route.body_field)};
    lookup.allowed_verbs.clear();
    return lookup;
  }
  return lookup;
}

}  // namespace ferry::admin_http
