#include "admin_http/query_string.h"

#include <fmt/format.h>

#include "common/strings.h"

namespace ferry::admin_http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::StatusOr<std::string> Decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] != '%') {
      out += text[i];
    } else {
      const int high = i + 1 < text.size() ? HexValue(text[i + 1]) : -1;
      const int low = i + 2 < text.size() ? HexValue(text[i + 2]) : -1;
      if (high < 0 || low < 0) {
        return absl::InvalidArgumentError(
            fmt::format("\"{}\" is not a %XX escape", text.substr(i, 3)));
      }
      out += static_cast<char>(high * 16 + low);
      i += 2;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<QueryParams> ParseQueryString(std::string_view query) {
  QueryParams params;
  for (std::string_view pair : Split(query, '&')) {
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto name = Decode(pair.substr(0, eq));
    auto value = Decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    for (const absl::Status& s : {name.status(), value.status()}) {
      if (!s.ok()) {
        return absl::InvalidArgumentError(
            fmt::format("query string: \"{}\": {}", pair, std::string(s.message())));
      }
    }
    if (name->empty()) {
      return absl::InvalidArgumentError(
          fmt::format("query string: \"{}\" has no parameter name", pair));
    }
    params.emplace_back(*std::move(name), *std::move(value));
  }
  return params;
}

}  // namespace ferry::admin_http
