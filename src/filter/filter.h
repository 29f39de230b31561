#pragma once

// Server-side message filters: a small expression language over a message's
// key, headers, JSON value and metadata (docs/filters.md has the grammar,
// the comparison rules and examples), parsed once per subscription and
// evaluated per message.
//
// Usage:
//
//   absl::StatusOr<Filter> filter = Filter::Parse(open.filter());
//   if (!filter.ok()) return filter.status();  // INVALID_ARGUMENT, with the column
//   EvalStats stats;
//   for (const auto& message : fetched) {
//     if (!filter->Matches(View(message), &stats)) SkipAndCommitPast(message);
//   }
//   ExportMetrics(stats);
//
// Threading: a Filter is immutable; Matches may run on any number of threads
// at once. Copies are cheap and share the parsed expression.
//
// Cost: no allocation per message. Conditions on the key, headers, topic,
// partition and timestamp compare bytes or integers in place (tens of ns);
// the value is parsed as JSON (simdjson, a parser per thread) only when a
// json.* condition is reached, at most once per message; AND / OR evaluate
// the conditions that do not read JSON first. bench/RESULTS.md "Filters" has
// measured figures.

#include <memory>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "filter/message_view.h"

namespace ferry::filter {

struct Node;

class Filter {
 public:
  // The filter that matches every message.
  Filter() = default;

  // The filter written in `text`. An empty or all-whitespace text is the
  // filter that matches every message (`Open.filter` is optional).
  // INVALID_ARGUMENT "filter: column N: expected X, got Y" (or another reason
  // at that column) when `text` is not a filter, is longer than 64 KiB, or
  // nests parentheses and NOT deeper than 100 levels.
  static absl::StatusOr<Filter> Parse(std::string_view text);

  // Whether `message` matches. A json.* condition on a value that is not
  // JSON, or lacks the field, is false; such cases are added to `*stats`
  // (which may be nullptr).
  bool Matches(const MessageView& message, EvalStats* stats = nullptr) const;

 private:
  explicit Filter(std::shared_ptr<const Node> root) : root_(std::move(root)) {}

  std::shared_ptr<const Node> root_;  // nullptr: matches everything
};

}  // namespace ferry::filter
