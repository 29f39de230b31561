#include "admin/route_operations.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "config/config.h"

namespace ferry::admin {
namespace {

constexpr size_t kTopicsNamed = 5;

v1::Route ToProto(const routing::Route& route) {
  v1::Route out;
  out.set_topic(route.pattern);
  for (const std::string& c : route.write) out.add_write(c);
  for (const std::string& c : route.read) out.add_read(c);
  out.set_auto_create_topics(route.auto_create_topics);
  out.set_fallback(route.fallback);
  return out;
}

config::RouteConfig FromProto(const v1::Route& route) {
  return {.topic = route.topic(),
          .write = {route.write().begin(), route.write().end()},
          .read = {route.read().begin(), route.read().end()},
          .auto_create_topics = route.auto_create_topics(),
          .fallback = route.fallback()};
}

config::RouteConfig ToConfig(const routing::Route& route) {
  return {.topic = route.pattern,
          .write = route.write,
          .read = route.read,
          .auto_create_topics = route.auto_create_topics,
          .fallback = route.fallback};
}

}  // namespace

RouteOperations::RouteOperations(std::vector<backend::Cluster*> clusters,
                                 const routing::RouteTable* routes,
                                 control::ControlPlane* control)
    : clusters_(std::move(clusters)), routes_(routes), control_(control) {
  for (backend::Cluster* cluster : clusters_) cluster_names_.insert(cluster->name());
}

v1::ListRoutesResponse RouteOperations::List() const {
  v1::ListRoutesResponse response;
  for (const routing::Route& route : routes_->Current()->routes()) {
    *response.add_routes() = ToProto(route);
  }
  return response;
}

absl::StatusOr<control::ControlPlane*> RouteOperations::Control() const {
  if (control_ == nullptr) {
    return absl::FailedPreconditionError(
        "no control plane: configure a cluster to hold the control topic");
  }
  return control_;
}

absl::StatusOr<v1::Route> RouteOperations::Put(const v1::Route& route) {
  config::RouteConfig config = FromProto(route);
  if (absl::Status s = config::ValidateRoute(config, cluster_names_, "route"); !s.ok()) {
    return s;
  }
  auto control = Control();
  if (!control.ok()) return control.status();
  if (absl::Status s = (*control)->PutRoute(config); !s.ok()) return s;
  v1::Route applied = route;
  if (applied.read().empty()) *applied.mutable_read() = applied.write();
  return applied;
}

absl::Status RouteOperations::Delete(const std::string& topic) {
  std::shared_ptr<const routing::Router> current = routes_->Current();
  std::vector<config::RouteConfig> remaining;
  bool found = false;
  for (const routing::Route& route : current->routes()) {
    if (route.pattern == topic) {
      found = true;
    } else {
      remaining.push_back(ToConfig(route));
    }
  }
  if (!found) {
    return absl::NotFoundError(fmt::format("no route for topic glob \"{}\"", topic));
  }
  const routing::Router without(std::move(remaining),
                                {cluster_names_.begin(), cluster_names_.end()});
  std::vector<std::string> unrouted = TopicsLeftUnrouted(*current, without);
  if (!unrouted.empty()) {
    const size_t count = unrouted.size();
    if (count > kTopicsNamed) unrouted.resize(kTopicsNamed);
    return absl::FailedPreconditionError(fmt::format(
        "deleting route \"{}\" would leave {} topic(s) without a route ({}{}): put a "
        "route that covers them first",
        topic, count, fmt::join(unrouted, ", "), count > kTopicsNamed ? ", ..." : ""));
  }
  auto control = Control();
  if (!control.ok()) return control.status();
  return (*control)->DeleteRoute(topic);
}

std::vector<std::string> RouteOperations::TopicsLeftUnrouted(
    const routing::Router& current, const routing::Router& without) const {
  std::set<std::string> unrouted;
  for (backend::Cluster* cluster : clusters_) {
    backend::ClusterStatus status = cluster->Describe(/*include_topics=*/true);
    for (const std::string& topic : status.topics) {
      if (topic.starts_with("__")) continue;  // Ferry's and the broker's own
      if (current.Resolve(topic).ok() && !without.Resolve(topic).ok()) {
        unrouted.insert(fmt::format("{} on {}", topic, cluster->name()));
      }
    }
  }
  return {unrouted.begin(), unrouted.end()};
}

absl::Status RouteOperations::SetDrained(const std::string& cluster, bool drained) {
  if (!cluster_names_.contains(cluster)) {
    return absl::NotFoundError(fmt::format("unknown cluster \"{}\" (configured: {})",
                                           cluster, fmt::join(cluster_names_, ", ")));
  }
  auto control = Control();
  if (!control.ok()) return control.status();
  return (*control)->SetDrained(cluster, drained);
}

std::set<std::string> RouteOperations::Drained() const {
  return control_ == nullptr ? std::set<std::string>{} : control_->Drained();
}

}  // namespace ferry::admin
