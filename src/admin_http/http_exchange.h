#pragma once

// The HTTP request and response as the admin API sees them: plain values the
// listener fills from and copies into its HTTP library, so the API is tested
// without sockets.

#include <string>
#include <utility>
#include <vector>

namespace ferry::admin_http {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string verb = {};  // "GET", "POST", ...
  // Percent-decoded, without the query string.
  std::string path = {};
  // The URL's query string (after '?'), still percent-encoded.
  std::string query = {};
  std::string body = {};
  // Header values, empty when absent.
  std::string authorization = {};
  std::string origin = {};
  std::string host = {};
  // The client's address, for the log of state-changing calls.
  std::string remote = {};
  // Sent with the in-process Admin call: the listener's word for who the
  // client is (security::Authorizer::ActAs), when auth.enabled.
  std::vector<std::pair<std::string, std::string>> call_metadata = {};
};

struct HttpResponse {
  int status = 200;
  std::string body = {};
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers = {};
};

}  // namespace ferry::admin_http
