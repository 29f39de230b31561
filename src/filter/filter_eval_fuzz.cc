// libFuzzer target (scripts/fuzz): random filters against random messages.
// The input drives a generator that writes syntactically plausible filters
// (fields, operators, functions, nesting) and messages whose values are
// usually JSON with the fields those filters read, so the fuzzer spends its
// time in the evaluator rather than in parse errors. Checks: evaluation is
// deterministic, and `NOT (f)` matches exactly the messages `f` does not.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "filter/filter.h"

namespace {

constexpr const char* kNames[] = {"a", "b", "c", "a.b", "0", "x-y"};

std::string Name(FuzzedDataProvider& in) { return in.PickValueInArray(kNames); }

std::string Quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A field and the type the parser knows it to have, so that the generator
// writes literals and functions the parser accepts for it.
struct GeneratedField {
  enum class Type { kString, kNumber, kJson } type;
  std::string text;
};

GeneratedField Field(FuzzedDataProvider& in, bool presence_only = false) {
  using Type = GeneratedField::Type;
  switch (in.ConsumeIntegralInRange(presence_only ? 3 : 0, 5)) {
    case 0:
      return {Type::kString, in.ConsumeBool() ? "key" : "topic"};
    case 1:
      return {Type::kNumber, in.ConsumeBool() ? "partition" : "timestamp"};
    case 2:
    case 3:
      return {Type::kString, "headers[" + Quoted(Name(in)) + "]"};
    default: {
      std::string path = "json";
      int steps = in.ConsumeIntegralInRange(1, 3);
      for (int i = 0; i < steps; ++i) {
        path += in.ConsumeBool()
                    ? "[" + std::to_string(in.ConsumeIntegralInRange(0, 2)) + "]"
                    : "[" + Quoted(Name(in)) + "]";
      }
      return {Type::kJson, path};
    }
  }
}

// A literal of the kinds the parser allows for `type`; booleans and null
// only with `equality` (= != IN).
std::string Literal(FuzzedDataProvider& in, GeneratedField::Type type, bool equality) {
  int last = type == GeneratedField::Type::kNumber                ? 2
             : type == GeneratedField::Type::kString || !equality ? 3
                                                                  : 5;
  switch (in.ConsumeIntegralInRange(0, last)) {
    case 0:
      return std::to_string(in.ConsumeIntegralInRange<int64_t>(-3, 3));
    case 1:
      return std::to_string(in.ConsumeIntegral<int64_t>());
    case 2:
      return in.ConsumeBool() ? "1.5" : "-2e3";
    case 3:
      return Quoted(in.ConsumeRandomLengthString(8));
    case 4:
      return in.ConsumeBool() ? "true" : "false";
    default:
      return "null";
  }
}

std::string Condition(FuzzedDataProvider& in) {
  static constexpr const char* kOperators[] = {"=", "!=", "<", "<=", ">", ">="};
  static constexpr const char* kFunctions[] = {"hasPrefix", "hasSuffix", "contains"};
  GeneratedField field = Field(in);
  switch (in.ConsumeIntegralInRange(0, 4)) {
    case 0: {
      const size_t op = in.ConsumeIntegralInRange<size_t>(0, 5);
      return field.text + " " + kOperators[op] + " " + Literal(in, field.type, op < 2);
    }
    case 1: {
      std::string list = field.text + " IN (" + Literal(in, field.type, true);
      for (int i = in.ConsumeIntegralInRange(0, 3); i > 0; --i) {
        list += ", " + Literal(in, field.type, true);
      }
      return list + ")";
    }
    case 2:
      if (field.type == GeneratedField::Type::kNumber) field = Field(in, true);
      return std::string(in.PickValueInArray(kFunctions)) + "(" + field.text + ", " +
             Quoted(in.ConsumeRandomLengthString(4)) + ")";
    case 3:
      if (field.type == GeneratedField::Type::kNumber) field = Field(in, true);
      return "matches(" + field.text + ", " +
             Quoted(in.ConsumeBool() ? "^[0-9]+$" : "a|b") + ")";
    default:
      return "exists(" + Field(in, true).text + ")";
  }
}

std::string Expression(FuzzedDataProvider& in, int depth) {
  if (depth > 6) return Condition(in);
  switch (in.ConsumeIntegralInRange(0, 4)) {
    case 0:
      return "NOT " + Expression(in, depth + 1);
    case 1:
      return "(" + Expression(in, depth + 1) + " AND " + Expression(in, depth + 1) + ")";
    case 2:
      return Expression(in, depth + 1) + " OR " + Expression(in, depth + 1);
    default:
      return Condition(in);
  }
}

std::string Json(FuzzedDataProvider& in, int depth) {
  switch (depth > 3 ? 4 : in.ConsumeIntegralInRange(0, 6)) {
    case 0: {
      std::string object = "{";
      for (int i = in.ConsumeIntegralInRange(0, 3); i > 0; --i) {
        object += Quoted(Name(in)) + ": " + Json(in, depth + 1) + (i > 1 ? ", " : "");
      }
      return object + "}";
    }
    case 1: {
      std::string array = "[";
      for (int i = in.ConsumeIntegralInRange(0, 3); i > 0; --i) {
        array += Json(in, depth + 1) + (i > 1 ? ", " : "");
      }
      return array + "]";
    }
    case 2:
      return in.ConsumeRandomLengthString(12);  // rarely JSON
    default:
      return Literal(in, GeneratedField::Type::kJson, true);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string text = Expression(in, 0);
  std::vector<std::pair<std::string, std::string>> owned_headers;
  for (int i = in.ConsumeIntegralInRange(0, 3); i > 0; --i) {
    owned_headers.emplace_back(Name(in), in.ConsumeRandomLengthString(6));
  }
  std::vector<std::pair<std::string_view, std::string_view>> headers(
      owned_headers.begin(), owned_headers.end());
  const std::string key = in.ConsumeRandomLengthString(6);
  const std::string topic = in.ConsumeRandomLengthString(6);
  const int32_t partition = in.ConsumeIntegral<int32_t>();
  const int64_t timestamp = in.ConsumeIntegral<int64_t>();
  const std::string value =
      in.ConsumeBool() ? Json(in, 0) : in.ConsumeRemainingBytesAsString();

  absl::StatusOr<ferry::filter::Filter> filter = ferry::filter::Filter::Parse(text);
  if (!filter.ok()) std::abort();  // the generator writes only valid filters
  absl::StatusOr<ferry::filter::Filter> negated =
      ferry::filter::Filter::Parse("NOT (" + text + ")");
  if (!negated.ok()) std::abort();  // the generator stays far below the depth limit

  ferry::filter::MessageView message{.topic = topic,
                                     .partition = partition,
                                     .timestamp_ms = timestamp,
                                     .key = key,
                                     .value = value,
                                     .headers = headers};
  ferry::filter::EvalStats stats;
  const bool matches = filter->Matches(message, &stats);
  if (filter->Matches(message, &stats) != matches) std::abort();
  if (negated->Matches(message, &stats) == matches) std::abort();
  return 0;
}
