#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "admin_http/admin_http_api.h"
#include "common/net_address.h"
#include "metrics/registry.h"
#include "security/authorizer.h"
#include "security/tls_reloader.h"

namespace httplib {
class Server;
}

namespace ferry::server {

// The HTTP side of a node: GET /healthz (200 "ok", or 503 "draining"),
// GET /metrics (Prometheus text format), the admin API under /api/v1
// (admin_http/) and the web console under /ui/ (console/). Serves on its own
// threads. With auth.enabled, /metrics needs describe on the cluster and the
// admin API calls Admin as the client's principal (so its ACL checks are the
// gRPC API's); /healthz and the console's static files stay open (the
// console's data comes through the admin API).
class HttpListener {
 public:
  // Binds `address` or fails with UNAVAILABLE naming it; serves HTTPS with
  // the certificates of `tls` when it is not null. `tls`, `authorizer`,
  // `registry`, `draining` and `admin_api` must outlive the listener.
  static absl::StatusOr<std::unique_ptr<HttpListener>> Start(
      const NetAddress& address, security::TlsReloader* tls,
      security::Authorizer* authorizer, const metrics::Registry* registry,
      const std::atomic<bool>* draining, const admin_http::AdminHttpApi* admin_api);

  // Stops accepting and joins the serving thread.
  ~HttpListener();

 private:
  HttpListener() = default;

  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
};

}  // namespace ferry::server
