// A mutex that Abseil's deadlock detector does not see, for the SDK's locks
// taken per message. Debian builds Abseil without NDEBUG, so there every
// absl::Mutex Lock/Unlock runs the detector (a global lock, a graph lookup,
// per-thread bookkeeping: ~300 instructions per lock/unlock pair,
// bench/RESULTS.md, branch sdklock), and the SDK must not switch the
// detector off in the application's process.
//
// It carries the same thread-safety annotations as absl::Mutex. gcc, which
// builds Ferry, ignores them: scripts/check-thread-safety checks them with
// clang's -Wthread-safety.
//
// In the sanitizer build (FERRY_SANITIZE) the classes are backed by
// absl::Mutex and absl::CondVar instead, so that the tests run under the
// deadlock detector too. absl::CondVar, like std::condition_variable,
// re-checks nothing on unlock, so the notify discipline below is exercised
// the same way; the std-backed waits (the Adopted unique_lock) do not run
// there, only in the default build's tests.
#ifndef FERRY_CLIENT_SRC_PLAIN_MUTEX_H_
#define FERRY_CLIENT_SRC_PLAIN_MUTEX_H_

#include <chrono>

#include "absl/base/thread_annotations.h"

#ifdef FERRY_SANITIZE
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#else
#include <condition_variable>
#include <mutex>
#endif

namespace ferry::client::internal {

class ABSL_LOCKABLE PlainMutex {
 public:
#ifdef FERRY_SANITIZE
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.Lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.Unlock(); }
#else
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
#endif

 private:
  friend class PlainCondVar;
#ifdef FERRY_SANITIZE
  absl::Mutex mu_;
#else
  std::mutex mu_;
#endif
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

// Releases a held PlainMutex for its scope and takes it again at the end,
// also when the scope is left by an exception, so that an enclosing
// PlainLock always unlocks a mutex it holds. Not annotated: clang 14, which
// scripts/check-thread-safety runs, does not see the mutex held again after
// a scoped unlock, so to the analysis the mutex stays held in the scope.
class PlainUnlock {
 public:
  explicit PlainUnlock(PlainMutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS : mu_(mu) {
    mu_->Unlock();
  }
  ~PlainUnlock() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu_->Lock(); }
  PlainUnlock(const PlainUnlock&) = delete;
  PlainUnlock& operator=(const PlainUnlock&) = delete;

 private:
  PlainMutex* const mu_;
};

// Where a PlainMutex's holder waits for a condition, as absl::Mutex::Await
// does, except that nothing re-checks it on every unlock: whoever makes
// `ready` true must Notify (under the mutex, or after changing the state
// under it). The mutex is held again when a wait returns or `ready` throws.
// The bodies are not analysed (ABSL_NO_THREAD_SAFETY_ANALYSIS): `ready`
// reads what the caller's mutex guards, which clang cannot tie to `mu`; the
// callers are checked for holding it.
class PlainCondVar {
 public:
  template <typename Ready>
  void Await(PlainMutex* mu, Ready ready)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
#ifdef FERRY_SANITIZE
    while (!ready()) cv_.Wait(&mu->mu_);
#else
    Adopted lock(mu);
    cv_.wait(lock.lock, ready);
#endif
  }
  // Returns ready(): false when `deadline` came first.
  template <typename Ready>
  bool AwaitUntil(PlainMutex* mu, Ready ready,
                  std::chrono::steady_clock::time_point deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
#ifdef FERRY_SANITIZE
    while (!ready()) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      cv_.WaitWithTimeout(&mu->mu_, absl::FromChrono(deadline - now));
    }
    return true;
#else
    Adopted lock(mu);
    return cv_.wait_until(lock.lock, deadline, ready);
#endif
  }
  // As AwaitUntil; a timeout past the clock's range waits without one, one
  // of zero or less only checks.
  template <typename Ready>
  bool AwaitFor(PlainMutex* mu, Ready ready, std::chrono::milliseconds timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (timeout <= std::chrono::milliseconds::zero()) return ready();
    const auto now = std::chrono::steady_clock::now();
    if (timeout >= std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::time_point::max() - now)) {
      Await(mu, ready);
      return true;
    }
    return AwaitUntil(mu, ready, now + timeout);
  }
#ifdef FERRY_SANITIZE
  void NotifyOne() { cv_.Signal(); }
  void NotifyAll() { cv_.SignalAll(); }
#else
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }
#endif

 private:
#ifdef FERRY_SANITIZE
  absl::CondVar cv_;
#else
  // The held mutex as the unique_lock a condition variable waits with,
  // handed back without unlocking however the wait ends (PlainLock
  // unlocks it).
  struct Adopted {
    explicit Adopted(PlainMutex* mu) : lock(mu->mu_, std::adopt_lock) {}
    ~Adopted() { lock.release(); }
    Adopted(const Adopted&) = delete;
    Adopted& operator=(const Adopted&) = delete;
    std::unique_lock<std::mutex> lock;
  };
  std::condition_variable cv_;
#endif
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_PLAIN_MUTEX_H_
