#pragma once

// Evaluates a parsed filter against one message. Allocation-free except what
// RE2 and simdjson do inside (both reuse their memory after warming up).
// Recursion follows the tree, whose depth the parser bounds.

#include "filter/expression.h"
#include "filter/message_view.h"

namespace ferry::filter {

// `stats` may be nullptr.
bool Evaluate(const Node& root, const MessageView& message, EvalStats* stats);

}  // namespace ferry::filter
