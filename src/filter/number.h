#pragma once

// Numbers in filters: one syntax for number literals and for strings (header
// values, keys, JSON strings) read as numbers, and one comparison rule.
// docs/filters.md "Comparison rules" is the user-facing statement of both.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ferry::filter {

// An integer when the text had no fraction or exponent and fits in 64 bits;
// otherwise a double.
struct Number {
  bool is_integer = true;
  int64_t integer = 0;
  double real = 0;
};

// Length of the longest prefix of `text` with the number syntax
// `-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?`; 0 when there is none.
size_t NumberPrefixLength(std::string_view text);

// `text` read as a number when all of it has the number syntax and its value
// is finite; integers beyond 64 bits become doubles.
std::optional<Number> ParseNumber(std::string_view text);

// Integers compare exactly; any other pair compares as doubles.
// Returns <0, 0 or >0.
int CompareNumbers(const Number& a, const Number& b);

}  // namespace ferry::filter
