#pragma once

// Parses the query string of a request URL ("cluster=a&topics=x&topics=y").
// Ours rather than the HTTP library's: that one also reads form-encoded
// bodies into the same parameters, and `curl -d '{...}'` sends JSON labelled
// as a form.

#include <string_view>

#include "absl/status/statusor.h"
#include "admin_http/http_exchange.h"

namespace ferry::admin_http {

// Name/value pairs in order, percent-decoded, '+' read as a space. A pair
// without '=' has an empty value; empty pairs ("a=1&&b=2") are skipped.
// INVALID_ARGUMENT for a '%' not followed by two hex digits, or an empty name.
absl::StatusOr<QueryParams> ParseQueryString(std::string_view query);

}  // namespace ferry::admin_http
