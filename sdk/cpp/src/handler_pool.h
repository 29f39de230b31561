// Runs message handlers on a fixed set of threads, serially per ordering key.
#ifndef FERRY_CLIENT_SRC_HANDLER_POOL_H_
#define FERRY_CLIENT_SRC_HANDLER_POOL_H_

#include <chrono>
#include <deque>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "plain_mutex.h"

namespace ferry::client::internal {

// Tasks with the same non-empty key run one at a time, in submission order;
// tasks with different keys, and tasks with an empty key, run in parallel.
// A key waiting behind a running task does not hold up other keys: only its
// head task is in the ready queue. Thread-safe.
class HandlerPool {
 public:
  // Move-only, so a task owns what it works on without a shared_ptr.
  using Task = absl::AnyInvocable<void()>;

  explicit HandlerPool(int threads);
  // Stop(), then waits for running tasks however long they take.
  ~HandlerPool();

  HandlerPool(const HandlerPool&) = delete;
  HandlerPool& operator=(const HandlerPool&) = delete;

  struct Keyed {
    std::string key;
    Task task;
  };

  // After Stop() the task is destroyed without running.
  void Submit(std::string key, Task task);
  // The same for many tasks, in order, under one lock (a fetched batch).
  void SubmitAll(std::vector<Keyed> tasks);

  // No task starts after this. Tasks not started are destroyed (outside the
  // pool's lock, so their destructors may do anything but call the pool).
  // Waits up to `timeout` for running tasks; false if some still run.
  bool Stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

 private:
  using Ready = Keyed;

  void Work();
  // True if `keyed` is ready to run, false if it waits behind its key.
  bool AddLocked(Keyed keyed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Taken per task (twice with Ordering::kKey/kPartition, a task per
  // message): a PlainMutex, not an absl::Mutex, for the deadlock detection
  // Debian's Abseil runs on every lock (plain_mutex.h). Nothing re-checks a
  // waiter's condition on unlock: whoever makes one true notifies.
  PlainMutex mu_;
  // Work waits here for stopped_ or a ready task.
  PlainCondVar work_cv_;
  // Stop waits here for running_ == 0.
  PlainCondVar idle_cv_;
  std::deque<Ready> ready_ ABSL_GUARDED_BY(mu_);
  // Keys with a task ready or running, each with the tasks waiting behind it.
  std::unordered_map<std::string, std::deque<Task>> busy_keys_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_HANDLER_POOL_H_
