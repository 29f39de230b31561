#pragma once

// Who may change state over HTTP. An exposed console is read-only by default:
// a call to a mutating Admin method needs `admin.http.allow_writes: true` or
// the request header `Authorization: Bearer <admin.http.token>`. Reads are
// open to anyone who reaches the listener.

#include <string>

#include "absl/status/status.h"
#include "admin_http/http_exchange.h"

namespace ferry::admin_http {

struct WriteAccess {
  bool allow_writes = false;
  // Empty: no token opens writes.
  std::string token = {};
};

// OK when `request` may call a mutating method. PERMISSION_DENIED saying
// what would allow it when writes are off and no token was sent, or when
// a browser sends the write from another origin than the listener's (a page
// elsewhere must not use an operator's open console); UNAUTHENTICATED for a
// token that does not match. Never quotes the configured token.
absl::Status CheckWrite(const WriteAccess& access, const HttpRequest& request);

}  // namespace ferry::admin_http
