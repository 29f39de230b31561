#pragma once

// Recursive-descent parser for the filter language (docs/filters.md
// "Grammar"). Type errors that the fields make knowable are reported here,
// not at evaluation (e.g. `partition = "3"`, `hasPrefix(timestamp, "1")`),
// and regular expressions are compiled here, once.

#include <cstddef>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "filter/expression.h"

namespace ferry::filter {

inline constexpr size_t kMaxFilterBytes = 64 * 1024;
// Nesting of parentheses and NOT; bounds the recursion of the parser and of
// everything that walks the tree.
inline constexpr int kMaxFilterDepth = 100;

// The expression tree of `text`; nullptr for a text that is empty or all
// whitespace (the filter that matches everything). INVALID_ARGUMENT with
// "filter: column N: ..." when the text is not a filter.
absl::StatusOr<std::shared_ptr<const Node>> ParseExpression(std::string_view text);

}  // namespace ferry::filter
