#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "backend/cluster.h"
#include "config/config.h"
#include "control/control_plane.h"
#include "ferry/v1/admin.pb.h"
#include "metrics/registry.h"
#include "routing/cluster_breakers.h"
#include "routing/route_table.h"

namespace ferry::admin {

// True for client properties that carry credentials (sasl.*, *password*,
// *secret*, *token*, ssl key and keystore properties): never handed to SDKs.
bool IsSecretProperty(std::string_view name);

// Admin.GetClientConfig and SetClientSettings: what SDKs learn from the nodes
// (DESIGN.md §2 "Availability"). Thread-safe; GetClientConfig asks the write
// cluster for partition counts (bounded by its admin timeout).
class ClientConfigOperations {
 public:
  // Everything must outlive this object. `control` may be null (no cluster
  // configured): settings then come from `client` alone and
  // SetClientSettings answers FAILED_PRECONDITION.
  ClientConfigOperations(std::map<std::string, backend::Cluster*> clusters,
                         std::map<std::string, config::ClusterConfig> cluster_configs,
                         const routing::RouteTable* routes,
                         const routing::ClusterBreakers* breakers,
                         control::ControlPlane* control, config::ClientConfig client,
                         metrics::Registry* registry);

  absl::StatusOr<v1::GetClientConfigResponse> Get(
      const v1::GetClientConfigRequest& request) const;
  absl::StatusOr<v1::ClientSettings> SetSettings(const v1::ClientSettings& settings);

 private:
  absl::StatusOr<v1::TopicClientConfig> ForTopic(const std::string& topic) const;
  // The control topic's settings once set, else the `client.*` keys.
  config::ClientSettings CurrentSettings() const;

  const std::map<std::string, backend::Cluster*> clusters_;
  const std::map<std::string, config::ClusterConfig> cluster_configs_;
  const routing::RouteTable* const routes_;
  const routing::ClusterBreakers* const breakers_;
  control::ControlPlane* const control_;
  const config::ClientConfig client_;
  metrics::Counter& fallback_reports_;
  metrics::Counter& fallback_messages_;
};

}  // namespace ferry::admin
