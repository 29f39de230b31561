#include "filter/filter.h"

#include "filter/evaluator.h"
#include "filter/parser.h"

namespace ferry::filter {

absl::StatusOr<Filter> Filter::Parse(std::string_view text) {
  absl::StatusOr<std::shared_ptr<const Node>> root = ParseExpression(text);
  if (!root.ok()) return root.status();
  return Filter(*std::move(root));
}

bool Filter::Matches(const MessageView& message, EvalStats* stats) const {
  return root_ == nullptr || Evaluate(*root_, message, stats);
}

}  // namespace ferry::filter
