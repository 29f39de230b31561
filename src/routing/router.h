#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "config/config.h"

namespace ferry::routing {

// Where a topic's messages are written and read from.
struct Route {
  std::string pattern;  // the route's topic glob ("" for the implicit route)
  std::vector<std::string> write;
  std::vector<std::string> read;
  bool auto_create_topics = false;
  bool fallback = false;
};

// True when `text` matches `pattern`, where '*' matches any run of characters
// (including none) and '?' exactly one.
bool GlobMatch(std::string_view pattern, std::string_view text);

// Resolves topics to routes. Immutable and thread-safe; RouteTable swaps
// whole Router instances when routes change.
class Router {
 public:
  // `routes` are validated configuration (clusters exist). `clusters` are the
  // configured cluster names; with exactly one, unrouted topics use it.
  Router(std::vector<config::RouteConfig> routes, std::vector<std::string> clusters);

  // The most specific matching route: an exact pattern first, then the one
  // with the most literal characters, then the earliest. Without a match,
  // the implicit route to the only cluster; otherwise NOT_FOUND naming the
  // topic. An empty read list means "read where written".
  absl::StatusOr<Route> Resolve(std::string_view topic) const;

  // The explicit routes, in the order given.
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
  std::vector<std::string> clusters_;
};

}  // namespace ferry::routing
