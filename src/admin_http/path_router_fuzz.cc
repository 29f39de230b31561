// libFuzzer target (scripts/fuzz): the verb and path of every request to the
// admin API come from any client that reaches the HTTP listener. No input
// may crash the node, and a match must be one the tables allow.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "admin_http/path_router.h"
#include "admin_http/write_guard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::admin_http;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t space = input.find(' ');
  std::string_view verb = input.substr(0, space);
  std::string_view path = space == std::string_view::npos ? "" : input.substr(space + 1);

  PathLookup lookup = LookUpPath(verb, path);
  if (lookup.match.has_value()) {
    if (lookup.match->method.empty() || !lookup.allowed_verbs.empty()) std::abort();
    for (const auto& [field, value] : lookup.match->path_fields) {
      if (field.empty() || value.empty() || value.find('/') != std::string_view::npos) {
        std::abort();
      }
    }
  }

  // The same bytes as the headers a browser or client sends with a write.
  HttpRequest request{.verb = std::string(verb),
                      .path = std::string(path),
                      .authorization = std::string(path),
                      .origin = std::string(verb),
                      .host = std::string(path)};
  const bool allowed = CheckWrite({.token = "fuzz-token-0123456789"}, request).ok();
  if (allowed && request.authorization != "Bearer fuzz-token-0123456789") std::abort();
  return 0;
}
