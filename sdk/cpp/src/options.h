// The publisher's options as Builder collects them, and their validation.
#ifndef FERRY_CLIENT_SRC_OPTIONS_H_
#define FERRY_CLIENT_SRC_OPTIONS_H_

#include <grpcpp/security/credentials.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "ferry/client/publisher.h"
#include "security/client_credentials.h"

namespace ferry::client::internal {

struct PublisherOptions {
  std::vector<std::string> endpoints;
  int max_batch_messages = 500;
  std::size_t max_batch_bytes = std::size_t{1} << 20;
  std::chrono::milliseconds linger{5};
  std::size_t max_outstanding_bytes = std::size_t{64} << 20;
  bool block_when_full = true;
  std::chrono::milliseconds request_timeout{30'000};
  std::chrono::milliseconds delivery_timeout{120'000};
  std::chrono::milliseconds initial_backoff{50};
  std::chrono::milliseconds max_backoff{2'000};
  std::chrono::milliseconds close_timeout{30'000};

  // Follow the settings the nodes push (settings_follower.h; with fallback,
  // the probe of fallback_publisher.h fetches them).
  bool pushed_settings = true;
  // Fallback publishing straight to the cluster (fallback_publisher.h).
  bool fallback = false;
  std::chrono::milliseconds fallback_after{10'000};
  std::string client_id;
  security::ClientSecurity security;
  // Built from `security` by Build(); every channel to a node uses it.
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  // Which options the application set itself: settings pushed by the nodes
  // replace only the others.
  bool linger_set = false;
  bool max_batch_messages_set = false;
  bool max_batch_bytes_set = false;
  bool request_timeout_set = false;
  bool delivery_timeout_set = false;
  // Called on the sender thread with each final result that goes through
  // Publisher::Impl's resolution (not the at-once failures Publish returns),
  // just before its future completes. Must not block.
  std::function<void(const PublishResult&)> on_result;
};

// The options of the node path that settings pushed by the nodes may change
// while a publisher runs.
struct NodePathSettings {
  std::chrono::milliseconds linger{5};
  int max_batch_messages = 500;
  std::size_t max_batch_bytes = std::size_t{1} << 20;
  std::chrono::milliseconds request_timeout{30'000};
  std::chrono::milliseconds delivery_timeout{120'000};
  bool operator==(const NodePathSettings&) const = default;
};

inline NodePathSettings SettingsOf(const PublisherOptions& options) {
  return {.linger = options.linger,
          .max_batch_messages = options.max_batch_messages,
          .max_batch_bytes = options.max_batch_bytes,
          .request_timeout = options.request_timeout,
          .delivery_timeout = options.delivery_timeout};
}

// Settings the operator pushes (Admin.GetClientConfig); unset: the SDK keeps
// its own.
struct PushedSettings {
  std::optional<std::chrono::milliseconds> linger;
  std::optional<int> max_batch_messages;
  std::optional<std::size_t> max_batch_bytes;
  std::optional<std::chrono::milliseconds> request_timeout;
  std::optional<std::chrono::milliseconds> delivery_timeout;
  bool operator==(const PushedSettings&) const = default;
};

// The node path's settings, per setting: the application's (the *_set
// flags), else the pushed one (`pushed` may be null: none fetched), else the
// default.
NodePathSettings EffectiveSettings(const PublisherOptions& options,
                                   const PushedSettings* pushed);

// OK, or INVALID_ARGUMENT naming the first bad option (by its Builder name).
absl::Status Validate(const PublisherOptions& options);

// The Endpoints option, shared by the publisher and the subscriber: at least
// one, each "host:port" or a gRPC target with a scheme, none twice.
absl::Status ValidateEndpoints(const std::vector<std::string>& endpoints);

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_OPTIONS_H_
