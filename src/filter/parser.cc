#include "filter/parser.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "filter/lexer.h"

namespace ferry::filter {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) {
             return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
           };
           return lower(x) == lower(y);
         });
}

enum class FieldType { kString, kNumber, kJson };

FieldType TypeOf(const Field& field) {
  switch (field.kind) {
    case FieldKind::kPartition:
    case FieldKind::kTimestamp:
      return FieldType::kNumber;
    case FieldKind::kJson:
      return FieldType::kJson;
    default:
      return FieldType::kString;
  }
}

struct Function {
  std::string_view name;
  enum class Kind { kStringTest, kMatches, kExists } kind;
  StringTest::Kind string_test = StringTest::Kind::kPrefix;
};

constexpr Function kFunctions[] = {
    {"hasPrefix", Function::Kind::kStringTest, StringTest::Kind::kPrefix},
    {"hasSuffix", Function::Kind::kStringTest, StringTest::Kind::kSuffix},
    {"contains", Function::Kind::kStringTest, StringTest::Kind::kContains},
    {"matches", Function::Kind::kMatches},
    {"exists", Function::Kind::kExists},
};

constexpr std::pair<TokenKind, CompareOp> kOperators[] = {
    {TokenKind::kEqual, CompareOp::kEqual},
    {TokenKind::kNotEqual, CompareOp::kNotEqual},
    {TokenKind::kLess, CompareOp::kLess},
    {TokenKind::kLessEqual, CompareOp::kLessEqual},
    {TokenKind::kGreater, CompareOp::kGreater},
    {TokenKind::kGreaterEqual, CompareOp::kGreaterEqual},
};

// A parsed field and where it was written, for error messages.
struct FieldAt {
  Field field;
  std::string_view source;
};

class Parser {
 public:
  Parser(std::string_view text, std::vector<Token> tokens)
      : text_(text), tokens_(std::move(tokens)) {}

  absl::StatusOr<std::shared_ptr<const Node>> Run() {
    if (Peek().kind == TokenKind::kEnd) return nullptr;
    absl::StatusOr<Node> root = ParseOr(0);
    if (!root.ok()) return root.status();
    if (Peek().kind != TokenKind::kEnd) return Expected("AND, OR or end of input");
    return std::make_shared<const Node>(*std::move(root));
  }

 private:
  const Token& Peek() const { return tokens_[pos_]; }
  const Token& Next() { return tokens_[pos_ == tokens_.size() - 1 ? pos_ : pos_++]; }

  bool AtKeyword(std::string_view keyword) const {
    return Peek().kind == TokenKind::kIdentifier &&
           EqualsIgnoreCase(Peek().source, keyword);
  }

  absl::Status Expected(std::string_view what) const {
    return ErrorAt(text_, Peek().offset,
                   fmt::format("expected {}, got {}", what, Describe(Peek())));
  }

  absl::StatusOr<Node> ParseOr(int depth) {
    return ParseChain(depth, "OR", Node::Kind::kOr);
  }

  absl::StatusOr<Node> ParseAnd(int depth) {
    return ParseChain(depth, "AND", Node::Kind::kAnd);
  }

  // `operand { keyword operand }` as one n-ary node, so that long chains do
  // not deepen the tree.
  absl::StatusOr<Node> ParseChain(int depth, std::string_view keyword, Node::Kind kind) {
    std::vector<Node> operands;
    while (true) {
      absl::StatusOr<Node> operand =
          kind == Node::Kind::kOr ? ParseAnd(depth) : ParseUnary(depth);
      if (!operand.ok()) return operand.status();
      operands.push_back(*std::move(operand));
      if (!AtKeyword(keyword)) break;
      Next();
    }
    if (operands.size() == 1) return std::move(operands.front());
    Node node{.kind = kind};
    // Conditions that only look at the key, headers and metadata go first:
    // when they decide, the value is never parsed as JSON.
    std::stable_partition(operands.begin(), operands.end(),
                          [](const Node& n) { return !n.reads_json; });
    node.reads_json = operands.back().reads_json;
    node.children = std::move(operands);
    return node;
  }

  absl::StatusOr<Node> ParseUnary(int depth) {
    if (!AtKeyword("NOT")) return ParsePrimary(depth);
    const Token& keyword = Next();
    if (depth + 1 > kMaxFilterDepth) return TooDeep(keyword);
    absl::StatusOr<Node> operand = ParseUnary(depth + 1);
    if (!operand.ok()) return operand.status();
    Node node{.kind = Node::Kind::kNot, .reads_json = operand->reads_json};
    node.children.push_back(*std::move(operand));
    return node;
  }

  absl::Status TooDeep(const Token& token) const {
    return ErrorAt(text_, token.offset,
                   fmt::format("nested deeper than {} levels of parentheses and NOT",
                               kMaxFilterDepth));
  }

  absl::StatusOr<Node> ParsePrimary(int depth) {
    const Token& token = Peek();
    if (token.kind == TokenKind::kLeftParen) {
      Next();
      if (depth + 1 > kMaxFilterDepth) return TooDeep(token);
      absl::StatusOr<Node> inner = ParseOr(depth + 1);
      if (!inner.ok()) return inner.status();
      if (Peek().kind != TokenKind::kRightParen) {
        return Expected(fmt::format("')' to close the '(' at column {}",
                                    ColumnAt(text_, token.offset)));
      }
      Next();
      return inner;
    }
    if (token.kind != TokenKind::kIdentifier || AtKeyword("AND") || AtKeyword("OR") ||
        AtKeyword("IN") || IsLiteral(token)) {
      return Expected("a field, a function, NOT or '('");
    }
    if (tokens_[pos_ + 1].kind == TokenKind::kLeftParen) return ParseFunction();
    return ParseCondition();
  }

  static bool IsLiteral(const Token& token) {
    return token.kind == TokenKind::kIdentifier &&
           (EqualsIgnoreCase(token.source, "TRUE") ||
            EqualsIgnoreCase(token.source, "FALSE") ||
            EqualsIgnoreCase(token.source, "NULL"));
  }

  absl::StatusOr<FieldAt> ParseField() {
    const Token& root = Next();
    FieldAt at;
    Field& field = at.field;
    if (EqualsIgnoreCase(root.source, "key")) {
      field.kind = FieldKind::kKey;
    } else if (EqualsIgnoreCase(root.source, "topic")) {
      field.kind = FieldKind::kTopic;
    } else if (EqualsIgnoreCase(root.source, "partition")) {
      field.kind = FieldKind::kPartition;
    } else if (EqualsIgnoreCase(root.source, "timestamp")) {
      field.kind = FieldKind::kTimestamp;
    } else if (EqualsIgnoreCase(root.source, "headers")) {
      field.kind = FieldKind::kHeader;
      absl::Status name = ParseHeaderName(field.header);
      if (!name.ok()) return name;
    } else if (EqualsIgnoreCase(root.source, "json")) {
      field.kind = FieldKind::kJson;
      absl::Status path = ParseJsonPath(field.path);
      if (!path.ok()) return path;
    } else {
      return ErrorAt(
          text_, root.offset,
          fmt::format("unknown field '{}' (fields: key, topic, partition, timestamp, "
                      "headers.NAME, json.PATH)",
                      root.source));
    }
    const Token& last = tokens_[pos_ - 1];
    at.source = text_.substr(root.offset, last.offset + last.source.size() - root.offset);
    return at;
  }

  absl::Status ParseHeaderName(std::string& name) {
    if (Peek().kind == TokenKind::kDot) {
      Next();
      if (Peek().kind != TokenKind::kIdentifier)
        return Expected("a header name after 'headers.'");
      name = std::string(Next().source);
      return absl::OkStatus();
    }
    if (Peek().kind == TokenKind::kLeftBracket) {
      Next();
      if (Peek().kind != TokenKind::kString)
        return Expected("a quoted header name after '['");
      name = Next().text;
      if (Peek().kind != TokenKind::kRightBracket) return Expected("']'");
      Next();
      return absl::OkStatus();
    }
    return Expected("'.' or '[' after headers");
  }

  absl::Status ParseJsonPath(std::vector<JsonStep>& path) {
    while (Peek().kind == TokenKind::kDot || Peek().kind == TokenKind::kLeftBracket) {
      if (Next().kind == TokenKind::kDot) {
        if (Peek().kind != TokenKind::kIdentifier)
          return Expected("a field name after '.'");
        path.push_back({.name = std::string(Next().source)});
        continue;
      }
      const Token& inside = Peek();
      if (inside.kind == TokenKind::kString) {
        path.push_back({.name = inside.text});
      } else if (inside.kind == TokenKind::kNumber && inside.number.is_integer &&
                 inside.number.integer >= 0) {
        path.push_back(
            {.is_index = true, .index = static_cast<size_t>(inside.number.integer)});
      } else {
        return Expected("an array index (0, 1, ...) or a quoted field name after '['");
      }
      Next();
      if (Peek().kind != TokenKind::kRightBracket) return Expected("']'");
      Next();
    }
    if (path.empty()) return Expected("'.' or '[' after json");
    return absl::OkStatus();
  }

  absl::StatusOr<Node> ParseCondition() {
    absl::StatusOr<FieldAt> field = ParseField();
    if (!field.ok()) return field.status();
    Node node{.kind = Node::Kind::kCondition,
              .reads_json = field->field.kind == FieldKind::kJson};
    node.condition.field = std::move(field->field);
    if (AtKeyword("IN")) {
      Next();
      absl::StatusOr<InList> list = ParseInList(node.condition.field, field->source);
      if (!list.ok()) return list.status();
      node.condition.test = *std::move(list);
      return node;
    }
    const CompareOp* op = nullptr;
    for (const auto& [kind, compare] : kOperators) {
      if (Peek().kind == kind) op = &compare;
    }
    if (op == nullptr) {
      return Expected(
          fmt::format("an operator (= != < <= > >= IN) after {}", field->source));
    }
    Next();
    absl::StatusOr<Literal> literal =
        ParseLiteral(node.condition.field, field->source, *op);
    if (!literal.ok()) return literal.status();
    node.condition.test = Comparison{.op = *op, .literal = *std::move(literal)};
    return node;
  }

  // A literal that can be compared with `field` by `op`.
  absl::StatusOr<Literal> ParseLiteral(const Field& field, std::string_view field_source,
                                       CompareOp op) {
    const Token& after = tokens_[pos_ - 1];
    const Token& token = Peek();
    Literal literal;
    if (token.kind == TokenKind::kString) {
      literal = {.type = Literal::Type::kString, .string = token.text};
    } else if (token.kind == TokenKind::kNumber) {
      literal = {.type = Literal::Type::kNumber, .number = token.number};
    } else if (IsLiteral(token) && !EqualsIgnoreCase(token.source, "NULL")) {
      literal = {.type = Literal::Type::kBool,
                 .boolean = EqualsIgnoreCase(token.source, "TRUE")};
    } else if (IsLiteral(token)) {
      literal = {.type = Literal::Type::kNull};
    } else {
      return Expected(fmt::format("a value after '{}'", after.source));
    }
    const bool scalar =
        literal.type == Literal::Type::kString || literal.type == Literal::Type::kNumber;
    switch (TypeOf(field)) {
      case FieldType::kNumber:
        if (literal.type != Literal::Type::kNumber) {
          return Expected(fmt::format("a number to compare {} with", field_source));
        }
        break;
      case FieldType::kString:
        if (!scalar) {
          return Expected(
              fmt::format("a string or a number to compare {} with", field_source));
        }
        break;
      case FieldType::kJson:
        if (!scalar && op != CompareOp::kEqual && op != CompareOp::kNotEqual) {
          return Expected(fmt::format("a string or a number after '{}'", after.source));
        }
        break;
    }
    Next();
    return literal;
  }

  absl::StatusOr<InList> ParseInList(const Field& field, std::string_view field_source) {
    if (Peek().kind != TokenKind::kLeftParen) return Expected("'(' after IN");
    Next();
    InList list;
    while (true) {
      absl::StatusOr<Literal> literal =
          ParseLiteral(field, field_source, CompareOp::kEqual);
      if (!literal.ok()) return literal.status();
      switch (literal->type) {
        case Literal::Type::kString:
          list.strings.push_back(std::move(literal->string));
          break;
        case Literal::Type::kNumber:
          list.numbers.push_back(literal->number);
          break;
        case Literal::Type::kBool:
          (literal->boolean ? list.has_true : list.has_false) = true;
          break;
        case Literal::Type::kNull:
          list.has_null = true;
          break;
      }
      if (Peek().kind == TokenKind::kRightParen) break;
      if (Peek().kind != TokenKind::kComma) return Expected("',' or ')' in IN list");
      Next();
    }
    Next();
    std::sort(list.strings.begin(), list.strings.end());
    return list;
  }

  absl::StatusOr<Node> ParseFunction() {
    const Token& name = Next();
    const Function* function = nullptr;
    for (const Function& candidate : kFunctions) {
      if (EqualsIgnoreCase(name.source, candidate.name)) function = &candidate;
    }
    if (function == nullptr) {
      return ErrorAt(
          text_, name.offset,
          fmt::format("unknown function '{}' (functions: hasPrefix, hasSuffix, "
                      "contains, matches, exists)",
                      name.source));
    }
    Next();  // '('
    const Token& first = Peek();
    if (first.kind != TokenKind::kIdentifier || IsLiteral(first)) {
      return Expected(fmt::format("a field as the first argument of {}", function->name));
    }
    absl::StatusOr<FieldAt> field = ParseField();
    if (!field.ok()) return field.status();
    Node node{.kind = Node::Kind::kCondition,
              .reads_json = field->field.kind == FieldKind::kJson};
    if (function->kind == Function::Kind::kExists) {
      if (field->field.kind != FieldKind::kHeader &&
          field->field.kind != FieldKind::kJson) {
        return ErrorAt(
            text_, first.offset,
            fmt::format("exists() takes headers.NAME or json.PATH, not {} (which "
                        "every message has)",
                        field->source));
      }
      node.condition.test = ExistsTest{};
    } else {
      if (TypeOf(field->field) == FieldType::kNumber) {
        return ErrorAt(text_, first.offset,
                       fmt::format("{} takes a string field, and {} is a number",
                                   function->name, field->source));
      }
      if (Peek().kind != TokenKind::kComma) {
        return Expected(
            fmt::format("',' after the first argument of {}", function->name));
      }
      Next();
      if (Peek().kind != TokenKind::kString) {
        return Expected(
            fmt::format("a string as the second argument of {}", function->name));
      }
      const Token& operand = Next();
      if (function->kind == Function::Kind::kMatches) {
        absl::StatusOr<RegexTest> regex = CompileRegex(operand);
        if (!regex.ok()) return regex.status();
        node.condition.test = *std::move(regex);
      } else {
        node.condition.test =
            StringTest{.kind = function->string_test, .operand = operand.text};
      }
    }
    if (Peek().kind != TokenKind::kRightParen) {
      return Expected(fmt::format("')' after the arguments of {}", function->name));
    }
    Next();
    node.condition.field = std::move(field->field);
    return node;
  }

  absl::StatusOr<RegexTest> CompileRegex(const Token& pattern) const {
    RE2::Options options;
    options.set_log_errors(false);
    auto regex = std::make_shared<const RE2>(
        re2::StringPiece(pattern.text.data(), pattern.text.size()), options);
    if (!regex->ok()) {
      return ErrorAt(text_, pattern.offset,
                     fmt::format("invalid regular expression: {}", regex->error()));
    }
    return RegexTest{.regex = std::move(regex)};
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const Node>> ParseExpression(std::string_view text) {
  if (text.size() > kMaxFilterBytes) {
    return absl::InvalidArgumentError(
        fmt::format("filter: {} bytes long, more than the limit of {}", text.size(),
                    kMaxFilterBytes));
  }
  absl::StatusOr<std::vector<Token>> tokens = Lex(text);
  if (!tokens.ok()) return tokens.status();
  return Parser(text, *std::move(tokens)).Run();
}

}  // namespace ferry::filter
