#pragma once

// The one place where gRPC status codes become HTTP answers, following the
// mapping published with google.rpc.Code (googleapis google/rpc/code.proto),
// which gRPC-Gateway and Google's JSON APIs use as well.

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "admin_http/http_exchange.h"

namespace ferry::admin_http {

// The HTTP status for `code`: 400 for INVALID_ARGUMENT, FAILED_PRECONDITION
// and OUT_OF_RANGE, 409 for ALREADY_EXISTS and ABORTED, 499 for CANCELLED,
// ...; 500 for values outside the gRPC code space.
int HttpStatusFor(absl::StatusCode code);

// The gRPC name of `code` ("NOT_FOUND"); "UNKNOWN" for values outside the
// code space.
std::string_view CodeName(absl::StatusCode code);

// An error answer: HttpStatusFor(code) with the JSON body
// {"code": "NOT_FOUND", "message": "..."}.
HttpResponse ErrorResponse(absl::StatusCode code, std::string_view message);
inline HttpResponse ErrorResponse(const absl::Status& status) {
  return ErrorResponse(status.code(), std::string(status.message()));
}

}  // namespace ferry::admin_http
