#pragma once

// Splits a filter's text into tokens (docs/filters.md "Grammar"). Keywords
// (AND, OR, NOT, IN, TRUE, FALSE, NULL), field roots and function names are
// identifiers here; the parser tells them apart, case-insensitively.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "filter/number.h"

namespace ferry::filter {

enum class TokenKind {
  kIdentifier,  // [A-Za-z_][A-Za-z0-9_-]*
  kString,      // "..." or '...'; `text` holds the bytes after unescaping
  kNumber,
  kLeftParen,
  kRightParen,
  kLeftBracket,
  kRightBracket,
  kComma,
  kDot,
  kEqual,
  kNotEqual,
  kLess,
  kLessEqual,
  kGreater,
  kGreaterEqual,
  kEnd,  // always the last token, at the end of the text
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  size_t offset = 0;             // byte offset of the token's first character
  std::string_view source = {};  // the token as written (empty for kEnd)
  std::string text = {};         // kString only
  Number number = {};            // kNumber only
};

// The tokens of `text`, ending with kEnd; INVALID_ARGUMENT (with the column)
// on an unexpected character, an unterminated string, a bad escape or a
// number out of range.
absl::StatusOr<std::vector<Token>> Lex(std::string_view text);

// The 1-based column of a byte offset, counted in UTF-8 characters so that it
// matches what a terminal shows under the filter.
size_t ColumnAt(std::string_view text, size_t offset);

// INVALID_ARGUMENT "filter: column N: <message>".
absl::Status ErrorAt(std::string_view text, size_t offset, std::string_view message);

// How an error message names a token: end of input, 'AND', string "abc", ...
std::string Describe(const Token& token);

}  // namespace ferry::filter
