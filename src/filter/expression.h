#pragma once

// The parsed form of a filter: a tree of AND / OR / NOT over conditions, each
// condition one test (comparison, IN, string function, regex, exists) on one
// field. Built by the parser, read by the evaluator; immutable in between.
//
// Depth is bounded by the parser (kMaxFilterDepth): AND and OR are n-ary, so
// long chains `a AND b AND c ...` stay one level deep and only parentheses
// and NOT nest. Recursion over the tree (evaluation, destruction) is bounded
// by that depth.

#include <cstddef>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "filter/number.h"

namespace re2 {
class RE2;
}

namespace ferry::filter {

enum class FieldKind { kKey, kTopic, kPartition, kTimestamp, kHeader, kJson };

// One step of a JSON path: `.name`, `["name"]` or `[index]`.
struct JsonStep {
  bool is_index = false;
  std::string name = {};
  size_t index = 0;
};

struct Field {
  FieldKind kind = FieldKind::kKey;
  std::string header = {};          // kHeader: the header's name
  std::vector<JsonStep> path = {};  // kJson: at least one step
};

struct Literal {
  enum class Type { kString, kNumber, kBool, kNull };
  Type type = Type::kNull;
  std::string string = {};
  Number number = {};
  bool boolean = false;
};

enum class CompareOp { kEqual, kNotEqual, kLess, kLessEqual, kGreater, kGreaterEqual };

struct Comparison {
  CompareOp op = CompareOp::kEqual;
  Literal literal = {};
};

// `IN (...)`, split by type so a lookup does not walk literals that cannot
// be equal to the value.
struct InList {
  std::vector<std::string> strings = {};  // sorted, for binary search
  std::vector<Number> numbers = {};
  bool has_true = false;
  bool has_false = false;
  bool has_null = false;
};

struct StringTest {
  enum class Kind { kPrefix, kSuffix, kContains };
  Kind kind = Kind::kPrefix;
  std::string operand = {};
};

// RE2 objects are safe to match from many threads at once.
struct RegexTest {
  std::shared_ptr<const re2::RE2> regex = {};
};

struct ExistsTest {};

using Test = std::variant<Comparison, InList, StringTest, RegexTest, ExistsTest>;

struct Condition {
  Field field = {};
  Test test = {};
};

struct Node {
  enum class Kind { kAnd, kOr, kNot, kCondition };
  Kind kind = Kind::kCondition;
  std::vector<Node> children = {};  // kAnd, kOr: two or more; kNot: one
  Condition condition = {};         // kCondition only
  bool reads_json = false;          // some condition at or below reads json.*
};

}  // namespace ferry::filter
