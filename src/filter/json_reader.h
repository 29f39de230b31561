#pragma once

// Reads fields of one message's value as JSON, with simdjson's On-Demand
// API: the value is indexed once, on the first lookup, and each lookup walks
// only the path it needs. The rest of the document is not validated, so a
// value that breaks after the fields a filter reads can still match.
//
// Threading and cost: the simdjson parser and the padded copy of the value
// that simdjson needs are per thread (thread_local), so Filters shared by
// many threads need no lock, and neither allocates per message: both grow to
// the largest value seen on the thread and are reused. A JsonReader belongs
// to one evaluation on one thread; if several readers on one thread take
// turns, each re-parses its value when its turn comes.

#include <cstdint>
#include <string_view>
#include <vector>

#include "filter/expression.h"
#include "filter/value.h"

namespace ferry::filter {

class JsonReader {
 public:
  // `value` must outlive the reader.
  explicit JsonReader(std::string_view value) : value_(value) {}

  JsonReader(const JsonReader&) = delete;
  JsonReader& operator=(const JsonReader&) = delete;

  enum class Result {
    kFound,
    // The path is not there: a field or index is absent, or a step meets a
    // value of the wrong kind (`.name` on an array, `[0]` on a string).
    kMissing,
    // The value is not a JSON object or array (plain text, a bare number,
    // broken JSON); later lookups of this reader answer the same at once.
    kNotJson,
  };

  // Looks `path` up; on kFound, `out` holds the value, whose string (if any)
  // stays valid until this thread parses another value.
  Result Find(const std::vector<JsonStep>& path, Value& out);

 private:
  std::string_view value_;
  bool not_json_ = false;
  // Which parse of this thread's parser holds our value; 0: none yet.
  uint64_t parse_generation_ = 0;
};

}  // namespace ferry::filter
