#pragma once

// Which Admin method an HTTP verb and path call: the generic route
// `POST /api/v1/admin/<Method>` (any method of the service) and the
// resource-style routes a console uses (`GET /api/v1/topics/{name}`, ...).
// Pure string work, no protobuf: AdminHttpApi checks at start-up that every
// method and field named here exists.

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "admin_http/http_exchange.h"

namespace ferry::admin_http {

inline constexpr std::string_view kApiPrefix = "/api/v1";
// POST kGenericPrefix + "ListTopics" calls Admin.ListTopics.
inline constexpr std::string_view kGenericPrefix = "/api/v1/admin/";

struct ResourceRoute {
  std::string_view verb;
  // Segments in braces ("/api/v1/topics/{name}") set the request field of
  // that name from the path.
  std::string_view pattern;
  std::string_view method;
  // Empty: the body is the whole request message. Otherwise the body is this
  // message field of it (PUT /api/v1/routes takes the Route itself).
  std::string_view body_field = {};
};

std::span<const ResourceRoute> ResourceRoutes();

// The request fields a pattern sets from the path, in order
// ("/api/v1/groups/{group}/seek" -> {"group"}).
std::vector<std::string_view> PatternFields(std::string_view pattern);

struct PathMatch {
  std::string method = {};
  // (request field, value) taken from the path, in pattern order.
  QueryParams path_fields = {};
  std::string body_field = {};
};

struct PathLookup {
  std::optional<PathMatch> match = {};
  // Without a match: the verbs this path is served with (answer 405), or
  // none (404).
  std::vector<std::string> allowed_verbs = {};
};

// Looks `verb` and the decoded `path` up. Empty path segments never match a
// field, so "/api/v1/topics/" is not DescribeTopic of "".
PathLookup LookUpPath(std::string_view verb, std::string_view path);

}  // namespace ferry::admin_http
