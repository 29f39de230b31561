#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "admin/acl_operations.h"
#include "admin/client_config_operations.h"
#include "admin/group_operations.h"
#include "admin/migration_operations.h"
#include "admin/mirror_operations.h"
#include "admin/route_operations.h"
#include "backend/cluster.h"
#include "config/config.h"
#include "control/control_plane.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "routing/cluster_breakers.h"
#include "routing/route_table.h"
#include "security/authorizer.h"

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
class AdminService final : public v1::Admin::Service {
 public:
  // `clusters`, `breakers` (theirs), `routes`, `route_operations`, `mirrors`,
  // `migrations`, `groups`, `client_config`, `control` (null without
  // clusters), `draining`, `authorizer` (null: no checks) and `acls` (null:
  // the ACL calls answer UNIMPLEMENTED) must outlive the service. Every method first
  // passes the authorizer (security/access_map.h says which operation on which resource
  // each needs).
  AdminService(NodeIdentity identity, std::vector<backend::Cluster*> clusters,
               const routing::ClusterBreakers* breakers,
               const routing::RouteTable* routes, RouteOperations* route_operations,
               MirrorOperations* mirrors, MigrationOperations* migrations,
               GroupOperations* groups, ClientConfigOperations* client_config,
               const control::ControlPlane* control, const std::atomic<bool>* draining,
               security::Authorizer* authorizer = nullptr, AclOperations* acls = nullptr);

  grpc::Status GetNode(grpc::ServerContext* context, const v1::GetNodeRequest* request,
                       v1::Node* response) override;
  grpc::Status ListNodes(grpc::ServerContext* context,
                         const v1::ListNodesRequest* request,
                         v1::ListNodesResponse* response) override;
  grpc::Status ListClusters(grpc::ServerContext* context,
                            const v1::ListClustersRequest* request,
                            v1::ListClustersResponse* response) override;
  grpc::Status DrainCluster(grpc::ServerContext* context,
                            const v1::DrainClusterRequest* request,
                            v1::DrainClusterResponse* response) override;
  grpc::Status UndrainCluster(grpc::ServerContext* context,
                              const v1::UndrainClusterRequest* request,
                              v1::UndrainClusterResponse* response) override;

  // Routes (see RouteOperations).
  grpc::Status ListRoutes(grpc::ServerContext* context,
                          const v1::ListRoutesRequest* request,
                          v1::ListRoutesResponse* response) override;
  grpc::Status PutRoute(grpc::ServerContext* context, const v1::PutRouteRequest* request,
                        v1::Route* response) override;
  grpc::Status DeleteRoute(grpc::ServerContext* context,
                           const v1::DeleteRouteRequest* request,
                           v1::DeleteRouteResponse* response) override;

  // ACL rules (see AclOperations; defined in admin_service_acl.cc).
  grpc::Status ListAcls(grpc::ServerContext* context, const v1::ListAclsRequest* request,
                        v1::ListAclsResponse* response) override;
  grpc::Status AddAcl(grpc::ServerContext* context, const v1::AddAclRequest* request,
                      v1::AclRule* response) override;
  grpc::Status RemoveAcl(grpc::ServerContext* context,
                         const v1::RemoveAclRequest* request,
                         v1::AclRule* response) override;

  // SDK configuration (see ClientConfigOperations).
  grpc::Status GetClientConfig(grpc::ServerContext* context,
                               const v1::GetClientConfigRequest* request,
                               v1::GetClientConfigResponse* response) override;
  grpc::Status SetClientSettings(grpc::ServerContext* context,
                                 const v1::SetClientSettingsRequest* request,
                                 v1::ClientSettings* response) override;
  // Mirror jobs (see MirrorOperations).
  grpc::Status StartMirror(grpc::ServerContext* context,
                           const v1::StartMirrorRequest* request,
                           v1::MirrorJob* response) override;
  grpc::Status StopMirror(grpc::ServerContext* context,
                          const v1::StopMirrorRequest* request,
                          v1::StopMirrorResponse* response) override;
  grpc::Status ListMirrors(grpc::ServerContext* context,
                           const v1::ListMirrorsRequest* request,
                           v1::ListMirrorsResponse* response) override;
  grpc::Status GetMirrorStatus(grpc::ServerContext* context,
                               const v1::GetMirrorStatusRequest* request,
                               v1::MirrorStatus* response) override;
  grpc::Status TranslateOffsets(grpc::ServerContext* context,
                                const v1::TranslateOffsetsRequest* request,
                                v1::TranslateOffsetsResponse* response) override;

  // The migration playbook (see MigrationOperations).
  grpc::Status StartMigration(grpc::ServerContext* context,
                              const v1::StartMigrationRequest* request,
                              v1::Migration* response) override;
  grpc::Status AdvanceMigration(grpc::ServerContext* context,
                                const v1::AdvanceMigrationRequest* request,
                                v1::Migration* response) override;
  grpc::Status RollbackMigration(grpc::ServerContext* context,
                                 const v1::RollbackMigrationRequest* request,
                                 v1::Migration* response) override;
  grpc::Status GetMigration(grpc::ServerContext* context,
                            const v1::GetMigrationRequest* request,
                            v1::Migration* response) override;
  grpc::Status ListMigrations(grpc::ServerContext* context,
                              const v1::ListMigrationsRequest* request,
                              v1::ListMigrationsResponse* response) override;

  // Topic administration. Each call blocks on the chosen cluster (bounded by
  // its admin timeout). The cluster is `request.cluster` when set, otherwise
  // the first write cluster of the topic's route; NOT_FOUND for an unknown
  // cluster or an unrouted topic, INVALID_ARGUMENT for a bad topic name or a
  // negative count, and the backend's status otherwise.
  grpc::Status ListTopics(grpc::ServerContext* context,
                          const v1::ListTopicsRequest* request,
                          v1::ListTopicsResponse* response) override;
  grpc::Status CreateTopic(grpc::ServerContext* context,
                           const v1::CreateTopicRequest* request,
                           v1::Topic* response) override;
  grpc::Status DescribeTopic(grpc::ServerContext* context,
                             const v1::DescribeTopicRequest* request,
                             v1::Topic* response) override;
  grpc::Status DeleteTopic(grpc::ServerContext* context,
                           const v1::DeleteTopicRequest* request,
                           v1::DeleteTopicResponse* response) override;
  grpc::Status ListLatestMessages(grpc::ServerContext* context,
                                  const v1::ListLatestMessagesRequest* request,
                                  v1::ListLatestMessagesResponse* response) override;

  // Consumer groups (see GroupOperations).
  grpc::Status ListGroups(grpc::ServerContext* context,
                          const v1::ListGroupsRequest* request,
                          v1::ListGroupsResponse* response) override;
  grpc::Status DescribeGroup(grpc::ServerContext* context,
                             const v1::DescribeGroupRequest* request,
                             v1::Group* response) override;
  grpc::Status Seek(grpc::ServerContext* context, const v1::SeekRequest* request,
                    v1::SeekResponse* response) override;
  grpc::Status PauseGroup(grpc::ServerContext* context,
                          const v1::PauseGroupRequest* request,
                          v1::PauseGroupResponse* response) override;
  grpc::Status ResumeGroup(grpc::ServerContext* context,
                           const v1::ResumeGroupRequest* request,
                           v1::ResumeGroupResponse* response) override;
  grpc::Status SetGroupFilter(grpc::ServerContext* context,
                              const v1::SetGroupFilterRequest* request,
                              v1::SetGroupFilterResponse* response) override;

 private:
  // The entry check every method starts with (security/access_map.h says
  // what each request needs); admin_service_access_test.cc calls every
  // method of the service to prove none skips it. Admit also answers the
  // caller's principal ("" without checks), for methods that name it.
  grpc::Status Check(grpc::ServerContext* context,
                     const google::protobuf::Message& request) const;
  absl::StatusOr<std::string> Admit(grpc::ServerContext* context,
                                    const google::protobuf::Message& request) const;
  // AddAcl and RemoveAcl: `change` with the caller named.
  template <typename Request>
  grpc::Status ChangeAcl(grpc::ServerContext* context, const Request& request,
                         absl::StatusOr<v1::AclRule> (AclOperations::*change)(
                             const Request&, std::string_view),
                         v1::AclRule* response);
  // GetNode's answer, also ListNodes' without a control plane.
  void FillOwnNode(v1::Node* response) const;
  // The configured cluster named `name`; NOT_FOUND listing the configured
  // ones otherwise.
  absl::StatusOr<backend::Cluster*> ClusterNamed(const std::string& name) const;
  // The cluster a topic call goes to: `requested` when not empty, otherwise
  // the first write cluster of `topic`'s route. INVALID_ARGUMENT first when
  // `topic` is not a valid topic name.
  absl::StatusOr<backend::Cluster*> ClusterFor(const std::string& requested,
                                               const std::string& topic) const;

  const NodeIdentity identity_;
  const std::vector<backend::Cluster*> clusters_;
  const routing::ClusterBreakers* const breakers_;
  const routing::RouteTable* const routes_;
  RouteOperations* const route_operations_;
  MirrorOperations* const mirrors_;
  MigrationOperations* const migrations_;
  GroupOperations* const groups_;
  const control::ControlPlane* const control_;
  ClientConfigOperations* const client_config_;
  const std::atomic<bool>* draining_;
  security::Authorizer* const authorizer_;
  AclOperations* const acls_;
};

}  // namespace ferry::admin
