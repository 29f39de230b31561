#include "filter/value.h"

#include <re2/re2.h>

#include <algorithm>
#include <optional>

namespace ferry::filter {
namespace {

bool Holds(CompareOp op, int order) {
  switch (op) {
    case CompareOp::kEqual:
      return order == 0;
    case CompareOp::kNotEqual:
      return order != 0;
    case CompareOp::kLess:
      return order < 0;
    case CompareOp::kLessEqual:
      return order <= 0;
    case CompareOp::kGreater:
      return order > 0;
    case CompareOp::kGreaterEqual:
      return order >= 0;
  }
  return false;
}

// A number value as it is, a string value read as a number; else nothing.
std::optional<Number> AsNumber(const Value& value) {
  if (value.type == Value::Type::kNumber) return value.number;
  if (value.type == Value::Type::kString) return ParseNumber(value.string);
  return std::nullopt;
}

bool Compare(const Comparison& comparison, const Value& value) {
  const Literal& literal = comparison.literal;
  switch (literal.type) {
    case Literal::Type::kString:
      if (value.type != Value::Type::kString) return false;
      // string_view compares bytes as unsigned char (char_traits<char>).
      return Holds(comparison.op, value.string.compare(literal.string));
    case Literal::Type::kNumber: {
      std::optional<Number> number = AsNumber(value);
      return number.has_value() &&
             Holds(comparison.op, CompareNumbers(*number, literal.number));
    }
    case Literal::Type::kBool:
      if (value.type != Value::Type::kBool) return false;
      return Holds(comparison.op, value.boolean == literal.boolean ? 0 : 1);
    case Literal::Type::kNull:
      // `= null` and `!= null` both need the field present (missing never
      // gets here); null is equal only to null.
      return Holds(comparison.op, value.type == Value::Type::kNull ? 0 : 1);
  }
  return false;
}

bool Contains(const InList& list, const Value& value) {
  switch (value.type) {
    case Value::Type::kString:
      if (std::binary_search(
              list.strings.begin(), list.strings.end(), value.string,
              [](std::string_view a, std::string_view b) { return a < b; })) {
        return true;
      }
      break;
    case Value::Type::kBool:
      return value.boolean ? list.has_true : list.has_false;
    case Value::Type::kNull:
      return list.has_null;
    case Value::Type::kNumber:
      break;
    case Value::Type::kComposite:
      return false;
  }
  if (list.numbers.empty()) return false;
  std::optional<Number> number = AsNumber(value);
  if (!number.has_value()) return false;
  return std::any_of(
      list.numbers.begin(), list.numbers.end(),
      [&](const Number& candidate) { return CompareNumbers(*number, candidate) == 0; });
}

bool PassesStringTest(const StringTest& test, const Value& value) {
  if (value.type != Value::Type::kString) return false;
  switch (test.kind) {
    case StringTest::Kind::kPrefix:
      return value.string.starts_with(test.operand);
    case StringTest::Kind::kSuffix:
      return value.string.ends_with(test.operand);
    case StringTest::Kind::kContains:
      return value.string.find(test.operand) != std::string_view::npos;
  }
  return false;
}

bool PassesRegex(const RegexTest& test, const Value& value) {
  if (value.type != Value::Type::kString) return false;
  return RE2::PartialMatch(re2::StringPiece(value.string.data(), value.string.size()),
                           *test.regex);
}

}  // namespace

bool Passes(const Test& test, const Value& value) {
  struct Visitor {
    const Value& value;
    bool operator()(const Comparison& c) const { return Compare(c, value); }
    bool operator()(const InList& l) const { return Contains(l, value); }
    bool operator()(const StringTest& s) const { return PassesStringTest(s, value); }
    bool operator()(const RegexTest& r) const { return PassesRegex(r, value); }
    bool operator()(const ExistsTest&) const { return true; }
  };
  return std::visit(Visitor{value}, test);
}

}  // namespace ferry::filter
