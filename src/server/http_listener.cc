#include "server/http_listener.h"

#include <fmt/format.h>
#include <httplib.h>

namespace ferry::server {

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Start(
    const NetAddress& address, const metrics::Registry* registry,
    const std::atomic<bool>* draining) {
  std::unique_ptr<HttpListener> listener(new HttpListener());
  listener->http_ = std::make_unique<httplib::Server>();
  httplib::Server& http = *listener->http_;
  http.Get("/healthz", [draining](const httplib::Request&, httplib::Response& res) {
    if (draining->load()) {
      res.status = 503;
      res.set_content("draining\n", "text/plain");
    } else {
      res.set_content("ok\n", "text/plain");
    }
  });
  http.Get("/metrics", [registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry->Render(), "text/plain; version=0.0.4");
  });
  if (!http.bind_to_port(address.host, address.port)) {
    return absl::UnavailableError(
        fmt::format("listen.http: cannot listen on {} (address in use or not local)",
                    address.ToString()));
  }
  listener->thread_ = std::thread([&http] { http.listen_after_bind(); });
  // stop() is a no-op until the loop runs, so the destructor could hang if
  // it raced the start: wait for the loop here instead.
  while (!http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return listener;
}

HttpListener::~HttpListener() {
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ferry::server
