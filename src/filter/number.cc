#include "filter/number.h"

#include <charconv>
#include <cmath>

namespace ferry::filter {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

size_t DigitsFrom(std::string_view text, size_t i) {
  size_t end = i;
  while (end < text.size() && IsDigit(text[end])) ++end;
  return end - i;
}

}  // namespace

size_t NumberPrefixLength(std::string_view text) {
  size_t i = 0;
  if (i < text.size() && text[i] == '-') ++i;
  size_t digits = DigitsFrom(text, i);
  if (digits == 0) return 0;
  i += digits;
  if (i < text.size() && text[i] == '.') {
    if (size_t fraction = DigitsFrom(text, i + 1); fraction > 0) i += 1 + fraction;
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    size_t sign = i + 1 < text.size() && (text[i + 1] == '+' || text[i + 1] == '-');
    if (size_t exponent = DigitsFrom(text, i + 1 + sign); exponent > 0) {
      i += 1 + sign + exponent;
    }
  }
  return i;
}

std::optional<Number> ParseNumber(std::string_view text) {
  if (text.empty() || NumberPrefixLength(text) != text.size()) return std::nullopt;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (text.find_first_of(".eE") == std::string_view::npos) {
    int64_t integer = 0;
    auto [stop, error] = std::from_chars(begin, end, integer);
    if (error == std::errc() && stop == end)
      return Number{.is_integer = true, .integer = integer};
  }
  double real = 0;
  auto [stop, error] = std::from_chars(begin, end, real);
  if (error != std::errc() || stop != end || !std::isfinite(real)) return std::nullopt;
  return Number{.is_integer = false, .real = real};
}

int CompareNumbers(const Number& a, const Number& b) {
  if (a.is_integer && b.is_integer)
    return (a.integer > b.integer) - (a.integer < b.integer);
  double x = a.is_integer ? static_cast<double>(a.integer) : a.real;
  double y = b.is_integer ? static_cast<double>(b.integer) : b.real;
  return (x > y) - (x < y);
}

}  // namespace ferry::filter
