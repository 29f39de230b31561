#include "admin_http/write_guard.h"

#include <fmt/format.h>

#include <string_view>

namespace ferry::admin_http {
namespace {

constexpr std::string_view kBearer = "Bearer ";

// The host[:port] of an Origin header ("http://h:1" -> "h:1"); empty when it
// has no scheme (e.g. the opaque origin "null").
std::string_view OriginHost(std::string_view origin) {
  const size_t scheme_end = origin.find("://");
  if (scheme_end == std::string_view::npos) return {};
  return origin.substr(scheme_end + 3);
}

// Compares in time independent of where the first difference is, so the
// answer time does not reveal how much of a guess was right.
bool SameSecret(std::string_view guess, std::string_view secret) {
  if (secret.empty()) return false;
  unsigned char diff = guess.size() == secret.size() ? 0 : 1;
  for (size_t i = 0; i < guess.size(); ++i) {
    diff |= static_cast<unsigned char>(guess[i] ^ secret[i % secret.size()]);
  }
  return diff == 0;
}

}  // namespace

absl::Status CheckWrite(const WriteAccess& access, const HttpRequest& request) {
  if (!request.origin.empty()) {
    std::string_view host = OriginHost(request.origin);
    if (host.empty() || host != request.host) {
      return absl::PermissionDeniedError(fmt::format(
          "a write from origin {} to {} is refused: only pages served by this "
          "listener may change state",
          request.origin, request.host));
    }
  }
  if (access.allow_writes) return absl::OkStatus();
  if (request.authorization.empty()) {
    return absl::PermissionDeniedError(
        access.token.empty()
            ? "this call changes state and writes over HTTP are off: set "
              "admin.http.allow_writes: true, or set admin.http.token and send "
              "Authorization: Bearer <token>"
            : "this call changes state: send Authorization: Bearer <admin.http.token>");
  }
  std::string_view header = request.authorization;
  if (!header.starts_with(kBearer)) {
    return absl::UnauthenticatedError(
        "the Authorization header is not \"Bearer <admin.http.token>\"");
  }
  if (!SameSecret(header.substr(kBearer.size()), access.token)) {
    return absl::UnauthenticatedError(
        access.token.empty() ? "a bearer token was sent but admin.http.token is not set"
                             : "the bearer token does not match admin.http.token");
  }
  return absl::OkStatus();
}

}  // namespace ferry::admin_http
