#include "server/shutdown_watchdog.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

namespace ferry::server {

ShutdownWatchdog::ShutdownWatchdog(std::function<std::string()> describe,
                                   std::function<void(const std::string&)> expire)
    : describe_(std::move(describe)), expire_(std::move(expire)) {}

ShutdownWatchdog::~ShutdownWatchdog() { Disarm(); }

void ShutdownWatchdog::Arm(absl::Duration limit) {
  const absl::Time deadline = absl::Now() + limit;
  thread_ = std::thread([this, deadline, limit] {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithDeadline(absl::Condition(&disarmed_), deadline)) return;
    }
    expire_("shutdown did not finish within " + absl::FormatDuration(limit) +
            "; still running: " + describe_());
  });
}

void ShutdownWatchdog::Disarm() {
  {
    absl::MutexLock lock(&mu_);
    disarmed_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ShutdownWatchdog::LogAndExit(const std::string& what) {
  spdlog::error("{}; exiting", what);
  spdlog::default_logger()->flush();
  _exit(3);
}

}  // namespace ferry::server
