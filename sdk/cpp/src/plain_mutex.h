// A mutex that Abseil's deadlock detector does not see, for the SDK's locks
// taken per message. Debian builds Abseil without NDEBUG, so there every
// absl::Mutex Lock/Unlock runs the detector (a global lock, a graph lookup,
// per-thread bookkeeping: ~300 instructions per lock/unlock pair,
// bench/RESULTS.md, branch sdklock), and the SDK must not
// switch the detector off in the application's process. It carries the same
// thread-safety annotations as absl::Mutex, so ABSL_GUARDED_BY and
// ABSL_EXCLUSIVE_LOCKS_REQUIRED keep being checked.
#ifndef FERRY_CLIENT_SRC_PLAIN_MUTEX_H_
#define FERRY_CLIENT_SRC_PLAIN_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace ferry::client::internal {

class ABSL_LOCKABLE PlainMutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  friend class PlainCondVar;
  std::mutex mu_;
};

// Holds a PlainMutex for its scope, as absl::MutexLock does an absl::Mutex.
class ABSL_SCOPED_LOCKABLE PlainLock {
 public:
  explicit PlainLock(PlainMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~PlainLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  PlainLock(const PlainLock&) = delete;
  PlainLock& operator=(const PlainLock&) = delete;

 private:
  PlainMutex* const mu_;
};

// Where a PlainMutex's holder waits for a condition, as absl::Mutex::Await
// does, except that nothing re-checks it on every unlock: whoever makes
// `ready` true must Notify (under the mutex, or after changing the state
// under it).
class PlainCondVar {
 public:
  template <typename Ready>
  void Await(PlainMutex* mu, Ready ready) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock, ready);
    lock.release();
  }
  // Returns ready(): false when `deadline` came first.
  template <typename Ready>
  bool AwaitUntil(PlainMutex* mu, Ready ready,
                  std::chrono::steady_clock::time_point deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool result = cv_.wait_until(lock, deadline, ready);
    lock.release();
    return result;
  }
  // As AwaitUntil; a timeout past the clock's range waits without one.
  template <typename Ready>
  bool AwaitFor(PlainMutex* mu, Ready ready, std::chrono::milliseconds timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const auto now = std::chrono::steady_clock::now();
    if (timeout >= std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::time_point::max() - now)) {
      Await(mu, ready);
      return true;
    }
    return AwaitUntil(mu, ready, now + timeout);
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_PLAIN_MUTEX_H_
