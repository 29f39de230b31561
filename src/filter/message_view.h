#pragma once

// What a filter sees of one message, and what evaluating it counted.

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

namespace ferry::filter {

// Borrows everything: the viewed message must outlive the Matches call.
// `headers` is a span so that a caller can refill one vector per thread (or
// per dispatcher) for each message instead of allocating one.
struct MessageView {
  std::string_view topic = {};
  int32_t partition = 0;
  int64_t timestamp_ms = 0;   // ms since the epoch
  std::string_view key = {};  // empty: no key
  std::string_view value = {};
  std::span<const std::pair<std::string_view, std::string_view>> headers =
      {};  // name, value
};

// Counters a caller keeps (per stream, per thread, ...) and exports as
// metrics; Matches adds to them. Neither case is an error to the client: the
// message just does not match.
struct EvalStats {
  // Messages whose value a json.* condition read and found not to be a JSON
  // object or array (plain text, a bare number, broken JSON). Once per message.
  uint64_t values_not_json = 0;
  // json.* lookups that a JSON value lacked (exists() does not count: absence
  // is its answer).
  uint64_t json_fields_missing = 0;
};

}  // namespace ferry::filter
