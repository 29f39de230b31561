#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "security/token_table.h"

namespace ferry::security {

// The tokens file, re-read when its modification time changes (looked at
// most once per `refresh_interval`, by the next Authenticate). A file that
// no longer parses is logged and the previous tokens stay; an emptied file
// revokes every token. Thread-safe.
class TokenStore {
 public:
  // INVALID_ARGUMENT "auth.tokens_file: <path>: line N: ..." when the file
  // is unreadable or malformed at start-up. An empty path: no tokens.
  static absl::StatusOr<std::unique_ptr<TokenStore>> Open(
      std::string path, absl::Duration refresh_interval);

  // TokenTable::Authenticate on the newest tokens.
  absl::StatusOr<std::string> Authenticate(std::string_view token);

 private:
  TokenStore(std::string path, absl::Duration refresh_interval)
      : path_(std::move(path)), refresh_interval_(refresh_interval) {}
  absl::StatusOr<std::shared_ptr<const TokenTable>> Load() const;
  std::shared_ptr<const TokenTable> Current();

  const std::string path_;
  const absl::Duration refresh_interval_;
  absl::Mutex mu_;
  std::shared_ptr<const TokenTable> table_ ABSL_GUARDED_BY(mu_);
  absl::Time loaded_mtime_ ABSL_GUARDED_BY(mu_);
  absl::Time next_check_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::security
