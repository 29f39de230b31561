#include "filter/parser.h"

#include <gtest/gtest.h>

#include <string>

namespace ferry::filter {
namespace {

std::string ParseError(std::string_view text) {
  absl::StatusOr<std::shared_ptr<const Node>> root = ParseExpression(text);
  EXPECT_FALSE(root.ok()) << text;
  EXPECT_EQ(root.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(root.status().message());
}

TEST(FilterParser, NamesTheColumnAndWhatWasExpected) {
  EXPECT_EQ(ParseError(R"(key IN ("a", "b")"),
            "filter: column 17: expected ',' or ')' in IN list, got end of input");
  EXPECT_EQ(ParseError(R"(key IN "a")"),
            "filter: column 8: expected '(' after IN, got string \"a\"");
  EXPECT_EQ(ParseError("key IN ()"),
            "filter: column 9: expected a value after '(', got ')'");
  EXPECT_EQ(
      ParseError(R"(key = "a" AND)"),
      "filter: column 14: expected a field, a function, NOT or '(', got end of input");
  EXPECT_EQ(ParseError(R"(key = "a" "b")"),
            "filter: column 11: expected AND, OR or end of input, got string \"b\"");
  EXPECT_EQ(
      ParseError(R"((key = "a")"),
      "filter: column 11: expected ')' to close the '(' at column 1, got end of input");
  EXPECT_EQ(
      ParseError(R"(key "a")"),
      "filter: column 5: expected an operator (= != < <= > >= IN) after key, got string "
      "\"a\"");
  EXPECT_EQ(ParseError("key ="),
            "filter: column 6: expected a value after '=', got end of input");
  EXPECT_EQ(ParseError("= 1"),
            "filter: column 1: expected a field, a function, NOT or '(', got '='");
}

TEST(FilterParser, RejectsUnknownFieldsAndFunctions) {
  EXPECT_EQ(ParseError("value = 1"),
            "filter: column 1: unknown field 'value' (fields: key, topic, partition, "
            "timestamp, "
            "headers.NAME, json.PATH)");
  EXPECT_EQ(
      ParseError(R"(startsWith(key, "a"))"),
      "filter: column 1: unknown function 'startsWith' (functions: hasPrefix, hasSuffix, "
      "contains, matches, exists)");
}

TEST(FilterParser, ReadsHeaderAndJsonPaths) {
  EXPECT_EQ(ParseError("headers = 1"),
            "filter: column 9: expected '.' or '[' after headers, got '='");
  EXPECT_EQ(ParseError("headers[x] = 1"),
            "filter: column 9: expected a quoted header name after '[', got 'x'");
  EXPECT_EQ(ParseError(R"(headers["a" = 1)"), "filter: column 13: expected ']', got '='");
  EXPECT_EQ(ParseError("json = 1"),
            "filter: column 6: expected '.' or '[' after json, got '='");
  EXPECT_EQ(ParseError("json.a[-1] = 1"),
            "filter: column 8: expected an array index (0, 1, ...) or a quoted field "
            "name after "
            "'[', got number -1");
  EXPECT_EQ(ParseError("json.a[1.5] = 1"),
            "filter: column 8: expected an array index (0, 1, ...) or a quoted field "
            "name after "
            "'[', got number 1.5");
  EXPECT_EQ(ParseError("json.a. = 1"),
            "filter: column 9: expected a field name after '.', got '='");

  absl::StatusOr<std::shared_ptr<const Node>> root =
      ParseExpression(R"(json.a["b.c"][2].d = 1)");
  ASSERT_TRUE(root.ok()) << root.status();
  const std::vector<JsonStep>& path = (*root)->condition.field.path;
  ASSERT_EQ(path.size(), 4u);
  EXPECT_EQ(path[0].name, "a");
  EXPECT_EQ(path[1].name, "b.c");
  EXPECT_TRUE(path[2].is_index);
  EXPECT_EQ(path[2].index, 2u);
  EXPECT_EQ(path[3].name, "d");
}

TEST(FilterParser, ChecksLiteralsAgainstTheFieldsType) {
  EXPECT_EQ(
      ParseError(R"(partition = "3")"),
      "filter: column 13: expected a number to compare partition with, got string \"3\"");
  EXPECT_EQ(
      ParseError("headers.x = true"),
      "filter: column 13: expected a string or a number to compare headers.x with, got "
      "'true'");
  EXPECT_EQ(
      ParseError("key IN (\"a\", null)"),
      "filter: column 14: expected a string or a number to compare key with, got 'null'");
  EXPECT_EQ(ParseError("json.a < null"),
            "filter: column 10: expected a string or a number after '<', got 'null'");
  EXPECT_EQ(
      ParseError(R"(hasPrefix(timestamp, "1"))"),
      "filter: column 11: hasPrefix takes a string field, and timestamp is a number");
  EXPECT_EQ(
      ParseError("exists(key)"),
      "filter: column 8: exists() takes headers.NAME or json.PATH, not key (which every "
      "message has)");
  EXPECT_EQ(
      ParseError(R"(contains(key "a"))"),
      "filter: column 14: expected ',' after the first argument of contains, got string "
      "\"a\"");
  EXPECT_EQ(
      ParseError("contains(key, 1)"),
      "filter: column 15: expected a string as the second argument of contains, got "
      "number 1");
  EXPECT_EQ(
      ParseError(R"(contains("a", key))"),
      "filter: column 10: expected a field as the first argument of contains, got string "
      "\"a\"");
  EXPECT_EQ(ParseError(R"(exists(headers.a, "b"))"),
            "filter: column 17: expected ')' after the arguments of exists, got ','");
}

TEST(FilterParser, CompilesRegularExpressionsOnce) {
  EXPECT_EQ(ParseError(R"(matches(key, "a(b"))"),
            "filter: column 14: invalid regular expression: missing ): a(b");
}

TEST(FilterParser, KeywordsAndNamesIgnoreCase) {
  EXPECT_TRUE(
      ParseExpression(R"(KEY = "a" and not Headers.x in ("b") Or HASPREFIX(topic, "t"))")
          .ok());
}

TEST(FilterParser, AndOrChainsStayFlatAndConditionsWithoutJsonGoFirst) {
  absl::StatusOr<std::shared_ptr<const Node>> root =
      ParseExpression(R"(json.a = 1 AND key = "k" AND json.b = 2 AND partition = 1)");
  ASSERT_TRUE(root.ok()) << root.status();
  const Node& node = **root;
  ASSERT_EQ(node.kind, Node::Kind::kAnd);
  ASSERT_EQ(node.children.size(), 4u);
  EXPECT_EQ(node.children[0].condition.field.kind, FieldKind::kKey);
  EXPECT_EQ(node.children[1].condition.field.kind, FieldKind::kPartition);
  EXPECT_EQ(node.children[2].condition.field.path[0].name, "a");
  EXPECT_EQ(node.children[3].condition.field.path[0].name, "b");
  EXPECT_TRUE(node.reads_json);
}

TEST(FilterParser, EmptyTextIsTheFilterThatMatchesEverything) {
  absl::StatusOr<std::shared_ptr<const Node>> root = ParseExpression(" \n\t");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(*root, nullptr);
}

TEST(FilterParser, BoundsNestingAndLength) {
  std::string deep_parentheses = std::string(kMaxFilterDepth, '(') + "key = \"a\"" +
                                 std::string(kMaxFilterDepth, ')');
  EXPECT_TRUE(ParseExpression(deep_parentheses).ok());
  EXPECT_EQ(ParseError("(" + deep_parentheses + ")"),
            "filter: column 101: nested deeper than 100 levels of parentheses and NOT");

  std::string deep_not;
  for (int i = 0; i <= kMaxFilterDepth; ++i) deep_not += "NOT ";
  EXPECT_EQ(ParseError(deep_not + "key = \"a\""),
            "filter: column 401: nested deeper than 100 levels of parentheses and NOT");

  // A long chain is wide, not deep.
  std::string chain = "key = \"a\"";
  while (chain.size() < kMaxFilterBytes - 20) chain += " OR key = \"a\"";
  EXPECT_TRUE(ParseExpression(chain).ok());
  EXPECT_EQ(ParseError(std::string(kMaxFilterBytes + 1, ' ')),
            "filter: 65537 bytes long, more than the limit of 65536");
}

}  // namespace
}  // namespace ferry::filter
