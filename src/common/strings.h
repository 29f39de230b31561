#pragma once

// Small string helpers over std::string_view. Debian's abseil is built with
// its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0), so absl's
// string functions do not take std::string_view; Ferry formats with fmt and
// splits with these instead.

#include <charconv>
#include <string_view>
#include <vector>

namespace ferry {

// Splits on every `separator`; empty parts are kept.
std::vector<std::string_view> Split(std::string_view text, char separator);

// Removes leading and trailing ASCII whitespace.
std::string_view Trim(std::string_view text);

// Parses the whole of `text` as a base-10 integer.
template <typename Int>
bool ParseInt(std::string_view text, Int& out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace ferry
