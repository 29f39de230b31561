#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "common/net_address.h"
#include "metrics/registry.h"

namespace httplib {
class Server;
}

namespace ferry::server {

// The HTTP side of a node: GET /healthz (200 "ok", or 503 "draining") and
// GET /metrics (Prometheus text format). Serves on its own threads.
class HttpListener {
 public:
  // Binds `address` or fails with UNAVAILABLE naming
  // it. `registry` and `draining` must outlive the listener.
  static absl::StatusOr<std::unique_ptr<HttpListener>> Start(
      const NetAddress& address, const metrics::Registry* registry,
      const std::atomic<bool>* draining);

  // Stops accepting and joins the serving thread.
  ~HttpListener();

 private:
  HttpListener() = default;

  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
};

}  // namespace ferry::server
