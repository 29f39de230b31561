// A mutex that Abseil's deadlock detector does not see, for the SDK's locks
// taken per message. Debian builds Abseil without NDEBUG, so there every
// absl::Mutex Lock/Unlock runs the detector (a global lock, a graph lookup,
// per-thread bookkeeping: ~300 instructions a message in the per-message
// consume forms, bench/RESULTS.md, branch sdklock), and the SDK must not
// switch the detector off in the application's process. It carries the same
// thread-safety annotations as absl::Mutex, so ABSL_GUARDED_BY and
// ABSL_EXCLUSIVE_LOCKS_REQUIRED keep being checked.
#ifndef FERRY_CLIENT_SRC_PLAIN_MUTEX_H_
#define FERRY_CLIENT_SRC_PLAIN_MUTEX_H_

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace ferry::client::internal {

class ABSL_LOCKABLE PlainMutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
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

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_PLAIN_MUTEX_H_
