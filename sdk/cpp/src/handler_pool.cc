#include "handler_pool.h"

#include <utility>

namespace ferry::client::internal {

HandlerPool::HandlerPool(int threads) {
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

HandlerPool::~HandlerPool() {
  Stop();
  for (std::thread& thread : threads_) thread.join();
}

void HandlerPool::Submit(std::string key, Task task) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;  // `task` is destroyed when this returns, unlocked.
  AddLocked(Keyed{std::move(key), std::move(task)});
}

void HandlerPool::SubmitAll(std::vector<Keyed> tasks) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;  // `tasks` are destroyed when this returns, unlocked.
  for (Keyed& keyed : tasks) AddLocked(std::move(keyed));
}

void HandlerPool::AddLocked(Keyed keyed) {
  if (!keyed.key.empty()) {
    auto [it, inserted] = busy_keys_.try_emplace(keyed.key);
    if (!inserted) {
      it->second.push_back(std::move(keyed.task));
      return;
    }
  }
  ready_.push_back(std::move(keyed));
}

bool HandlerPool::Stop(std::chrono::milliseconds timeout) {
  std::deque<Ready> ready;
  std::unordered_map<std::string, std::deque<Task>> waiting;
  bool idle;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    ready.swap(ready_);
    waiting.swap(busy_keys_);
    auto none_running = [this]()
                            ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
    idle =
        mu_.AwaitWithTimeout(absl::Condition(&none_running), absl::FromChrono(timeout));
  }
  return idle;  // `ready` and `waiting` are destroyed unlocked.
}

void HandlerPool::Work() {
  absl::MutexLock lock(&mu_);
  auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopped_ || !ready_.empty();
  };
  for (;;) {
    mu_.Await(absl::Condition(&has_work));
    if (stopped_) return;
    Ready next = std::move(ready_.front());
    ready_.pop_front();
    ++running_;
    mu_.Unlock();
    next.task();
    next.task = nullptr;  // Destroyed unlocked, like the task's own state.
    mu_.Lock();
    --running_;
    if (next.key.empty()) continue;
    auto it = busy_keys_.find(next.key);
    if (it == busy_keys_.end()) continue;  // Stopped meanwhile.
    if (it->second.empty()) {
      busy_keys_.erase(it);
    } else {
      ready_.push_back(Ready{std::move(next.key), std::move(it->second.front())});
      it->second.pop_front();
    }
  }
}

}  // namespace ferry::client::internal
