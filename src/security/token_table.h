#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::security {

// Bearer tokens and who they stand for, from the tokens file
// (auth.tokens_file). Clients hold "<id>.<secret>"; the file holds no secret,
// only a salted hash, one token per line:
//
//   # id      principal  hash                                     [expiry]
//   ci-7f3a   tenant-a   sha256:<salt hex>:<SHA-256(salt+secret) hex>
//   expires=2027-01-01T00:00:00Z
//
// Removing a line revokes the token. `ferry token create` prints a new token
// and its line. Immutable once parsed; safe to share between threads.
class TokenTable {
 public:
  // INVALID_ARGUMENT "line N: ..." for the first bad line (never quoting a
  // hash); a duplicate id is an error too.
  static absl::StatusOr<TokenTable> Parse(std::string_view content);

  // The principal of `token`, or UNAUTHENTICATED saying only "malformed
  // bearer token", "unknown or revoked bearer token" or "bearer token expired
  // at T". One SHA-256 per call; the comparison takes constant time.
  absl::StatusOr<std::string> Authenticate(std::string_view token, absl::Time now) const;

  size_t size() const { return by_id_.size(); }

 private:
  struct Entry {
    std::string principal = {};
    std::string salt = {};  // raw bytes
    std::string hash = {};  // raw SHA-256(salt + secret)
    absl::Time expires = absl::InfiniteFuture();
  };
  std::map<std::string, Entry, std::less<>> by_id_;
};

// The tokens-file line for a token "<id>.<secret>" with `salt` (raw bytes);
// `expires` InfiniteFuture() for none.
std::string TokenLine(std::string_view id, std::string_view principal,
                      std::string_view secret, std::string_view salt, absl::Time expires);

// Checks the parts of a token as clients hold it: id 1..64 characters and
// secret 16..256 characters, both from [A-Za-z0-9_-].
bool WellFormedToken(std::string_view token);

}  // namespace ferry::security
