#pragma once

// A few threads for work that blocks (broker metadata, joining or leaving a
// consumer group) and so must not run on gRPC callback threads or on a
// ticker that other work waits for.
//
// Threading: Post() is thread-safe. Tasks run in the order posted, on
// `threads` threads (so at most that many run at once). The destructor runs
// every task posted before it, then joins; a task must therefore finish by
// itself (bounded by its own timeouts). Posting from a task during
// destruction is allowed and runs too.

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ferry {

class BlockingTaskRunner {
 public:
  explicit BlockingTaskRunner(int threads);
  ~BlockingTaskRunner();

  BlockingTaskRunner(const BlockingTaskRunner&) = delete;
  BlockingTaskRunner& operator=(const BlockingTaskRunner&) = delete;

  void Post(std::function<void()> task);
  // Tasks posted and not finished yet.
  size_t pending() const;

 private:
  void Run();

  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  size_t running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace ferry
