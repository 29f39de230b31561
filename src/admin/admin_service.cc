#include "admin/admin_service.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <set>

#include "admin/latest_messages.h"
#include "api/convert.h"
#include "common/topic_name.h"
#include "common/version.h"

namespace ferry::admin {
namespace {

void SetTimestamp(absl::Time time, google::protobuf::Timestamp* out) {
  const int64_t nanos = absl::ToUnixNanos(time);
  out->set_seconds(nanos / 1'000'000'000);
  out->set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
}

void SetDuration(absl::Duration duration, google::protobuf::Duration* out) {
  const int64_t ms = absl::ToInt64Milliseconds(duration);
  out->set_seconds(ms / 1000);
  out->set_nanos(static_cast<int32_t>(ms % 1000) * 1'000'000);
}

void FillListedNode(const control::NodeRegistry::Node& node, v1::Node* out) {
  const control::NodeBeat& beat = node.beat;
  out->set_id(beat.node_id);
  out->set_version(beat.version);
  out->set_grpc_address(beat.grpc_address);
  out->set_http_address(beat.http_address);
  const absl::Time started = absl::FromUnixMillis(beat.started_ms);
  SetTimestamp(started, out->mutable_started());
  if (node.state == control::NodeRegistry::State::kLive) {
    SetDuration(absl::Now() - started, out->mutable_uptime());
  }
  SetTimestamp(node.heard, out->mutable_last_seen());
  out->set_state(std::string(control::StateName(node.state)));
  out->set_applied_control_offset(beat.applied_offset);
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

// absl::StatusCode and grpc::StatusCode share their numeric values.
// 0 asks for the broker's default. Negative counts are refused here: the
// backend would otherwise take them for "default" too.
absl::Status ValidateCounts(int32_t partitions, int32_t replication_factor) {
  if (partitions < 0) {
    return absl::InvalidArgumentError(fmt::format(
        "partitions must be >= 0 (0: the broker's default), got {}", partitions));
  }
  if (replication_factor < 0) {
    return absl::InvalidArgumentError(
        fmt::format("replication_factor must be >= 0 (0: the broker's default), got {}",
                    replication_factor));
  }
  return absl::OkStatus();
}

void FillTopic(const backend::TopicInfo& info, const std::string& cluster,
               v1::Topic* out) {
  out->set_name(info.name);
  out->set_cluster(cluster);
  for (const backend::PartitionInfo& p : info.partitions) {
    v1::TopicPartition* partition = out->add_partitions();
    partition->set_partition(p.id);
    partition->set_leader(p.leader);
    for (int32_t replica : p.replicas) partition->add_replicas(replica);
    for (int32_t replica : p.in_sync_replicas) partition->add_in_sync_replicas(replica);
    partition->set_low_watermark(p.low_watermark);
    partition->set_high_watermark(p.high_watermark);
  }
}

}  // namespace

AdminService::AdminService(NodeIdentity identity, std::vector<backend::Cluster*> clusters,
                           const routing::ClusterBreakers* breakers,
                           const routing::RouteTable* routes,
                           RouteOperations* route_operations, MirrorOperations* mirrors,
                           MigrationOperations* migrations, GroupOperations* groups,
                           ClientConfigOperations* client_config,
                           const control::ControlPlane* control,
                           const std::atomic<bool>* draining,
                           security::Authorizer* authorizer, AclOperations* acls)
    : identity_(std::move(identity)),
      clusters_(std::move(clusters)),
      breakers_(breakers),
      routes_(routes),
      route_operations_(route_operations),
      mirrors_(mirrors),
      migrations_(migrations),
      groups_(groups),
      control_(control),
      client_config_(client_config),
      draining_(draining),
      authorizer_(authorizer),
      acls_(acls) {}

grpc::Status AdminService::Check(grpc::ServerContext* context,
                                 const google::protobuf::Message& request) const {
  return api::ToGrpcStatus(Admit(context, request).status());
}

absl::StatusOr<std::string> AdminService::Admit(
    grpc::ServerContext* context, const google::protobuf::Message& request) const {
  if (authorizer_ == nullptr) return std::string();
  return authorizer_->Admit(*context, request);
}

grpc::Status AdminService::GetNode(grpc::ServerContext* context,
                                   const v1::GetNodeRequest* request,
                                   v1::Node* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  FillOwnNode(response);
  return grpc::Status::OK;
}

void AdminService::FillOwnNode(v1::Node* response) const {
  const absl::Time now = absl::Now();
  response->set_id(identity_.id);
  response->set_version(kVersion);
  response->set_grpc_address(identity_.grpc_address);
  response->set_http_address(identity_.http_address);
  SetTimestamp(identity_.started, response->mutable_started());
  SetDuration(now - identity_.started, response->mutable_uptime());
  response->set_health(draining_->load() ? "NOT_SERVING" : "SERVING");
  SetTimestamp(now, response->mutable_last_seen());
}

grpc::Status AdminService::ListNodes(grpc::ServerContext* context,
                                     const v1::ListNodesRequest* request,
                                     v1::ListNodesResponse* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  if (control_ == nullptr) {
    v1::Node* self = response->add_nodes();
    FillOwnNode(self);
    self->set_state("live");
    self->set_applied_control_offset(-1);
    return grpc::Status::OK;
  }
  for (const control::NodeRegistry::Node& node : control_->Nodes()) {
    FillListedNode(node, response->add_nodes());
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::ListClusters(grpc::ServerContext* context,
                                        const v1::ListClustersRequest* request,
                                        v1::ListClustersResponse* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  const std::set<std::string> drained = route_operations_->Drained();
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
    if (const routing::ClusterBreaker* breaker = breakers_->Find(cluster->name())) {
      out->set_breaker(std::string(routing::ToString(breaker->state())));
    }
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
    out->set_drained(drained.contains(cluster->name()));
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::DrainCluster(grpc::ServerContext* context,
                                        const v1::DrainClusterRequest* request,
                                        v1::DrainClusterResponse*) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  return api::ToGrpcStatus(route_operations_->SetDrained(request->cluster(), true));
}

grpc::Status AdminService::UndrainCluster(grpc::ServerContext* context,
                                          const v1::UndrainClusterRequest* request,
                                          v1::UndrainClusterResponse*) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  return api::ToGrpcStatus(route_operations_->SetDrained(request->cluster(), false));
}

grpc::Status AdminService::ListRoutes(grpc::ServerContext* context,
                                      const v1::ListRoutesRequest* request,
                                      v1::ListRoutesResponse* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  *response = route_operations_->List();
  return grpc::Status::OK;
}

grpc::Status AdminService::PutRoute(grpc::ServerContext* context,
                                    const v1::PutRouteRequest* request,
                                    v1::Route* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  auto route = route_operations_->Put(request->route());
  if (!route.ok()) return api::ToGrpcStatus(route.status());
  *response = *std::move(route);
  return grpc::Status::OK;
}

grpc::Status AdminService::DeleteRoute(grpc::ServerContext* context,
                                       const v1::DeleteRouteRequest* request,
                                       v1::DeleteRouteResponse*) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  return api::ToGrpcStatus(route_operations_->Delete(request->topic()));
}

grpc::Status AdminService::GetClientConfig(grpc::ServerContext* context,
                                           const v1::GetClientConfigRequest* request,
                                           v1::GetClientConfigResponse* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  auto config = client_config_->Get(*request);
  if (!config.ok()) return api::ToGrpcStatus(config.status());
  *response = *std::move(config);
  return grpc::Status::OK;
}

grpc::Status AdminService::SetClientSettings(grpc::ServerContext* context,
                                             const v1::SetClientSettingsRequest* request,
                                             v1::ClientSettings* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  auto settings = client_config_->SetSettings(request->settings());
  if (!settings.ok()) return api::ToGrpcStatus(settings.status());
  *response = *std::move(settings);
  return grpc::Status::OK;
}

grpc::Status AdminService::StartMirror(grpc::ServerContext* context,
                                       const v1::StartMirrorRequest* request,
                                       v1::MirrorJob* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  auto job = mirrors_->Start(request->job());
  if (!job.ok()) return api::ToGrpcStatus(job.status());
  *response = *std::move(job);
  return grpc::Status::OK;
}

grpc::Status AdminService::StopMirror(grpc::ServerContext* context,
                                      const v1::StopMirrorRequest* request,
                                      v1::StopMirrorResponse*) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  return api::ToGrpcStatus(mirrors_->Stop(request->name()));
}

grpc::Status AdminService::ListMirrors(grpc::ServerContext* context,
                                       const v1::ListMirrorsRequest* request,
                                       v1::ListMirrorsResponse* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  *response = mirrors_->List();
  return grpc::Status::OK;
}

grpc::Status AdminService::GetMirrorStatus(grpc::ServerContext* context,
                                           const v1::GetMirrorStatusRequest* request,
                                           v1::MirrorStatus* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  auto status = mirrors_->Status(request->name());
  if (!status.ok()) return api::ToGrpcStatus(status.status());
  *response = *std::move(status);
  return grpc::Status::OK;
}

namespace {

grpc::Status Answer(absl::StatusOr<v1::Migration> migration, v1::Migration* response) {
  if (!migration.ok()) return api::ToGrpcStatus(migration.status());
  *response = *std::move(migration);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status AdminService::StartMigration(grpc::ServerContext* context,
                                          const v1::StartMigrationRequest* request,
                                          v1::Migration* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  return Answer(migrations_->Start(request->topic(), request->from(), request->to()),
                response);
}

grpc::Status AdminService::AdvanceMigration(grpc::ServerContext* context,
                                            const v1::AdvanceMigrationRequest* request,
                                            v1::Migration* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  return Answer(migrations_->Advance(request->topic(), request->stage()), response);
}

grpc::Status AdminService::RollbackMigration(grpc::ServerContext* context,
                                             const v1::RollbackMigrationRequest* request,
                                             v1::Migration* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  return Answer(migrations_->Rollback(request->topic()), response);
}

grpc::Status AdminService::GetMigration(grpc::ServerContext* context,
                                        const v1::GetMigrationRequest* request,
                                        v1::Migration* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  return Answer(migrations_->Get(request->topic()), response);
}

grpc::Status AdminService::ListMigrations(grpc::ServerContext* context,
                                          const v1::ListMigrationsRequest* request,
                                          v1::ListMigrationsResponse* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  auto migrations = migrations_->List(request->stage());
  if (!migrations.ok()) return api::ToGrpcStatus(migrations.status());
  for (v1::Migration& migration : *migrations) {
    *response->add_migrations() = std::move(migration);
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::TranslateOffsets(grpc::ServerContext* context,
                                            const v1::TranslateOffsetsRequest* request,
                                            v1::TranslateOffsetsResponse* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  // Ends a little before the caller's deadline, so the caller gets this
  // node's answer (what took too long) rather than its own timeout; never
  // longer than a scan may hold a gRPC thread.
  const absl::Duration timeout =
      std::min(absl::Seconds(30), absl::FromChrono(context->deadline()) - absl::Now() -
                                      absl::Milliseconds(500));
  auto translated =
      mirrors_->TranslateOffsets(request->name(), request->group(), timeout);
  if (!translated.ok()) return api::ToGrpcStatus(translated.status());
  *response = *std::move(translated);
  return grpc::Status::OK;
}

absl::StatusOr<backend::Cluster*> AdminService::ClusterNamed(
    const std::string& name) const {
  std::vector<std::string> names;
  for (backend::Cluster* cluster : clusters_) {
    if (cluster->name() == name) return cluster;
    names.push_back(cluster->name());
  }
  return absl::NotFoundError(
      fmt::format("unknown cluster \"{}\" (configured: {})", name,
                  names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
}

absl::StatusOr<backend::Cluster*> AdminService::ClusterFor(
    const std::string& requested, const std::string& topic) const {
  // Checked before a cluster is chosen, so a bad name is INVALID_ARGUMENT
  // rather than "no route".
  if (absl::Status valid = ValidateTopicName(topic); !valid.ok()) return valid;
  if (!requested.empty()) return ClusterNamed(requested);
  absl::StatusOr<routing::Route> route = routes_->Current()->Resolve(topic);
  if (!route.ok()) return route.status();
  if (route->write.empty()) {
    return absl::FailedPreconditionError(
        fmt::format("route \"{}\" for topic \"{}\" writes no cluster; name one",
                    route->pattern, topic));
  }
  return ClusterNamed(route->write.front());
}

// Names and clusters only: partitions would cost a watermark query per
// partition of every topic, so they are left to DescribeTopic. A cluster that
// does not answer fails the call (UNAVAILABLE naming it) rather than being
// left out silently; `request.cluster` lists the others.
grpc::Status AdminService::ListTopics(grpc::ServerContext* context,
                                      const v1::ListTopicsRequest* request,
                                      v1::ListTopicsResponse* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  std::vector<backend::Cluster*> chosen = clusters_;
  if (!request->cluster().empty()) {
    absl::StatusOr<backend::Cluster*> cluster = ClusterNamed(request->cluster());
    if (!cluster.ok()) return api::ToGrpcStatus(cluster.status());
    chosen = {*cluster};
  }
  for (backend::Cluster* cluster : chosen) {
    backend::ClusterStatus status = cluster->Describe(/*include_topics=*/true);
    if (status.state != backend::ClusterState::kUp) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          fmt::format("cluster \"{}\" is {}: {}", cluster->name(),
                                      backend::ToString(status.state), status.error));
    }
    std::sort(status.topics.begin(), status.topics.end());
    for (const std::string& topic : status.topics) {
      v1::Topic* out = response->add_topics();
      out->set_name(topic);
      out->set_cluster(cluster->name());
    }
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::CreateTopic(grpc::ServerContext* context,
                                       const v1::CreateTopicRequest* request,
                                       v1::Topic* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  // The name before the counts (ClusterFor checks it too, after them).
  if (absl::Status valid = ValidateTopicName(request->name()); !valid.ok()) {
    return api::ToGrpcStatus(valid);
  }
  if (absl::Status valid =
          ValidateCounts(request->partitions(), request->replication_factor());
      !valid.ok()) {
    return api::ToGrpcStatus(valid);
  }
  absl::StatusOr<backend::Cluster*> cluster =
      ClusterFor(request->cluster(), request->name());
  if (!cluster.ok()) return api::ToGrpcStatus(cluster.status());
  const std::map<std::string, std::string> configs(request->configs().begin(),
                                                   request->configs().end());
  absl::Status created = (*cluster)->CreateTopic(request->name(), request->partitions(),
                                                 request->replication_factor(), configs);
  if (!created.ok()) return api::ToGrpcStatus(created);
  // The topic exists now; its partitions are a courtesy to the caller, so a
  // failure to describe it does not turn the creation into an error.
  absl::StatusOr<backend::TopicInfo> info = (*cluster)->DescribeTopic(request->name());
  FillTopic(info.ok() ? *info : backend::TopicInfo{.name = request->name()},
            (*cluster)->name(), response);
  return grpc::Status::OK;
}

grpc::Status AdminService::DescribeTopic(grpc::ServerContext* context,
                                         const v1::DescribeTopicRequest* request,
                                         v1::Topic* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  absl::StatusOr<backend::Cluster*> cluster =
      ClusterFor(request->cluster(), request->name());
  if (!cluster.ok()) return api::ToGrpcStatus(cluster.status());
  absl::StatusOr<backend::TopicInfo> info = (*cluster)->DescribeTopic(request->name());
  if (!info.ok()) return api::ToGrpcStatus(info.status());
  FillTopic(*info, (*cluster)->name(), response);
  return grpc::Status::OK;
}

grpc::Status AdminService::DeleteTopic(grpc::ServerContext* context,
                                       const v1::DeleteTopicRequest* request,
                                       v1::DeleteTopicResponse*) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  absl::StatusOr<backend::Cluster*> cluster =
      ClusterFor(request->cluster(), request->name());
  if (!cluster.ok()) return api::ToGrpcStatus(cluster.status());
  return api::ToGrpcStatus((*cluster)->DeleteTopic(request->name()));
}

grpc::Status AdminService::ListLatestMessages(
    grpc::ServerContext* context, const v1::ListLatestMessagesRequest* request,
    v1::ListLatestMessagesResponse* response) {
  // Enough of a value to recognise it; the response stays small at any limit.
  constexpr size_t kValuePreviewBytes = 4096;
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  absl::StatusOr<backend::Cluster*> cluster =
      ClusterFor(request->cluster(), request->name());
  if (!cluster.ok()) return api::ToGrpcStatus(cluster.status());
  auto records = LatestMessages(
      **cluster, request->name(),
      {.limit = request->limit() == 0 ? kDefaultLatestMessages : request->limit()});
  if (!records.ok()) return api::ToGrpcStatus(records.status());
  for (const backend::ConsumedRecord& record : *records) {
    v1::LatestMessage* out = response->add_messages();
    out->set_partition(record.partition);
    out->set_offset(record.offset);
    SetTimestamp(absl::FromUnixMillis(record.timestamp_ms), out->mutable_timestamp());
    out->set_key(record.key.data(), record.key.size());
    for (const backend::HeaderView& header : record.headers) {
      v1::Header* h = out->add_headers();
      h->set_key(header.key.data(), header.key.size());
      h->set_value(header.value.data(), header.value.size());
    }
    const std::string_view preview = record.value.substr(0, kValuePreviewBytes);
    out->set_value(preview.data(), preview.size());
    out->set_value_size(static_cast<int64_t>(record.value.size()));
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::ListGroups(grpc::ServerContext* context,
                                      const v1::ListGroupsRequest* request,
                                      v1::ListGroupsResponse* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  auto result = groups_->List(*request);
  if (!result.ok()) return api::ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status AdminService::DescribeGroup(grpc::ServerContext* context,
                                         const v1::DescribeGroupRequest* request,
                                         v1::Group* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  auto result = groups_->Describe(*request);
  if (!result.ok()) return api::ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status AdminService::Seek(grpc::ServerContext* context,
                                const v1::SeekRequest* request,
                                v1::SeekResponse* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  auto result = groups_->Seek(*request);
  if (!result.ok()) return api::ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status AdminService::PauseGroup(grpc::ServerContext* context,
                                      const v1::PauseGroupRequest* request,
                                      v1::PauseGroupResponse*) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  return api::ToGrpcStatus(groups_->SetPaused(request->group(), true));
}

grpc::Status AdminService::ResumeGroup(grpc::ServerContext* context,
                                       const v1::ResumeGroupRequest* request,
                                       v1::ResumeGroupResponse*) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  return api::ToGrpcStatus(groups_->SetPaused(request->group(), false));
}

grpc::Status AdminService::SetGroupFilter(grpc::ServerContext* context,
                                          const v1::SetGroupFilterRequest* request,
                                          v1::SetGroupFilterResponse*) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  return api::ToGrpcStatus(groups_->SetFilter(request->group(), request->filter()));
}

}  // namespace ferry::admin
