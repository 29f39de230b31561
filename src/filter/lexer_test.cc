#include "filter/lexer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ferry::filter {
namespace {

std::vector<TokenKind> Kinds(std::string_view text) {
  absl::StatusOr<std::vector<Token>> tokens = Lex(text);
  EXPECT_TRUE(tokens.ok()) << tokens.status();
  std::vector<TokenKind> kinds;
  for (const Token& token : *tokens) kinds.push_back(token.kind);
  return kinds;
}

std::string LexError(std::string_view text) {
  absl::StatusOr<std::vector<Token>> tokens = Lex(text);
  EXPECT_FALSE(tokens.ok());
  return std::string(tokens.status().message());
}

std::string StringToken(std::string_view text) {
  absl::StatusOr<std::vector<Token>> tokens = Lex(text);
  EXPECT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(tokens->front().kind, TokenKind::kString);
  return tokens->front().text;
}

TEST(FilterLexer, SplitsOperatorsNamesAndLiterals) {
  using K = TokenKind;
  EXPECT_EQ(
      Kinds(R"(headers.content-type!="a"AND(x<=-1.5e3,y>=2)[0]< >)"),
      std::vector<K>({K::kIdentifier,   K::kDot,          K::kIdentifier, K::kNotEqual,
                      K::kString,       K::kIdentifier,   K::kLeftParen,  K::kIdentifier,
                      K::kLessEqual,    K::kNumber,       K::kComma,      K::kIdentifier,
                      K::kGreaterEqual, K::kNumber,       K::kRightParen, K::kLeftBracket,
                      K::kNumber,       K::kRightBracket, K::kLess,       K::kGreater,
                      K::kEnd}));
  EXPECT_EQ(Kinds(" \t\n"), std::vector<K>({K::kEnd}));
}

TEST(FilterLexer, ReadsIntegersExactlyAndOtherNumbersAsDoubles) {
  absl::StatusOr<std::vector<Token>> tokens =
      Lex("-9223372036854775808 2.5 1e3 99999999999999999999");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_TRUE((*tokens)[0].number.is_integer);
  EXPECT_EQ((*tokens)[0].number.integer, INT64_MIN);
  EXPECT_FALSE((*tokens)[1].number.is_integer);
  EXPECT_EQ((*tokens)[1].number.real, 2.5);
  EXPECT_EQ((*tokens)[2].number.real, 1000);
  EXPECT_FALSE((*tokens)[3].number.is_integer);
  EXPECT_EQ((*tokens)[3].number.real, 1e20);
}

TEST(FilterLexer, UnescapesStringsInEitherQuote) {
  EXPECT_EQ(StringToken(R"("a\"b\\c\/d\n\t")"), "a\"b\\c/d\n\t");
  EXPECT_EQ(StringToken(R"('it\'s "x"')"), "it's \"x\"");
  EXPECT_EQ(StringToken(R"("\u00e9\u20ac")"), "\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(StringToken(R"("\ud83d\ude00")"), "\xf0\x9f\x98\x80");  // a surrogate pair
}

TEST(FilterLexer, RejectsBrokenTokensAtTheirColumn) {
  EXPECT_EQ(LexError(R"(key = "abc)"),
            "filter: column 7: unterminated string (missing \")");
  EXPECT_EQ(
      LexError(R"(key = "a\d")"),
      R"(filter: column 9: invalid escape '\d' (a backslash is written '\\', also in )"
      R"(regular expressions: "\\d+"))");
  EXPECT_EQ(LexError(R"(key = "\u12")"),
            "filter: column 8: expected 4 hex digits after '\\u'");
  EXPECT_EQ(LexError(R"(key = "\ud800x")"),
            "filter: column 8: unpaired UTF-16 surrogate in '\\u' escape");
  EXPECT_EQ(LexError("key == 1"), "filter: column 5: unknown operator '==' (use =)");
  EXPECT_EQ(LexError("key <> 1"), "filter: column 5: unknown operator '<>' (use !=)");
  EXPECT_EQ(LexError("key = @"), "filter: column 7: unexpected character '@'");
  EXPECT_EQ(LexError("key = -x"), "filter: column 7: expected a digit after '-'");
  EXPECT_EQ(LexError("partition > 1e999"), "filter: column 13: number out of range");
}

TEST(FilterLexer, CountsColumnsInCharactersNotBytes) {
  EXPECT_EQ(LexError("key = \"é\" @"), "filter: column 11: unexpected character '@'");
  EXPECT_EQ(LexError("key = \x01"), "filter: column 7: unexpected character '\\x01'");
}

}  // namespace
}  // namespace ferry::filter
