#include "admin/client_config_operations.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "common/topic_name.h"

namespace ferry::admin {
namespace {

constexpr int kMaxTopics = 1000;

google::protobuf::Duration ToProto(absl::Duration d) {
  google::protobuf::Duration out;
  out.set_seconds(absl::IDivDuration(d, absl::Seconds(1), &d));
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
  return out;
}

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

v1::ClientSettings ToProto(const config::ClientSettings& settings) {
  v1::ClientSettings out;
  if (settings.linger) *out.mutable_linger() = ToProto(*settings.linger);
  if (settings.max_batch_messages)
    out.set_max_batch_messages(*settings.max_batch_messages);
  if (settings.max_batch_bytes) out.set_max_batch_bytes(*settings.max_batch_bytes);
  if (settings.request_timeout) {
    *out.mutable_request_timeout() = ToProto(*settings.request_timeout);
  }
  if (settings.delivery_timeout) {
    *out.mutable_delivery_timeout() = ToProto(*settings.delivery_timeout);
  }
  return out;
}

config::ClientSettings FromProto(const v1::ClientSettings& settings) {
  config::ClientSettings out;
  if (settings.has_linger()) out.linger = FromProto(settings.linger());
  if (settings.max_batch_messages() != 0) {
    out.max_batch_messages = settings.max_batch_messages();
  }
  if (settings.max_batch_bytes() != 0) out.max_batch_bytes = settings.max_batch_bytes();
  if (settings.has_request_timeout()) {
    out.request_timeout = FromProto(settings.request_timeout());
  }
  if (settings.has_delivery_timeout()) {
    out.delivery_timeout = FromProto(settings.delivery_timeout());
  }
  return out;
}

}  // namespace

bool IsSecretProperty(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (std::string_view word : {"password", "secret", "token", "credential"}) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return lower.starts_with("sasl.") ||
         (lower.starts_with("ssl.") && lower.find("key") != std::string::npos);
}

ClientConfigOperations::ClientConfigOperations(
    std::map<std::string, backend::Cluster*> clusters,
    std::map<std::string, config::ClusterConfig> cluster_configs,
    const routing::RouteTable* routes, const routing::ClusterBreakers* breakers,
    control::ControlPlane* control, config::ClientConfig client,
    metrics::Registry* registry)
    : clusters_(std::move(clusters)),
      cluster_configs_(std::move(cluster_configs)),
      routes_(routes),
      breakers_(breakers),
      control_(control),
      client_(std::move(client)),
      fallback_reports_(registry->GetCounter(
          "ferry_client_fallback_reports_total",
          "Configuration requests from SDKs that published directly to a cluster "
          "(fallback) since their previous request.")),
      fallback_messages_(registry->GetCounter(
          "ferry_client_fallback_messages_total",
          "Messages SDKs reported publishing directly to a cluster (fallback).")) {}

config::ClientSettings ClientConfigOperations::CurrentSettings() const {
  std::optional<config::ClientSettings> pushed =
      control_ == nullptr ? std::nullopt : control_->PushedClientSettings();
  return pushed ? *pushed : client_.settings;
}

absl::StatusOr<v1::GetClientConfigResponse> ClientConfigOperations::Get(
    const v1::GetClientConfigRequest& request) const {
  if (request.topics_size() > kMaxTopics) {
    return absl::InvalidArgumentError(fmt::format("topics: {} topics, more than {}",
                                                  request.topics_size(), kMaxTopics));
  }
  if (request.fallback_messages() < 0) {
    return absl::InvalidArgumentError(
        fmt::format("fallback_messages: {} is negative", request.fallback_messages()));
  }
  for (int i = 0; i < request.topics_size(); ++i) {
    if (absl::Status s = ValidateTopicName(request.topics(i)); !s.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("topics[{}]: {}", i, std::string(s.message())));
    }
  }
  v1::GetClientConfigResponse response;
  for (const std::string& topic : request.topics()) {
    auto config = ForTopic(topic);
    if (!config.ok()) return config.status();
    *response.add_topics() = *std::move(config);
  }
  *response.mutable_settings() = ToProto(CurrentSettings());
  *response.mutable_refresh_interval() = ToProto(client_.refresh_interval);
  if (request.fallback_messages() > 0) {
    fallback_reports_.Inc();
    fallback_messages_.Inc(static_cast<double>(request.fallback_messages()));
    spdlog::warn(
        "client {} published {} message(s) directly (fallback) while no node "
        "answered",
        request.client_id().empty() ? "(unnamed)" : request.client_id(),
        request.fallback_messages());
  }
  return response;
}

absl::StatusOr<v1::TopicClientConfig> ClientConfigOperations::ForTopic(
    const std::string& topic) const {
  auto route = routes_->Current()->Resolve(topic);
  if (!route.ok()) return route.status();
  routing::ClusterBreaker* breaker = breakers_->Choose(route->write);
  const std::string& name =
      breaker != nullptr ? breaker->cluster()->name() : route->write.front();
  v1::TopicClientConfig out;
  out.set_topic(topic);
  out.set_cluster(name);
  const config::ClusterConfig& cluster = cluster_configs_.at(name);
  const bool kafka = cluster.type == "kafka";
  out.set_fallback(route->fallback && kafka);
  if (kafka) {
    out.set_bootstrap(cluster.bootstrap);
    for (const auto& [key, value] : cluster.properties) {
      if (!IsSecretProperty(key)) (*out.mutable_properties())[key] = value;
    }
  }
  auto described = clusters_.at(name)->DescribeTopic(topic);
  if (described.ok())
    out.set_partitions(static_cast<int32_t>(described->partitions.size()));
  return out;
}

absl::StatusOr<v1::ClientSettings> ClientConfigOperations::SetSettings(
    const v1::ClientSettings& settings) {
  config::ClientSettings parsed = FromProto(settings);
  if (absl::Status s = config::ValidateClientSettings(parsed, "settings"); !s.ok()) {
    return s;
  }
  if (control_ == nullptr) {
    return absl::FailedPreconditionError(
        "no control plane: configure a cluster to hold the control topic");
  }
  if (absl::Status s = control_->SetClientSettings(parsed); !s.ok()) return s;
  return ToProto(parsed);
}

}  // namespace ferry::admin
