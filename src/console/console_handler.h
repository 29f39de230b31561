#pragma once

// Serves the web console under /ui/: the embedded files (console_files.h)
// with their content type, ETag and Cache-Control. The console routes with
// the URL fragment (/ui/#/topics/orders), so the server only ever sees the
// file paths: /ui redirects to /ui/, /ui/ is index.html, and any other path
// that names no embedded file is 404.

#include <string_view>

#include "admin_http/http_exchange.h"

namespace ferry::console {

inline constexpr std::string_view kConsoleRoot = "/ui";

// Answers a GET of `path` (decoded, without the query string; /ui or under
// /ui/). `if_none_match` is the request's If-None-Match header (empty when
// absent): a match answers 304 without a body. Thread-safe, no I/O.
admin_http::HttpResponse ServeConsole(std::string_view path,
                                      std::string_view if_none_match);

// The Content-Type for a file name by its extension; application/octet-stream
// for an unknown one.
std::string_view ContentTypeFor(std::string_view name);

}  // namespace ferry::console
