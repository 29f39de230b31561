#include "admin_http/admin_http_api.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/client_context.h>
#include <spdlog/spdlog.h>

#include "absl/synchronization/notification.h"
#include "admin_http/http_status.h"
#include "admin_http/openapi.h"
#include "admin_http/path_router.h"
#include "admin_http/query_string.h"
#include "admin_http/request_builder.h"

namespace ferry::admin_http {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// Checks that every resource route fits the service: its method exists, and
// so does each field it sets from the path or the body.
absl::Status CheckRoutes(const AdminMethods& methods) {
  for (const ResourceRoute& route : ResourceRoutes()) {
    const AdminMethod* method = methods.Find(route.method);
    if (method == nullptr) {
      return absl::InternalError(
          fmt::format("{} {}: {} has no unary method {}", route.verb, route.pattern,
                      methods.service().full_name(), route.method));
    }
    const Descriptor& input = *method->descriptor->input_type();
    std::vector<std::string_view> fields = PatternFields(route.pattern);
    if (!route.body_field.empty()) fields.push_back(route.body_field);
    for (std::string_view name : fields) {
      const FieldDescriptor* field = input.FindFieldByName(std::string(name));
      const bool wants_message = name == route.body_field;
      if (field == nullptr || field->is_repeated() ||
          wants_message != (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE)) {
        return absl::InternalError(fmt::format(
            "{} {}: {} has no singular {} field {}", route.verb, route.pattern,
            input.full_name(), wants_message ? "message" : "scalar", name));
      }
    }
  }
  return absl::OkStatus();
}

HttpResponse JsonResponse(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  // Defaults are printed so clients need not know proto3's implicit values
  // ("paused": false, "lag": "0").
  options.always_print_primitive_fields = true;
  HttpResponse response;
  auto status =
      google::protobuf::util::MessageToJsonString(message, &response.body, options);
  if (!status.ok()) {
    return ErrorResponse(
        absl::StatusCode::kInternal,
        fmt::format("response to JSON: {}", std::string(status.message())));
  }
  return response;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AdminHttpApi>> AdminHttpApi::Create(
    Options options, std::string_view service,
    std::shared_ptr<grpc::ChannelInterface> channel) {
  const auto* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(service));
  if (descriptor == nullptr) {
    return absl::InternalError(fmt::format("no generated service {}", service));
  }
  auto methods = AdminMethods::From(descriptor);
  if (!methods.ok()) return methods.status();
  if (absl::Status s = CheckRoutes(*methods); !s.ok()) return s;
  return std::unique_ptr<AdminHttpApi>(
      new AdminHttpApi(std::move(options), *std::move(methods), std::move(channel)));
}

AdminHttpApi::AdminHttpApi(Options options, AdminMethods methods,
                           std::shared_ptr<grpc::ChannelInterface> channel)
    : options_(std::move(options)),
      methods_(std::move(methods)),
      openapi_(OpenApiDocument(methods_, options_.version)),
      stub_(std::move(channel)) {}

HttpResponse AdminHttpApi::Handle(const HttpRequest& request) const {
  if (request.verb == "GET" &&
      request.path == fmt::format("{}/openapi.json", kApiPrefix)) {
    return HttpResponse{.body = openapi_};
  }
  PathLookup lookup = LookUpPath(request.verb, request.path);
  if (!lookup.match.has_value()) {
    if (lookup.allowed_verbs.empty()) {
      return ErrorResponse(
          absl::StatusCode::kNotFound,
          fmt::format("no such path: {} (the API is described at {}/openapi.json)",
                      request.path, kApiPrefix));
    }
    HttpResponse response =
        ErrorResponse(absl::StatusCode::kUnimplemented,
                      fmt::format("{} {}: method not allowed (allowed: {})", request.verb,
                                  request.path, fmt::join(lookup.allowed_verbs, ", ")));
    response.status = 405;
    response.headers.emplace_back(
        "Allow", fmt::format("{}", fmt::join(lookup.allowed_verbs, ", ")));
    return response;
  }
  const AdminMethod* method = methods_.Find(lookup.match->method);
  if (method == nullptr) {
    return ErrorResponse(
        absl::StatusCode::kNotFound,
        fmt::format("{} has no method \"{}\" (the API is described at {}/openapi.json)",
                    methods_.service().full_name(), lookup.match->method, kApiPrefix));
  }
  if (!method->read_only) {
    if (absl::Status s = CheckWrite(options_.access, request); !s.ok()) {
      return ErrorResponse(s);
    }
  }
  HttpResponse response =
      Call(*method, request, lookup.match->body_field, lookup.match->path_fields);
  if (!method->read_only) {
    // Admin writes are rare and worth an audit line; never the token.
    spdlog::info("admin http: {} {} from {}: {}", request.verb, request.path,
                 request.remote, response.status);
  }
  return response;
}

HttpResponse AdminHttpApi::Call(const AdminMethod& method, const HttpRequest& request,
                                const std::string& body_field,
                                const QueryParams& path_fields) const {
  const google::protobuf::Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(
          method.descriptor->input_type());
  const google::protobuf::Message* response_prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(
          method.descriptor->output_type());
  if (prototype == nullptr || response_prototype == nullptr) {
    return ErrorResponse(absl::StatusCode::kInternal,
                         fmt::format("no generated messages for {}", method.grpc_path));
  }
  auto query = ParseQueryString(request.query);
  if (!query.ok()) return ErrorResponse(query.status());
  std::unique_ptr<google::protobuf::Message> call_request(prototype->New());
  if (absl::Status s =
          BuildRequest(request.body, body_field, path_fields, *query, *call_request);
      !s.ok()) {
    return ErrorResponse(s);
  }
  std::unique_ptr<google::protobuf::Message> call_response(response_prototype->New());
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout));
  for (const auto& [key, value] : request.call_metadata) context.AddMetadata(key, value);
  absl::Notification done;
  grpc::Status status;
  stub_.UnaryCall(&context, method.grpc_path, grpc::StubOptions(), call_request.get(),
                  call_response.get(), [&status, &done](grpc::Status result) {
                    status = std::move(result);
                    done.Notify();
                  });
  done.WaitForNotification();
  if (!status.ok()) {
    return ErrorResponse(static_cast<absl::StatusCode>(status.error_code()),
                         status.error_message());
  }
  return JsonResponse(*call_response);
}

}  // namespace ferry::admin_http
