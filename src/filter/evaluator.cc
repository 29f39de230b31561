#include "filter/evaluator.h"

#include "filter/json_reader.h"
#include "filter/value.h"

namespace ferry::filter {
namespace {

Value StringValue(std::string_view text) {
  return Value{.type = Value::Type::kString, .string = text};
}

Value IntegerValue(int64_t integer) {
  return Value{.type = Value::Type::kNumber,
               .number = {.is_integer = true, .integer = integer}};
}

// One message's evaluation; the JSON value is parsed on the first json.*
// condition that is reached, if any.
class Evaluation {
 public:
  Evaluation(const MessageView& message, EvalStats* stats)
      : message_(message), stats_(stats), json_(message.value) {}

  bool Matches(const Node& node) {
    switch (node.kind) {
      case Node::Kind::kAnd:
        for (const Node& child : node.children) {
          if (!Matches(child)) return false;
        }
        return true;
      case Node::Kind::kOr:
        for (const Node& child : node.children) {
          if (Matches(child)) return true;
        }
        return false;
      case Node::Kind::kNot:
        return !Matches(node.children.front());
      case Node::Kind::kCondition:
        return Holds(node.condition);
    }
    return false;
  }

 private:
  bool Holds(const Condition& condition) {
    const Field& field = condition.field;
    switch (field.kind) {
      case FieldKind::kKey:
        return Passes(condition.test, StringValue(message_.key));
      case FieldKind::kTopic:
        return Passes(condition.test, StringValue(message_.topic));
      case FieldKind::kPartition:
        return Passes(condition.test, IntegerValue(message_.partition));
      case FieldKind::kTimestamp:
        return Passes(condition.test, IntegerValue(message_.timestamp_ms));
      case FieldKind::kHeader:
        // A header may repeat: the condition holds if it holds for any of them.
        for (const auto& [name, value] : message_.headers) {
          if (name == field.header && Passes(condition.test, StringValue(value)))
            return true;
        }
        return false;
      case FieldKind::kJson:
        return HoldsForJson(condition);
    }
    return false;
  }

  bool HoldsForJson(const Condition& condition) {
    Value value;
    switch (json_.Find(condition.field.path, value)) {
      case JsonReader::Result::kFound:
        return Passes(condition.test, value);
      case JsonReader::Result::kMissing:
        if (stats_ != nullptr && !std::holds_alternative<ExistsTest>(condition.test)) {
          ++stats_->json_fields_missing;
        }
        return false;
      case JsonReader::Result::kNotJson:
        if (stats_ != nullptr && !counted_not_json_) ++stats_->values_not_json;
        counted_not_json_ = true;
        return false;
    }
    return false;
  }

  const MessageView& message_;
  EvalStats* stats_;
  JsonReader json_;
  bool counted_not_json_ = false;
};

}  // namespace

bool Evaluate(const Node& root, const MessageView& message, EvalStats* stats) {
  return Evaluation(message, stats).Matches(root);
}

}  // namespace ferry::filter
