#include "admin_http/http_status.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ferry::admin_http {
namespace {

struct Expected {
  absl::StatusCode code;
  std::string_view name;
  int http_status;
};

// google/rpc/code.proto's published mapping, for every code.
constexpr Expected kTable[] = {
    {absl::StatusCode::kOk, "OK", 200},
    {absl::StatusCode::kCancelled, "CANCELLED", 499},
    {absl::StatusCode::kUnknown, "UNKNOWN", 500},
    {absl::StatusCode::kInvalidArgument, "INVALID_ARGUMENT", 400},
    {absl::StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED", 504},
    {absl::StatusCode::kNotFound, "NOT_FOUND", 404},
    {absl::StatusCode::kAlreadyExists, "ALREADY_EXISTS", 409},
    {absl::StatusCode::kPermissionDenied, "PERMISSION_DENIED", 403},
    {absl::StatusCode::kResourceExhausted, "RESOURCE_EXHAUSTED", 429},
    {absl::StatusCode::kFailedPrecondition, "FAILED_PRECONDITION", 400},
    {absl::StatusCode::kAborted, "ABORTED", 409},
    {absl::StatusCode::kOutOfRange, "OUT_OF_RANGE", 400},
    {absl::StatusCode::kUnimplemented, "UNIMPLEMENTED", 501},
    {absl::StatusCode::kInternal, "INTERNAL", 500},
    {absl::StatusCode::kUnavailable, "UNAVAILABLE", 503},
    {absl::StatusCode::kDataLoss, "DATA_LOSS", 500},
    {absl::StatusCode::kUnauthenticated, "UNAUTHENTICATED", 401},
};

TEST(HttpStatus, EveryGrpcCodeHasGooglesHttpStatusAndName) {
  for (const Expected& e : kTable) {
    EXPECT_EQ(HttpStatusFor(e.code), e.http_status) << e.name;
    EXPECT_EQ(CodeName(e.code), e.name);
    // absl spells the same names; the table must agree with it.
    EXPECT_EQ(std::string(absl::StatusCodeToString(e.code)), e.name);
  }
}

TEST(HttpStatus, ValuesOutsideTheCodeSpaceAreUnknown500) {
  for (int value : {-1, 17, 1000}) {
    auto code = static_cast<absl::StatusCode>(value);
    EXPECT_EQ(HttpStatusFor(code), 500) << value;
    EXPECT_EQ(CodeName(code), "UNKNOWN") << value;
  }
}

TEST(HttpStatus, ErrorResponseIsJsonWithCodeNameAndMessage) {
  HttpResponse response =
      ErrorResponse(absl::NotFoundError("topic \"a\" does not exist"));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.content_type, "application/json");
  auto body = nlohmann::json::parse(response.body);
  EXPECT_EQ(body["code"], "NOT_FOUND");
  EXPECT_EQ(body["message"], "topic \"a\" does not exist");
}

TEST(HttpStatus, MessageThatIsNotUtf8StillGivesValidJson) {
  HttpResponse response =
      ErrorResponse(absl::StatusCode::kInvalidArgument, "bad name \xff\xfe");
  EXPECT_EQ(response.status, 400);
  auto body = nlohmann::json::parse(response.body);
  EXPECT_EQ(body["code"], "INVALID_ARGUMENT");
}

}  // namespace
}  // namespace ferry::admin_http
