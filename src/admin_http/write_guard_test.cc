#include "admin_http/write_guard.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::admin_http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kToken = "s3cret-token-0123456789";

HttpRequest Write(std::string authorization = "", std::string origin = "") {
  return HttpRequest{.verb = "POST",
                     .path = "/api/v1/topics",
                     .authorization = std::move(authorization),
                     .origin = std::move(origin),
                     .host = "127.0.0.1:7401"};
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(WriteGuard, WritesAreOffByDefaultAndTheErrorSaysHowToAllowThem) {
  absl::Status s = CheckWrite({}, Write());
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(s), HasSubstr("admin.http.allow_writes: true"));
  EXPECT_THAT(Message(s), HasSubstr("admin.http.token"));
}

TEST(WriteGuard, AllowWritesOpensWritesToAnyone) {
  EXPECT_TRUE(CheckWrite({.allow_writes = true}, Write()).ok());
  EXPECT_TRUE(CheckWrite({.allow_writes = true, .token = std::string(kToken)},
                         Write("Bearer whatever"))
                  .ok());
}

TEST(WriteGuard, TheMatchingBearerTokenOpensAWrite) {
  const WriteAccess access{.token = std::string(kToken)};
  EXPECT_TRUE(CheckWrite(access, Write(fmt::format("Bearer {}", kToken))).ok());

  absl::Status missing = CheckWrite(access, Write());
  EXPECT_EQ(missing.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(missing), HasSubstr("Authorization: Bearer <admin.http.token>"));
}

TEST(WriteGuard, AWrongTokenIsUnauthenticatedAndNeverQuoted) {
  const WriteAccess access{.token = std::string(kToken)};
  for (std::string header :
       {std::string("Bearer wrong"), fmt::format("Bearer {}x", kToken),
        fmt::format("Bearer {}", kToken.substr(1)), fmt::format("bearer {}", kToken),
        fmt::format("Basic {}", kToken), std::string("Bearer ")}) {
    absl::Status s = CheckWrite(access, Write(header));
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << header;
    EXPECT_THAT(Message(s), Not(HasSubstr(kToken.substr(0, 8)))) << header;
  }
}

TEST(WriteGuard, ATokenSentWhenNoneIsConfiguredIsRefused) {
  absl::Status s = CheckWrite({}, Write("Bearer anything"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(Message(s), HasSubstr("admin.http.token is not set"));
}

TEST(WriteGuard, BrowserWritesFromAnotherOriginAreRefusedEvenWithWritesOn) {
  const WriteAccess open{.allow_writes = true};
  EXPECT_TRUE(CheckWrite(open, Write("", "http://127.0.0.1:7401")).ok());
  for (std::string origin : {"http://evil.example", "http://127.0.0.1:8080", "null",
                             "http://127.0.0.1:7401.evil.example"}) {
    absl::Status s = CheckWrite(open, Write("", origin));
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << origin;
    EXPECT_THAT(Message(s), HasSubstr(origin));
  }
}

}  // namespace
}  // namespace ferry::admin_http
