#include "security/token_table.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <vector>

#include "security/acl_rule.h"

namespace ferry::security {
namespace {

bool TokenChars(std::string_view text, size_t min, size_t max) {
  if (text.size() < min || text.size() > max) return false;
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string Sha256(std::string_view salt, std::string_view secret) {
  const std::string input = std::string(salt) + std::string(secret);
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  unsigned int length = 0;
  EVP_Digest(input.data(), input.size(), reinterpret_cast<unsigned char*>(digest.data()),
             &length, EVP_sha256(), nullptr);
  return digest;
}

std::string Hex(std::string_view raw) {
  std::string out;
  for (unsigned char c : raw) out += fmt::format("{:02x}", c);
  return out;
}

bool FromHex(std::string_view hex, std::string& out) {
  if (hex.size() % 2 != 0) return false;
  out.clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int value = 0;
    for (char c : hex.substr(i, 2)) {
      int digit = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                         : -1;
      if (digit < 0) return false;
      value = value * 16 + digit;
    }
    out += static_cast<char>(value);
  }
  return true;
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

}  // namespace

bool WellFormedToken(std::string_view token) {
  const size_t dot = token.find('.');
  return dot != std::string_view::npos && TokenChars(token.substr(0, dot), 1, 64) &&
         TokenChars(token.substr(dot + 1), 16, 256);
}

absl::StatusOr<TokenTable> TokenTable::Parse(std::string_view content) {
  TokenTable table;
  int number = 0;
  while (!content.empty()) {
    const size_t end = content.find('\n');
    std::string_view line = content.substr(0, end);
    content = end == std::string_view::npos ? "" : content.substr(end + 1);
    ++number;
    if (line.ends_with('\r')) line.remove_suffix(1);
    std::vector<std::string_view> fields = Fields(line);
    if (fields.empty() || fields[0].starts_with('#')) continue;
    auto bad = [number](std::string why) {
      return absl::InvalidArgumentError(fmt::format("line {}: {}", number, why));
    };
    if (fields.size() < 3 || fields.size() > 4) {
      return bad("want: ID PRINCIPAL sha256:SALT:HASH [expires=RFC3339]");
    }
    if (!TokenChars(fields[0], 1, 64)) {
      return bad("the id is not 1..64 characters from A-Z a-z 0-9 _ -");
    }
    if (fields[1] == "*") return bad("\"*\" is not a principal a token can stand for");
    if (absl::Status s = ValidatePrincipal(fields[1]); !s.ok()) {
      return bad(std::string(s.message()));
    }
    Entry entry{.principal = std::string(fields[1])};
    std::string_view hash = fields[2];
    const size_t colon = hash.find(':', 7);
    if (!hash.starts_with("sha256:") || colon == std::string_view::npos ||
        !FromHex(hash.substr(7, colon - 7), entry.salt) || entry.salt.size() < 8 ||
        !FromHex(hash.substr(colon + 1), entry.hash) ||
        entry.hash.size() != SHA256_DIGEST_LENGTH) {
      return bad("the hash is not sha256:<salt, 16+ hex digits>:<64 hex digits>");
    }
    if (fields.size() == 4) {
      std::string error;
      if (!fields[3].starts_with("expires=") ||
          !absl::ParseTime(absl::RFC3339_full, std::string(fields[3].substr(8)),
                           &entry.expires, &error)) {
        return bad("the fourth field is not expires=<RFC 3339 time>");
      }
    }
    if (!table.by_id_.emplace(std::string(fields[0]), std::move(entry)).second) {
      return bad(fmt::format("token id \"{}\" is listed twice", fields[0]));
    }
  }
  return table;
}

absl::StatusOr<std::string> TokenTable::Authenticate(std::string_view token,
                                                     absl::Time now) const {
  if (!WellFormedToken(token)) {
    return absl::UnauthenticatedError("malformed bearer token");
  }
  const size_t dot = token.find('.');
  auto it = by_id_.find(token.substr(0, dot));
  if (it == by_id_.end()) {
    return absl::UnauthenticatedError("unknown or revoked bearer token");
  }
  const Entry& entry = it->second;
  const std::string hash = Sha256(entry.salt, token.substr(dot + 1));
  if (CRYPTO_memcmp(hash.data(), entry.hash.data(), hash.size()) != 0) {
    return absl::UnauthenticatedError("unknown or revoked bearer token");
  }
  if (now >= entry.expires) {
    return absl::UnauthenticatedError(fmt::format(
        "bearer token expired at {}",
        absl::FormatTime(absl::RFC3339_sec, entry.expires, absl::UTCTimeZone())));
  }
  return entry.principal;
}

std::string TokenLine(std::string_view id, std::string_view principal,
                      std::string_view secret, std::string_view salt,
                      absl::Time expires) {
  std::string line = fmt::format("{} {} sha256:{}:{}", id, principal, Hex(salt),
                                 Hex(Sha256(salt, secret)));
  if (expires != absl::InfiniteFuture()) {
    line +=
        " expires=" + absl::FormatTime(absl::RFC3339_sec, expires, absl::UTCTimeZone());
  }
  return line;
}

}  // namespace ferry::security
