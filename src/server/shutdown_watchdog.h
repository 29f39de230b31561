#pragma once

// Bounds a node's shutdown. Draining can wait on things outside the node's
// control (a broker that does not answer a final commit, a call that never
// ends); past `limit` the watchdog reports what was still running and ends
// the process with a non-zero exit, so an orchestrator never waits forever
// for a node that ignored SIGTERM.
//
// Threading: thread-safe. The watchdog runs one thread between Arm() and
// Disarm() / destruction.

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ferry::server {

class ShutdownWatchdog {
 public:
  // `describe` says what shutdown is still doing (called once, on expiry);
  // `expire` gets that text and must not return in production (it ends the
  // process); tests pass one that records it.
  ShutdownWatchdog(std::function<std::string()> describe,
                   std::function<void(const std::string&)> expire);
  // Disarms.
  ~ShutdownWatchdog();

  // Starts counting: expiry at now + limit unless Disarm() came first.
  void Arm(absl::Duration limit);
  // Shutdown finished in time.
  void Disarm();

  // The production expiry: logs `what` and ends the process with exit code 3.
  [[noreturn]] static void LogAndExit(const std::string& what);

 private:
  const std::function<std::string()> describe_;
  const std::function<void(const std::string&)> expire_;
  absl::Mutex mu_;
  bool disarmed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ferry::server
