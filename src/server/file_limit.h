#pragma once

// The open-file limit (RLIMIT_NOFILE) of ferryd. Every Kafka group a node
// serves holds about 9 descriptors (the group member's librdkafka handle:
// broker connections, wake-up pipes), so the usual default soft limit of
// 1,024 stops a node at ~110 groups while the hard limit, which the process
// may raise its soft limit to without privileges, is often far higher.

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::server {

struct FileLimit {
  uint64_t soft = 0;
  uint64_t hard = 0;
  bool operator==(const FileLimit&) const = default;
};

// getrlimit / setrlimit(RLIMIT_NOFILE), replaceable in tests.
struct FileLimitCalls {
  std::function<absl::StatusOr<FileLimit>()> get;
  std::function<absl::Status(const FileLimit&)> set;
};

// The process's own limit, through the system calls.
FileLimitCalls SystemFileLimitCalls();

struct FileLimitChange {
  FileLimit before;
  FileLimit after;
};

// Raises the soft limit to the hard limit (nothing to do when they are
// equal). Fails, leaving the limit as it was, when the limit cannot be read
// or set; the caller decides whether to go on with it.
absl::StatusOr<FileLimitChange> RaiseFileLimit(const FileLimitCalls& calls);

}  // namespace ferry::server
