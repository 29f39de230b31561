#pragma once

#include <cstdint>
#include <deque>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ferry::publish {

// Caps the bytes of messages the publish path holds at once, so memory stays
// bounded whatever clients send. Waiters are admitted first come, first
// served. Thread-safe.
class InflightLimiter {
 public:
  explicit InflightLimiter(int64_t limit) : limit_(limit) {}

  // Takes `bytes` if they fit now and nobody is waiting.
  bool TryAcquire(int64_t bytes);

  // Runs `admitted` once `bytes` are taken: at once on this thread if they
  // fit, otherwise later on the thread that calls Release. `admitted` must
  // not block. `bytes` must be <= the limit.
  void AcquireAsync(int64_t bytes, std::function<void()> admitted);

  void Release(int64_t bytes);

  int64_t in_use() const;
  int64_t limit() const { return limit_; }

 private:
  struct Waiter {
    int64_t bytes;
    std::function<void()> admitted;
  };

  const int64_t limit_;
  mutable absl::Mutex mu_;
  int64_t in_use_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::publish
