#include "routing/router.h"

#include <fmt/format.h>

#include <algorithm>

#include "absl/status/status.h"

namespace ferry::routing {
namespace {

size_t LiteralCharacters(std::string_view pattern) {
  return std::count_if(pattern.begin(), pattern.end(),
                       [](char c) { return c != '*' && c != '?'; });
}

bool IsExact(std::string_view pattern) {
  return pattern.find_first_of("*?") == std::string_view::npos;
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // Iterative matching with backtracking to the last '*': linear for the
  // short patterns routes use, no recursion.
  size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Router::Router(std::vector<config::RouteConfig> routes, std::vector<std::string> clusters)
    : clusters_(std::move(clusters)) {
  for (config::RouteConfig& r : routes) {
    std::vector<std::string> read = r.read.empty() ? r.write : r.read;
    routes_.push_back({std::move(r.topic), std::move(r.write), std::move(read),
                       r.auto_create_topics, r.fallback});
  }
}

absl::StatusOr<Route> Router::Resolve(std::string_view topic) const {
  const Route* best = nullptr;
  for (const Route& route : routes_) {
    if (!GlobMatch(route.pattern, topic)) continue;
    if (IsExact(route.pattern)) return route;
    if (best == nullptr ||
        LiteralCharacters(route.pattern) > LiteralCharacters(best->pattern)) {
      best = &route;
    }
  }
  if (best != nullptr) return *best;
  if (clusters_.size() == 1) {
    return Route{.pattern = "", .write = clusters_, .read = clusters_};
  }
  return absl::NotFoundError(fmt::format(
      "no route for topic \"{}\": {} clusters are configured, so routes must say "
      "which one serves it",
      topic, clusters_.size()));
}

}  // namespace ferry::routing
