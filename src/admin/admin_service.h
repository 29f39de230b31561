#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "backend/cluster.h"
#include "config/config.h"
#include "routing/router.h"
#include "ferry/v1/admin.grpc.pb.h"

namespace ferry::admin {

// Facts about this node that the admin API reports.
struct NodeIdentity {
  std::string id;
  std::string grpc_address;
  std::string http_address;
  absl::Time started;
};

// The Admin gRPC service. It uses gRPC's synchronous API on purpose: admin
// calls may block on broker metadata requests (bounded by the probe
// timeout), which must not happen on a callback-API thread; admin traffic is
// small, so gRPC's sync thread pool is the right home for it.
//
// RPCs that later issues implement (topics CRUD, groups, seek, pause, route
// changes) answer UNIMPLEMENTED through the generated base class.
class AdminService final : public v1::Admin::Service {
 public:
  // `clusters`, `router` and `draining` must outlive the service.
  AdminService(NodeIdentity identity, std::vector<backend::Cluster*> clusters,
               const routing::Router* router, std::vector<config::RouteConfig> routes,
               const std::atomic<bool>* draining);

  grpc::Status GetNode(grpc::ServerContext* context, const v1::GetNodeRequest* request,
                       v1::Node* response) override;
  grpc::Status ListClusters(grpc::ServerContext* context,
                            const v1::ListClustersRequest* request,
                            v1::ListClustersResponse* response) override;
  grpc::Status ListRoutes(grpc::ServerContext* context,
                          const v1::ListRoutesRequest* request,
                          v1::ListRoutesResponse* response) override;

 private:
  const NodeIdentity identity_;
  const std::vector<backend::Cluster*> clusters_;
  const routing::Router* router_;
  const std::vector<config::RouteConfig> routes_;
  const std::atomic<bool>* draining_;
};

}  // namespace ferry::admin
