#include "server/file_limit.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>

namespace ferry::server {

FileLimitCalls SystemFileLimitCalls() {
  return FileLimitCalls{
      .get = []() -> absl::StatusOr<FileLimit> {
        rlimit limit{};
        if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
          return absl::InternalError(
              fmt::format("getrlimit(RLIMIT_NOFILE): {}", std::strerror(errno)));
        }
        return FileLimit{.soft = limit.rlim_cur, .hard = limit.rlim_max};
      },
      .set =
          [](const FileLimit& wanted) {
            const rlimit limit{.rlim_cur = static_cast<rlim_t>(wanted.soft),
                               .rlim_max = static_cast<rlim_t>(wanted.hard)};
            if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
              return absl::InternalError(
                  fmt::format("setrlimit(RLIMIT_NOFILE, soft {}): {}", wanted.soft,
                              std::strerror(errno)));
            }
            return absl::OkStatus();
          },
  };
}

absl::StatusOr<FileLimitChange> RaiseFileLimit(const FileLimitCalls& calls) {
  absl::StatusOr<FileLimit> before = calls.get();
  if (!before.ok()) return before.status();
  if (before->soft >= before->hard) return FileLimitChange{*before, *before};
  const FileLimit wanted{.soft = before->hard, .hard = before->hard};
  if (absl::Status set = calls.set(wanted); !set.ok()) return set;
  // Read back: what the kernel applied, not what was asked for.
  absl::StatusOr<FileLimit> after = calls.get();
  if (!after.ok()) return after.status();
  return FileLimitChange{*before, *after};
}

}  // namespace ferry::server
