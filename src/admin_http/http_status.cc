#include "admin_http/http_status.h"

#include <nlohmann/json.hpp>

namespace ferry::admin_http {
namespace {

struct CodeInfo {
  std::string_view name;
  int http_status;
};

// Indexed by the numeric code (the same in absl, gRPC and google.rpc.Code).
constexpr CodeInfo kCodes[] = {
    {"OK", 200},
    {"CANCELLED", 499},
    {"UNKNOWN", 500},
    {"INVALID_ARGUMENT", 400},
    {"DEADLINE_EXCEEDED", 504},
    {"NOT_FOUND", 404},
    {"ALREADY_EXISTS", 409},
    {"PERMISSION_DENIED", 403},
    {"RESOURCE_EXHAUSTED", 429},
    {"FAILED_PRECONDITION", 400},
    {"ABORTED", 409},
    {"OUT_OF_RANGE", 400},
    {"UNIMPLEMENTED", 501},
    {"INTERNAL", 500},
    {"UNAVAILABLE", 503},
    {"DATA_LOSS", 500},
    {"UNAUTHENTICATED", 401},
};

const CodeInfo& Info(absl::StatusCode code) {
  const auto index = static_cast<size_t>(code);
  if (index >= std::size(kCodes))
    return kCodes[static_cast<int>(absl::StatusCode::kUnknown)];
  return kCodes[index];
}

}  // namespace

int HttpStatusFor(absl::StatusCode code) { return Info(code).http_status; }

std::string_view CodeName(absl::StatusCode code) { return Info(code).name; }

HttpResponse ErrorResponse(absl::StatusCode code, std::string_view message) {
  nlohmann::json body = {{"code", CodeName(code)}, {"message", message}};
  // Messages quote user input, which need not be UTF-8: replace, never throw.
  return HttpResponse{
      .status = HttpStatusFor(code),
      .body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

}  // namespace ferry::admin_http
