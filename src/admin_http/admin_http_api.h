#pragma once

// The HTTP/JSON admin API: every unary method of the gRPC Admin service under
// POST /api/v1/admin/<Method>, resource-style routes for a console
// (path_router.h), and the OpenAPI description at GET /api/v1/openapi.json.
// Calls go through a gRPC channel to the node's own server (in process), so
// validation, status codes and behaviour are exactly the gRPC API's; errors
// become JSON with the matching HTTP status (http_status.h), and mutating
// methods are guarded (write_guard.h).
//
// Usage (server/server.cc):
//   auto api = AdminHttpApi::Create(options, v1::Admin::service_full_name(),
//                                   grpc_server->InProcessChannel({}));
//   HttpResponse response = (*api)->Handle(request);  // from any thread

#include <google/protobuf/message.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "admin_http/admin_methods.h"
#include "admin_http/http_exchange.h"
#include "admin_http/write_guard.h"

namespace ferry::admin_http {

class AdminHttpApi {
 public:
  struct Options {
    WriteAccess access = {};
    // Longest one call may take; above Seek's 20 s and TranslateOffsets' 30 s.
    absl::Duration call_timeout = absl::Seconds(60);
    // For the OpenAPI document's info.version.
    std::string version = {};
  };

  // Serves the service named `service` (from the generated descriptor pool)
  // through `channel`. INTERNAL when the service is unknown or a resource
  // route names a method or field it does not have.
  static absl::StatusOr<std::unique_ptr<AdminHttpApi>> Create(
      Options options, std::string_view service,
      std::shared_ptr<grpc::ChannelInterface> channel);

  // Answers one request under /api/v1. Thread-safe; blocks for the length of
  // the gRPC call (at most call_timeout).
  HttpResponse Handle(const HttpRequest& request) const;

 private:
  using Stub =
      grpc::TemplatedGenericStub<google::protobuf::Message, google::protobuf::Message>;

  AdminHttpApi(Options options, AdminMethods methods,
               std::shared_ptr<grpc::ChannelInterface> channel);

  HttpResponse Call(const AdminMethod& method, const HttpRequest& request,
                    const std::string& body_field, const QueryParams& path_fields) const;

  const Options options_;
  const AdminMethods methods_;
  const std::string openapi_;
  mutable Stub stub_;  // gRPC stubs are thread-safe
};

}  // namespace ferry::admin_http
