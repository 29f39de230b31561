#pragma once

#include <grpcpp/server.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "admin/admin_service.h"
#include "backend/cluster.h"
#include "backend/kafka/client_factory.h"
#include "config/config.h"
#include "metrics/principal_counters.h"
#include "metrics/registry.h"
#include "publish/batch_publisher.h"
#include "publish/inflight_limiter.h"
#include "publish/publisher_service.h"
#include "publish/write_hold.h"
#include "routing/cluster_breakers.h"
#include "routing/route_table.h"
#include "security/authorizer.h"
#include "security/tls_reloader.h"
#include "server/http_listener.h"
#include "server/node_control.h"
#include "subscribe/group_registry.h"
#include "subscribe/subscriber_service.h"

namespace ferry::server {

// The composition root: builds every component from the configuration and
// wires them together. Nothing else in ferryd constructs components.
class Server {
 public:
  // Binds both listeners and starts serving. Fails with INVALID_ARGUMENT for
  // configuration librdkafka rejects and UNAVAILABLE when a port cannot be
  // bound (the message names the address). Unreachable clusters do not fail
  // start-up: they are reported as down.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const config::Config& config);

  // Drains: health turns NOT_SERVING, new calls are refused, in-flight calls
  // get up to shutdown.grace to finish, then everything stops. Idempotent.
  void Shutdown();
  ~Server();

  // What Shutdown() is doing now (for the shutdown watchdog's report).
  // Thread-safe.
  std::string ShutdownStage() const;

 private:
  Server(const config::Config& config);

  const config::Config config_;
  const absl::Time started_;
  std::atomic<bool> draining_{false};
  metrics::Registry registry_;
  // Per-principal message counts, with auth.enabled (null otherwise).
  std::unique_ptr<metrics::PrincipalCounters> published_by_principal_;
  std::unique_ptr<metrics::PrincipalCounters> delivered_to_principal_;
  backend::kafka::LibrdkafkaClientFactory kafka_factory_;
  std::vector<std::unique_ptr<backend::Cluster>> clusters_;
  // Outlives clusters_'s last publish callbacks: Shutdown() clears clusters_
  // after stopping the breakers' watchers.
  std::unique_ptr<routing::ClusterBreakers> breakers_;
  std::unique_ptr<routing::RouteTable> routes_;
  std::unique_ptr<publish::InflightLimiter> publish_limiter_;
  std::unique_ptr<publish::WriteHold> write_hold_;
  std::unique_ptr<publish::BatchPublisher> batch_publisher_;
  std::unique_ptr<publish::PublisherService> publisher_;
  std::unique_ptr<subscribe::GroupRegistry> groups_;
  std::unique_ptr<subscribe::SubscriberService> subscriber_;
  std::unique_ptr<mirror::MirrorRunner> mirrors_;
  std::unique_ptr<NodeControl> node_control_;
  std::unique_ptr<control::ControlPlane> control_;
  std::unique_ptr<admin::GroupOperations> group_operations_;
  std::unique_ptr<admin::RouteOperations> route_operations_;
  std::unique_ptr<admin::MirrorOperations> mirror_operations_;
  std::unique_ptr<admin::MigrationOperations> migration_operations_;
  std::unique_ptr<admin::ClientConfigOperations> client_config_;
  std::unique_ptr<admin::AclOperations> acl_operations_;
  std::unique_ptr<admin::AdminService> admin_;
  // Certificates of the HTTP listener (gRPC watches the files itself); null
  // without listen.tls.
  std::unique_ptr<security::TlsReloader> http_tls_;
  // Every service's entry check (auth.*); passes everything when off.
  std::unique_ptr<security::Authorizer> authorizer_;
  std::unique_ptr<grpc::Server> grpc_;
  // Calls grpc_ in process; outlives http_, which serves it.
  std::unique_ptr<admin_http::AdminHttpApi> admin_http_;
  std::unique_ptr<HttpListener> http_;
  bool stopped_ = false;
  void SetStage(std::string stage);
  mutable absl::Mutex stage_mu_;
  std::string stage_ ABSL_GUARDED_BY(stage_mu_) = "not shutting down";
};

}  // namespace ferry::server
