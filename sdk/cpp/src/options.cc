#include "options.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <set>
#include <string_view>

namespace ferry::client::internal {
namespace {

// "host:port" with a port in 1..65535. Targets with a scheme ("dns:///...",
// "unix:...", "ipv4:...") are left for gRPC to parse.
bool LooksLikeTarget(std::string_view endpoint) {
  if (endpoint.find(":/") != std::string_view::npos || endpoint.substr(0, 5) == "unix:" ||
      endpoint.substr(0, 5) == "ipv4:" || endpoint.substr(0, 5) == "ipv6:") {
    return true;
  }
  size_t colon = endpoint.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view port = endpoint.substr(colon + 1);
  uint32_t number = 0;
  auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
  return error == std::errc() && end == port.data() + port.size() && number >= 1 &&
         number <= 65535;
}

template <typename T>
T Effective(bool set_by_application, T own, const std::optional<T>& pushed) {
  return set_by_application || !pushed ? own : *pushed;
}

}  // namespace

NodePathSettings EffectiveSettings(const PublisherOptions& o,
                                   const PushedSettings* pushed) {
  NodePathSettings settings = SettingsOf(o);
  if (pushed == nullptr) return settings;
  settings.linger = Effective(o.linger_set, o.linger, pushed->linger);
  settings.max_batch_messages = Effective(o.max_batch_messages_set, o.max_batch_messages,
                                          pushed->max_batch_messages);
  settings.max_batch_bytes =
      Effective(o.max_batch_bytes_set, o.max_batch_bytes, pushed->max_batch_bytes);
  settings.request_timeout =
      Effective(o.request_timeout_set, o.request_timeout, pushed->request_timeout);
  settings.delivery_timeout =
      Effective(o.delivery_timeout_set, o.delivery_timeout, pushed->delivery_timeout);
  return settings;
}

absl::Status ValidateEndpoints(const std::vector<std::string>& endpoints) {
  auto bad = [](std::string what) { return absl::InvalidArgumentError(what); };
  if (endpoints.empty()) {
    return bad("Endpoints: at least one \"host:port\" is required");
  }
  std::set<std::string_view> seen;
  for (const std::string& endpoint : endpoints) {
    if (!LooksLikeTarget(endpoint)) {
      return bad(fmt::format("Endpoints: \"{}\" is not \"host:port\"", endpoint));
    }
    if (!seen.insert(endpoint).second) {
      return bad(fmt::format("Endpoints: \"{}\" is listed twice", endpoint));
    }
  }
  return absl::OkStatus();
}

absl::Status Validate(const PublisherOptions& options) {
  auto bad = [](std::string what) { return absl::InvalidArgumentError(what); };
  if (absl::Status status = ValidateEndpoints(options.endpoints); !status.ok()) {
    return status;
  }
  if (options.max_batch_messages < 1) {
    return bad(fmt::format("MaxBatchMessages: must be >= 1, got {}",
                           options.max_batch_messages));
  }
  if (options.max_batch_bytes < 1) {
    return bad("MaxBatchBytes: must be >= 1");
  }
  if (options.linger.count() < 0) {
    return bad(fmt::format("Linger: must be >= 0 ms, got {}", options.linger.count()));
  }
  if (options.max_outstanding_bytes < 1) {
    return bad("MaxOutstandingBytes: must be >= 1");
  }
  if (options.request_timeout.count() <= 0) {
    return bad(fmt::format("RequestTimeout: must be > 0 ms, got {}",
                           options.request_timeout.count()));
  }
  if (options.delivery_timeout.count() <= 0) {
    return bad(fmt::format("DeliveryTimeout: must be > 0 ms, got {}",
                           options.delivery_timeout.count()));
  }
  if (options.initial_backoff.count() <= 0 ||
      options.max_backoff < options.initial_backoff) {
    return bad(fmt::format("RetryBackoff: need 0 < initial <= max, got {} ms and {} ms",
                           options.initial_backoff.count(), options.max_backoff.count()));
  }
  if (options.fallback_after.count() <= 0) {
    return bad(fmt::format("FallbackAfter: must be > 0 ms, got {}",
                           options.fallback_after.count()));
  }
  if (options.close_timeout.count() < 0) {
    return bad(fmt::format("CloseTimeout: must be >= 0 ms, got {}",
                           options.close_timeout.count()));
  }
  return absl::OkStatus();
}

}  // namespace ferry::client::internal
