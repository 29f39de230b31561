#include "server/http_listener.h"

#include <fmt/format.h>
#include <httplib.h>

#include "admin_http/http_status.h"
#include "admin_http/path_router.h"
#include "console/console_handler.h"

namespace ferry::server {
namespace {

// Admin requests are small JSON documents; anything larger is refused (413)
// before it is read into memory.
constexpr size_t kMaxBodyBytes = 1 << 20;

std::string Remote(const httplib::Request& req) {
  return fmt::format("{}:{}", req.remote_addr, req.remote_port);
}

admin_http::HttpRequest ToAdminRequest(const httplib::Request& req) {
  const size_t question = req.target.find('?');
  return admin_http::HttpRequest{
      .verb = req.method,
      .path = req.path,
      .query = question == std::string::npos ? "" : req.target.substr(question + 1),
      .body = req.body,
      .authorization = req.get_header_value("Authorization"),
      .origin = req.get_header_value("Origin"),
      .host = req.get_header_value("Host"),
      .remote = Remote(req)};
}

// Who sent `req` (bearer token, else verified client certificate).
absl::StatusOr<std::string> Principal(security::Authorizer& authorizer,
                                      const httplib::Request& req) {
  std::string certificate;
  if (req.ssl != nullptr) {
    certificate = security::CertificatePrincipal(
        SSL_get0_peer_certificate(const_cast<SSL*>(req.ssl)));
  }
  return authorizer.Authenticate(req.get_header_value("Authorization"), certificate,
                                 Remote(req));
}

void SendError(const absl::Status& status, httplib::Response& res) {
  admin_http::HttpResponse response = admin_http::ErrorResponse(status);
  res.status = response.status;
  res.set_content(std::move(response.body), response.content_type);
}

void ServeAdmin(const admin_http::AdminHttpApi* api, security::Authorizer* authorizer,
                const httplib::Request& req, httplib::Response& res) {
  admin_http::HttpRequest request = ToAdminRequest(req);
  if (authorizer->enabled()) {
    auto principal = Principal(*authorizer, req);
    if (!principal.ok()) return SendError(principal.status(), res);
    request.call_metadata = authorizer->ActAs(*principal, request.remote);
  }
  admin_http::HttpResponse response = api->Handle(request);
  res.status = response.status;
  for (const auto& [name, value] : response.headers) res.set_header(name, value);
  res.set_content(std::move(response.body), response.content_type);
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Start(
    const NetAddress& address, security::TlsReloader* tls,
    security::Authorizer* authorizer, const metrics::Registry* registry,
    const std::atomic<bool>* draining, const admin_http::AdminHttpApi* admin_api) {
  std::unique_ptr<HttpListener> listener(new HttpListener());
  if (tls == nullptr) {
    listener->http_ = std::make_unique<httplib::Server>();
  } else {
    listener->http_ = std::make_unique<httplib::SSLServer>([tls](SSL_CTX& ctx) {
      tls->Install(ctx);
      return true;
    });
  }
  httplib::Server& http = *listener->http_;
  http.Get("/healthz", [draining](const httplib::Request&, httplib::Response& res) {
    if (draining->load()) {
      res.status = 503;
      res.set_content("draining\n", "text/plain");
    } else {
      res.set_content("ok\n", "text/plain");
    }
  });
  http.Get("/metrics", [registry, authorizer](const httplib::Request& req,
                                              httplib::Response& res) {
    if (authorizer->enabled()) {
      auto principal = Principal(*authorizer, req);
      absl::Status allowed =
          principal.ok()
              ? authorizer->Allow(*principal, security::Operation::kDescribe,
                                  {.kind = security::ResourceKind::kCluster}, Remote(req))
              : principal.status();
      if (!allowed.ok()) return SendError(allowed, res);
    }
    res.set_content(registry->Render(), "text/plain; version=0.0.4");
  });
  const std::string api_root = fmt::format("{}/", admin_http::kApiPrefix);
  const std::string api_paths = api_root + ".*";
  auto serve_admin = [admin_api, authorizer](const httplib::Request& req,
                                             httplib::Response& res) {
    ServeAdmin(admin_api, authorizer, req, res);
  };
  http.Get(api_paths, serve_admin);
  http.Post(api_paths, serve_admin);
  http.Put(api_paths, serve_admin);
  http.Patch(api_paths, serve_admin);
  http.Delete(api_paths, serve_admin);
  auto serve_console = [](const httplib::Request& req, httplib::Response& res) {
    admin_http::HttpResponse response =
        console::ServeConsole(req.path, req.get_header_value("If-None-Match"));
    res.status = response.status;
    for (const auto& [name, value] : response.headers) res.set_header(name, value);
    res.set_content(std::move(response.body), response.content_type);
  };
  http.Get(std::string(console::kConsoleRoot), serve_console);
  http.Get(fmt::format("{}/.*", console::kConsoleRoot), serve_console);
  http.set_payload_max_length(kMaxBodyBytes);
  // A request without Content-Length or Transfer-Encoding has no body (RFC
  // 9112 section 6.3), but httplib answers such a POST 400 before routing
  // it: serve those here, so `curl -X POST .../groups/g/pause` works.
  http.set_pre_routing_handler([admin_api, authorizer, api_root](
                                   const httplib::Request& req, httplib::Response& res) {
    if (!req.path.starts_with(api_root) || req.has_header("Content-Length") ||
        req.has_header("Transfer-Encoding")) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    ServeAdmin(admin_api, authorizer, req, res);
    return httplib::Server::HandlerResponse::Handled;
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
