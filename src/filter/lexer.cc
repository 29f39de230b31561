#include "filter/lexer.h"

#include <fmt/format.h>

#include <array>
#include <utility>

namespace ferry::filter {
namespace {

bool IsIdentifierStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

// '-' is allowed inside names so that headers like content-type need no
// quoting; the language has no subtraction it could be confused with.
bool IsIdentifierPart(char c) {
  return IsIdentifierStart(c) || (c >= '0' && c <= '9') || c == '-';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t code_point, std::string& out) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  absl::StatusOr<std::vector<Token>> Run() {
    std::vector<Token> tokens;
    while (true) {
      while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
      if (pos_ == text_.size()) break;
      absl::StatusOr<Token> token = Next();
      if (!token.ok()) return token.status();
      tokens.push_back(*std::move(token));
    }
    tokens.push_back(Token{.kind = TokenKind::kEnd, .offset = text_.size()});
    return tokens;
  }

 private:
  static bool IsSpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  }

  Token Make(TokenKind kind, size_t start) {
    return Token{
        .kind = kind, .offset = start, .source = text_.substr(start, pos_ - start)};
  }

  absl::StatusOr<Token> Next() {
    const size_t start = pos_;
    const char c = text_[pos_];
    if (IsIdentifierStart(c)) {
      while (pos_ < text_.size() && IsIdentifierPart(text_[pos_])) ++pos_;
      return Make(TokenKind::kIdentifier, start);
    }
    if (c == '"' || c == '\'') return String(c);
    if (c == '-' || (c >= '0' && c <= '9')) return NumberToken();
    // Operators users bring from other languages get a pointed error.
    for (auto [wrong, right] : {std::pair{"==", "="}, std::pair{"<>", "!="}}) {
      if (text_.substr(pos_, 2) == wrong) {
        return ErrorAt(text_, start,
                       fmt::format("unknown operator '{}' (use {})", wrong, right));
      }
    }
    static constexpr std::array<std::pair<std::string_view, TokenKind>, 12> kSymbols = {{
        {"!=", TokenKind::kNotEqual},
        {"<=", TokenKind::kLessEqual},
        {">=", TokenKind::kGreaterEqual},
        {"(", TokenKind::kLeftParen},
        {")", TokenKind::kRightParen},
        {"[", TokenKind::kLeftBracket},
        {"]", TokenKind::kRightBracket},
        {",", TokenKind::kComma},
        {".", TokenKind::kDot},
        {"=", TokenKind::kEqual},
        {"<", TokenKind::kLess},
        {">", TokenKind::kGreater},
    }};
    for (const auto& [symbol, kind] : kSymbols) {
      if (text_.substr(pos_, symbol.size()) != symbol) continue;
      pos_ += symbol.size();
      return Make(kind, start);
    }
    return ErrorAt(text_, start, fmt::format("unexpected character '{}'", Printable(c)));
  }

  static std::string Printable(char c) {
    unsigned char byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7F) return std::string(1, c);
    return fmt::format("\\x{:02x}", byte);
  }

  absl::StatusOr<Token> NumberToken() {
    const size_t start = pos_;
    size_t length = NumberPrefixLength(text_.substr(pos_));
    if (length == 0) return ErrorAt(text_, start, "expected a digit after '-'");
    pos_ += length;
    std::optional<Number> number = ParseNumber(text_.substr(start, length));
    if (!number.has_value()) return ErrorAt(text_, start, "number out of range");
    Token token = Make(TokenKind::kNumber, start);
    token.number = *number;
    return token;
  }

  absl::StatusOr<Token> String(char quote) {
    const size_t start = pos_++;
    std::string text;
    while (true) {
      if (pos_ >= text_.size()) {
        return ErrorAt(text_, start,
                       fmt::format("unterminated string (missing {})", quote));
      }
      char c = text_[pos_];
      if (c == quote) break;
      if (c != '\\') {
        text += c;
        ++pos_;
        continue;
      }
      absl::Status escape = Escape(text);
      if (!escape.ok()) return escape;
    }
    ++pos_;
    Token token = Make(TokenKind::kString, start);
    token.text = std::move(text);
    return token;
  }

  // Appends the character of the escape at pos_ (a backslash) to `out`.
  absl::Status Escape(std::string& out) {
    const size_t start = pos_;
    if (pos_ + 1 >= text_.size()) return ErrorAt(text_, start, "unterminated string");
    char c = text_[pos_ + 1];
    pos_ += 2;
    switch (c) {
      case '"':
        out += '"';
        return absl::OkStatus();
      case '\'':
        out += '\'';
        return absl::OkStatus();
      case '\\':
        out += '\\';
        return absl::OkStatus();
      case '/':
        out += '/';
        return absl::OkStatus();
      case 'b':
        out += '\b';
        return absl::OkStatus();
      case 'f':
        out += '\f';
        return absl::OkStatus();
      case 'n':
        out += '\n';
        return absl::OkStatus();
      case 'r':
        out += '\r';
        return absl::OkStatus();
      case 't':
        out += '\t';
        return absl::OkStatus();
      case 'u':
        break;
      default:
        return ErrorAt(
            text_, start,
            fmt::format("invalid escape '\\{}' (a backslash is written '\\\\', "
                        "also in regular expressions: \"\\\\d+\")",
                        Printable(c)));
    }
    int32_t unit = Hex4();
    if (unit < 0) return ErrorAt(text_, start, "expected 4 hex digits after '\\u'");
    uint32_t code_point = static_cast<uint32_t>(unit);
    if (unit >= 0xDC00 && unit <= 0xDFFF) {
      return ErrorAt(text_, start, "unpaired UTF-16 surrogate in '\\u' escape");
    }
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      // A high surrogate must be followed by an escaped low one (as in JSON).
      if (text_.substr(pos_, 2) != "\\u") {
        return ErrorAt(text_, start, "unpaired UTF-16 surrogate in '\\u' escape");
      }
      pos_ += 2;
      int32_t low = Hex4();
      if (low < 0xDC00 || low > 0xDFFF) {
        return ErrorAt(text_, start, "unpaired UTF-16 surrogate in '\\u' escape");
      }
      code_point =
          0x10000 + ((code_point - 0xD800) << 10) + (static_cast<uint32_t>(low) - 0xDC00);
    }
    AppendUtf8(code_point, out);
    return absl::OkStatus();
  }

  // The value of 4 hex digits at pos_ (consumed), or -1.
  int32_t Hex4() {
    if (pos_ + 4 > text_.size()) return -1;
    int32_t value = 0;
    for (size_t i = 0; i < 4; ++i) {
      int digit = HexValue(text_[pos_ + i]);
      if (digit < 0) return -1;
      value = value * 16 + digit;
    }
    pos_ += 4;
    return value;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<std::vector<Token>> Lex(std::string_view text) {
  return Lexer(text).Run();
}

size_t ColumnAt(std::string_view text, size_t offset) {
  size_t column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    // Continuation bytes (10xxxxxx) belong to the character before them.
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++column;
  }
  return column;
}

absl::Status ErrorAt(std::string_view text, size_t offset, std::string_view message) {
  return absl::InvalidArgumentError(
      fmt::format("filter: column {}: {}", ColumnAt(text, offset), message));
}

std::string Describe(const Token& token) {
  constexpr size_t kShown = 24;
  switch (token.kind) {
    case TokenKind::kEnd:
      return "end of input";
    case TokenKind::kString:
      return token.source.size() <= kShown
                 ? fmt::format("string {}", token.source)
                 : fmt::format("string {}...", token.source.substr(0, kShown));
    case TokenKind::kNumber:
      return fmt::format("number {}", token.source);
    default:
      return fmt::format("'{}'", token.source);
  }
}

}  // namespace ferry::filter
