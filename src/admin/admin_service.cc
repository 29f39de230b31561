#include "admin/admin_service.h"

#include "common/version.h"

namespace ferry::admin {
namespace {

void SetTimestamp(absl::Time time, google::protobuf::Timestamp* out) {
  const int64_t nanos = absl::ToUnixNanos(time);
  out->set_seconds(nanos / 1'000'000'000);
  out->set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
}

v1::Cluster::State ToProto(backend::ClusterState state) {
  switch (state) {
    case backend::ClusterState::kConnecting:
      return v1::Cluster::STATE_CONNECTING;
    case backend::ClusterState::kUp:
      return v1::Cluster::STATE_UP;
    case backend::ClusterState::kDown:
      return v1::Cluster::STATE_DOWN;
  }
  return v1::Cluster::STATE_UNSPECIFIED;
}

}  // namespace

AdminService::AdminService(NodeIdentity identity, std::vector<backend::Cluster*> clusters,
                           std::vector<config::RouteConfig> routes,
                           const std::atomic<bool>* draining)
    : identity_(std::move(identity)),
      clusters_(std::move(clusters)),
      routes_(std::move(routes)),
      draining_(draining) {}

grpc::Status AdminService::GetNode(grpc::ServerContext*, const v1::GetNodeRequest*,
                                   v1::Node* response) {
  const absl::Time now = absl::Now();
  response->set_id(identity_.id);
  response->set_version(kVersion);
  response->set_grpc_address(identity_.grpc_address);
  response->set_http_address(identity_.http_address);
  SetTimestamp(identity_.started, response->mutable_started());
  const int64_t uptime_ms = absl::ToInt64Milliseconds(now - identity_.started);
  response->mutable_uptime()->set_seconds(uptime_ms / 1000);
  response->mutable_uptime()->set_nanos(static_cast<int32_t>(uptime_ms % 1000) *
                                        1'000'000);
  response->set_health(draining_->load() ? "NOT_SERVING" : "SERVING");
  SetTimestamp(now, response->mutable_last_seen());
  return grpc::Status::OK;
}

grpc::Status AdminService::ListClusters(grpc::ServerContext*,
                                        const v1::ListClustersRequest* request,
                                        v1::ListClustersResponse* response) {
  for (backend::Cluster* cluster : clusters_) {
    // A fresh look when topics are asked for, so a topic created a moment
    // ago shows up; otherwise the probe's last status is enough.
    backend::ClusterStatus status = request->include_topics()
                                        ? cluster->Describe(/*include_topics=*/true)
                                        : cluster->Status();
    v1::Cluster* out = response->add_clusters();
    out->set_name(cluster->name());
    out->set_type(std::string(cluster->type()));
    out->set_bootstrap(cluster->bootstrap());
    out->set_state(ToProto(status.state));
    out->set_error(status.error);
    for (const backend::BrokerInfo& broker : status.brokers) {
      v1::Broker* b = out->add_brokers();
      b->set_id(broker.id);
      b->set_host(broker.host);
      b->set_port(broker.port);
    }
    for (const std::string& topic : status.topics) out->add_topics(topic);
    if (status.last_contact != absl::InfinitePast()) {
      SetTimestamp(status.last_contact, out->mutable_last_contact());
    }
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::ListRoutes(grpc::ServerContext*, const v1::ListRoutesRequest*,
                                      v1::ListRoutesResponse* response) {
  for (const config::RouteConfig& route : routes_) {
    v1::Route* out = response->add_routes();
    out->set_topic(route.topic);
    for (const std::string& c : route.write) out->add_write(c);
    for (const std::string& c : route.read.empty() ? route.write : route.read) {
      out->add_read(c);
    }
    out->set_auto_create_topics(route.auto_create_topics);
  }
  return grpc::Status::OK;
}

}  // namespace ferry::admin
