#pragma once

// One value a field yields for one message, and the tests of a condition
// applied to it. The comparison rules of docs/filters.md live here.

#include <string_view>

#include "filter/expression.h"
#include "filter/number.h"

namespace ferry::filter {

// Borrowed from the message (or from the JSON parser's buffer): valid only
// while the message is being evaluated.
struct Value {
  // kComposite: a JSON object or array; it exists, but compares with nothing.
  enum class Type { kString, kNumber, kBool, kNull, kComposite };
  Type type = Type::kNull;
  std::string_view string = {};
  Number number = {};
  bool boolean = false;
};

// Whether `value` passes `test`. ExistsTest passes for any value: a field that
// is missing never reaches here.
bool Passes(const Test& test, const Value& value);

}  // namespace ferry::filter
