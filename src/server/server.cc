#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <thread>

#include "absl/synchronization/notification.h"
#include "backend/embedded/embedded_cluster.h"
#include "backend/kafka/kafka_cluster.h"
#include "common/version.h"
#include "grpc/health/v1/health.pb.h"
#include "security/grpc_credentials.h"
#include "server/consumer_metrics.h"
#include "server/consumer_shutdown.h"
#include "server/process_stats.h"

namespace ferry::server {
namespace {

// How often each breaker looks at its cluster's probe status and timers: a
// small share of the 5 s a failover may take.
constexpr absl::Duration kBreakerTick = absl::Milliseconds(100);

std::string DefaultNodeId(int grpc_port) {
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  return fmt::format("{}:{}", host, grpc_port);
}

void RegisterNodeMetrics(metrics::Registry& registry, absl::Time started) {
  registry
      .GetGauge("ferry_build_info", "Build information; the value is always 1.",
                {{"version", kVersion}})
      .Set(1);
  registry.AddGaugeCallback(
      "ferry_uptime_seconds", "Seconds since ferryd started.", {},
      [started] { return absl::ToDoubleSeconds(absl::Now() - started); });
  registry.AddGaugeCallback(
      "ferry_process_cpu_seconds",
      "CPU time (user + system) ferryd used since it started; rate() gives cores.", {},
      [] {
        auto stats = ReadProcessStats();
        return stats ? stats->cpu_seconds : 0.0;
      });
  registry.AddGaugeCallback("ferry_process_resident_memory_bytes",
                            "Resident memory (RSS) of ferryd.", {}, [] {
                              auto stats = ReadProcessStats();
                              return stats ? stats->resident_memory_bytes : 0.0;
                            });
}

void RegisterClusterMetrics(metrics::Registry& registry, backend::Cluster* cluster) {
  metrics::Labels labels = {{"cluster", cluster->name()},
                            {"type", std::string(cluster->type())}};
  registry.AddGaugeCallback(
      "ferry_cluster_up", "1 when the cluster's last metadata request succeeded.", labels,
      [cluster] {
        return cluster->Status().state == backend::ClusterState::kUp ? 1.0 : 0.0;
      });
  registry.AddGaugeCallback(
      "ferry_cluster_brokers", "Brokers the cluster reported in its last metadata.",
      labels,
      [cluster] { return static_cast<double>(cluster->Status().brokers.size()); });
}

absl::StatusOr<std::unique_ptr<backend::Cluster>> StartCluster(
    const config::ClusterConfig& config,
    const backend::kafka::KafkaCluster::Options& kafka_options,
    backend::kafka::ClientFactory& kafka_factory) {
  if (config.type == "embedded") {
    return backend::embedded::EmbeddedCluster::Open(
        config.name, backend::embedded::EmbeddedCluster::OptionsFrom(config));
  }
  return backend::kafka::KafkaCluster::Start(config, kafka_options, kafka_factory);
}

}  // namespace

Server::Server(const config::Config& config)
    : config_(config),
      started_(absl::Now()),
      registry_({.max_series_per_family =
                     static_cast<size_t>(config.metrics.max_series_per_family)}) {}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const config::Config& config) {
  std::unique_ptr<Server> server(new Server(config));
  if (config.tls.enabled()) {
    // Also the start-up check of the files, which gRPC only logs about.
    // With auth on, a bearer token may stand in for a client certificate.
    auto tls = security::TlsReloader::Start(config.tls, config.auth.enabled);
    if (!tls.ok()) return tls.status();
    server->http_tls_ = *std::move(tls);
  }
  auto authorizer = security::Authorizer::Start(config.auth);
  if (!authorizer.ok()) return authorizer.status();
  server->authorizer_ = *std::move(authorizer);
  RegisterNodeMetrics(server->registry_, server->started_);

  backend::kafka::KafkaCluster::Options kafka_options{
      .probe_interval = config.cluster_probe_interval,
      .probe_timeout = config.cluster_probe_timeout,
      .admin_timeout = backend::kafka::KafkaCluster::kAdminTimeout,
      .publish_timeout = config.publish.timeout,
      .group_session_timeout = config.subscribe.session_timeout};
  std::vector<backend::Cluster*> clusters;
  std::map<std::string, backend::Cluster*> clusters_by_name;
  for (const auto& [name, cluster_config] : config.clusters) {
    auto cluster = StartCluster(cluster_config, kafka_options, server->kafka_factory_);
    if (!cluster.ok()) return cluster.status();
    clusters.push_back(cluster->get());
    clusters_by_name[name] = cluster->get();
    RegisterClusterMetrics(server->registry_, cluster->get());
    server->clusters_.push_back(*std::move(cluster));
  }

  // gRPC's built-in health service carries no protobuf descriptor; touching
  // ours links it in so server reflection can describe grpc.health.v1.
  grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let a second ferryd share
  // this port silently; a port in use must be a start-up error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int bound_port = 0;
  builder.AddListeningPort(
      config.grpc_listen.ToString(),
      security::GrpcServerCredentials(config.tls, config.auth.enabled), &bound_port);

  admin::NodeIdentity identity{.id = config.node_id.empty()
                                         ? DefaultNodeId(config.grpc_listen.port)
                                         : config.node_id,
                               .grpc_address = config.grpc_listen.ToString(),
                               .http_address = config.http_listen.ToString(),
                               .started = server->started_};
  std::vector<std::string> cluster_names;
  for (const auto& [name, unused] : config.clusters) cluster_names.push_back(name);
  RegisterConsumerMetrics(server->registry_, cluster_names);
  // The YAML routes serve until the control topic's are known (DESIGN.md
  // §2: YAML seeds a fresh control topic; afterwards the control topic wins).
  server->routes_ = std::make_unique<routing::RouteTable>(
      std::make_shared<const routing::Router>(config.routes, cluster_names));
  server->publish_limiter_ =
      std::make_unique<publish::InflightLimiter>(config.publish.max_inflight_bytes);
  server->registry_.AddGaugeCallback(
      "ferry_publish_inflight_bytes",
      "Bytes of messages the publish path holds unacknowledged "
      "(limit: publish.max_inflight_bytes).",
      {}, [limiter = server->publish_limiter_.get()] {
        return static_cast<double>(limiter->in_use());
      });
  server->breakers_ = std::make_unique<routing::ClusterBreakers>(config.breaker, clusters,
                                                                 &server->registry_);
  server->breakers_->Start(kBreakerTick);
  // Settled holds reach the control plane through NodeControl, which
  // forgets it before it stops.
  server->write_hold_ = std::make_unique<publish::WriteHold>(
      config.migration.max_write_hold, &server->registry_, [s = server.get()] {
        if (s->node_control_) s->node_control_->HoldSettled();
      });
  server->batch_publisher_ = std::make_unique<publish::BatchPublisher>(
      config.publish, server->routes_.get(), server->breakers_.get(), &server->registry_,
      server->publish_limiter_.get(), server->write_hold_.get());
  if (config.auth.enabled) {
    const auto max = static_cast<size_t>(config.metrics.max_principals);
    server->published_by_principal_ = std::make_unique<metrics::PrincipalCounters>(
        &server->registry_, "ferry_principal_published_messages_total",
        "Messages a principal sent that were accepted for publishing "
        "(metrics.max_principals name their own; later ones count as other).",
        max);
    server->delivered_to_principal_ = std::make_unique<metrics::PrincipalCounters>(
        &server->registry_, "ferry_principal_delivered_messages_total",
        "Messages delivered to a principal's subscribe streams, redeliveries included "
        "(metrics.max_principals name their own; later ones count as other).",
        max);
  }
  server->publisher_ = std::make_unique<publish::PublisherService>(
      server->batch_publisher_.get(), server->publish_limiter_.get(),
      server->authorizer_.get(), server->published_by_principal_.get());
  server->groups_ = std::make_unique<subscribe::GroupRegistry>(
      identity.id, config.subscribe, server->routes_.get(), clusters_by_name,
      &server->registry_);
  server->subscriber_ = std::make_unique<subscribe::SubscriberService>(
      server->groups_.get(), identity.id, server->authorizer_.get(),
      server->delivered_to_principal_.get());
  if (!clusters.empty()) {
    backend::Cluster* control_cluster = clusters_by_name.begin()->second;
    if (!config.control.cluster.empty()) {
      control_cluster = clusters_by_name.at(config.control.cluster);
    }
    server->mirrors_ = std::make_unique<mirror::MirrorRunner>(
        clusters_by_name,
        mirror::MirrorJob::Options{
            .node_id = identity.id,
            .commit_interval = config.subscribe.commit_interval,
            .max_in_flight_bytes = config.mirror.max_inflight_bytes,
            .leave_timeout = config.subscribe.leave_timeout},
        &server->registry_);
    server->node_control_ = std::make_unique<NodeControl>(
        server->groups_.get(), server->routes_.get(), server->breakers_.get(),
        server->mirrors_.get(), server->write_hold_.get(), cluster_names,
        server->authorizer_.get());
    server->control_ = std::make_unique<control::ControlPlane>(
        control_cluster,
        control::ControlPlane::Options{
            .topic = config.control.topic,
            .node_id = identity.id,
            .seed_routes = config.routes,
            .version = kVersion,
            .grpc_address = identity.grpc_address,
            .http_address = identity.http_address,
            .started = server->started_,
            .heartbeat_interval = config.control.heartbeat_interval,
            .node_timeout = config.control.node_timeout,
            .start_call_timeout = config.cluster_probe_timeout,
            .leave_timeout = config.subscribe.leave_timeout},
        server->node_control_.get());
    server->groups_->SetSeekLedger(server->control_.get());
    server->groups_->SetMigrationLookup(
        [control = server->control_.get()](const std::string& topic) {
          return control->Migration(topic);
        });
    server->node_control_->SetControlPlane(server->control_.get());
  }
  server->group_operations_ = std::make_unique<admin::GroupOperations>(
      identity.id, clusters, server->routes_.get(), server->groups_.get(),
      server->control_.get());
  server->route_operations_ = std::make_unique<admin::RouteOperations>(
      clusters, server->routes_.get(), server->control_.get());
  server->mirror_operations_ = std::make_unique<admin::MirrorOperations>(
      clusters_by_name, server->control_.get(), server->mirrors_.get());
  server->migration_operations_ = std::make_unique<admin::MigrationOperations>(
      clusters_by_name, server->routes_.get(), server->control_.get(),
      server->mirror_operations_.get(),
      admin::MigrationOperations::Options{
          .max_write_hold = config.migration.max_write_hold,
          .stopping = [s = server.get()] { return s->draining_.load(); }});
  server->client_config_ = std::make_unique<admin::ClientConfigOperations>(
      clusters_by_name, config.clusters, server->routes_.get(), server->breakers_.get(),
      server->control_.get(), config.client, &server->registry_);
  server->acl_operations_ = std::make_unique<admin::AclOperations>(
      server->control_.get(), server->authorizer_.get());
  server->admin_ = std::make_unique<admin::AdminService>(
      identity, clusters, server->breakers_.get(), server->routes_.get(),
      server->route_operations_.get(), server->mirror_operations_.get(),
      server->migration_operations_.get(), server->group_operations_.get(),
      server->client_config_.get(), server->control_.get(), &server->draining_,
      server->authorizer_.get(), server->acl_operations_.get());
  builder.RegisterService(server->publisher_.get());
  builder.RegisterService(server->subscriber_.get());
  builder.RegisterService(server->admin_.get());
  server->grpc_ = builder.BuildAndStart();
  if (server->grpc_ == nullptr || bound_port == 0) {
    return absl::UnavailableError(
        fmt::format("listen.grpc: cannot listen on {} (address in use or not local)",
                    config.grpc_listen.ToString()));
  }
  // /healthz answers only once gRPC accepts calls: orchestrators and tests
  // take a 200 to mean "ready".
  // The HTTP admin API calls this node's own Admin service in process, so
  // its answers are exactly the gRPC API's.
  auto admin_http = admin_http::AdminHttpApi::Create(
      // With auth on, the ACLs decide who may write (admin_http's write guard
      // still refuses cross-origin browser writes).
      {.access = {.allow_writes = config.admin_http.allow_writes || config.auth.enabled,
                  .token = config.admin_http.token},
       .version = std::string(kVersion)},
      v1::Admin::service_full_name(),
      server->grpc_->InProcessChannel(grpc::ChannelArguments()));
  if (!admin_http.ok()) return admin_http.status();
  server->admin_http_ = *std::move(admin_http);
  auto http = HttpListener::Start(config.http_listen, server->http_tls_.get(),
                                  server->authorizer_.get(), &server->registry_,
                                  &server->draining_, server->admin_http_.get());
  if (!http.ok()) return http.status();
  server->http_ = *std::move(http);
  spdlog::info("ferryd {} serving node={} grpc={} http={} clusters={} tls={}", kVersion,
               identity.id, identity.grpc_address, identity.http_address,
               config.clusters.size(),
               !config.tls.enabled()          ? "off"
               : config.tls.client_ca.empty() ? "on"
                                              : "mutual");
  spdlog::info("admin API at {}://{}/api/v1: writes {}",
               config.tls.enabled() ? "https" : "http", identity.http_address,
               config.auth.enabled               ? "as auth.acl allows"
               : config.admin_http.allow_writes  ? "open (admin.http.allow_writes)"
               : config.admin_http.token.empty() ? "off (read-only)"
                                                 : "need the bearer token");
  return server;
}

void Server::Shutdown() {
  if (stopped_) return;
  stopped_ = true;
  draining_ = true;
  // Cut now, a start in progress (control topic, mirror job) ends with its
  // cluster call in progress during the grace, instead of going on and
  // having a call begun late in the grace waited for after it. Started
  // ones go on (heartbeats, copying) until the consumers stop.
  CutStarts(control_.get(), mirrors_.get());
  if (grpc_) {
    spdlog::info("draining: grace {}", absl::FormatDuration(config_.shutdown_grace));
    SetStage("draining gRPC calls");
    grpc_->GetHealthCheckService()->SetServingStatus(false);
    // Subscribe streams never end by themselves: cancel them so clients move
    // to other nodes now; their unacked messages are delivered again.
    subscriber_->CancelAll();
    const absl::Time deadline = absl::Now() + config_.shutdown_grace;
    // gRPC waits for every call to finish, also past the grace; a publish
    // waiting for a down broker would hold it for the whole publish timeout.
    absl::Notification drained;
    std::thread fail_pending([this, deadline, &drained] {
      if (drained.WaitForNotificationWithDeadline(deadline)) return;
      spdlog::info("grace over: failing publishes still waiting for a broker");
      SetStage("waiting for gRPC calls past the grace (publishes failed)");
      for (const auto& cluster : clusters_) cluster->FailPendingPublishes();
    });
    grpc_->Shutdown(absl::ToChronoTime(deadline));
    grpc_->Wait();
    drained.Notify();
    fail_pending.join();
    spdlog::info("stopped");
  }
  SetStage("stopping the HTTP listener");
  http_.reset();
  admin_http_.reset();
  if (groups_) groups_->SetSeekLedger(nullptr);
  if (groups_) groups_->SetMigrationLookup(nullptr);
  if (node_control_) node_control_->SetControlPlane(nullptr);
  StopConsumersAndCloseClusters(
      {.control = std::move(control_),
       .mirrors = std::move(mirrors_),
       .groups = std::move(groups_)},
      breakers_.get(), std::move(clusters_), config_.subscribe.leave_timeout,
      [this](std::string stage) { SetStage(std::move(stage)); });
  SetStage("stopped");
}

void Server::SetStage(std::string stage) {
  absl::MutexLock lock(&stage_mu_);
  stage_ = std::move(stage);
}

std::string Server::ShutdownStage() const {
  absl::MutexLock lock(&stage_mu_);
  return stage_;
}

Server::~Server() { Shutdown(); }

}  // namespace ferry::server
