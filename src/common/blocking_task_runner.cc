#include "common/blocking_task_runner.h"

namespace ferry {

BlockingTaskRunner::BlockingTaskRunner(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

BlockingTaskRunner::~BlockingTaskRunner() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& thread : threads_) thread.join();
}

void BlockingTaskRunner::Post(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  tasks_.push_back(std::move(task));
}

size_t BlockingTaskRunner::pending() const {
  absl::MutexLock lock(&mu_);
  return tasks_.size() + running_;
}

void BlockingTaskRunner::Run() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !tasks_.empty() || (stopping_ && running_ == 0);
      };
      mu_.Await(absl::Condition(&ready));
      // Stops only when nothing is queued and no task runs that could post
      // more.
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
      ++running_;
    }
    task();
    absl::MutexLock lock(&mu_);
    --running_;
  }
}

}  // namespace ferry
