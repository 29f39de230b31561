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
  bool made_ready = false;
  {
    PlainLock lock(&mu_);
    if (stopped_) return;  // `task` is destroyed when this returns, unlocked.
    made_ready = AddLocked(Keyed{std::move(key), std::move(task)});
  }
  // After unlocking, so the woken worker does not block on mu_. Safe while
  // the pool outlives this call, as any caller must ensure: the subscriber
  // submits from a stream's reaction, and drops its pool only after every
  // stream's last call (OnStreamDone), which gRPC makes once the stream's
  // other reactions have returned.
  if (made_ready) work_cv_.NotifyOne();
}

void HandlerPool::SubmitAll(std::vector<Keyed> tasks) {
  int made_ready = 0;
  {
    PlainLock lock(&mu_);
    if (stopped_) return;  // `tasks` are destroyed when this returns, unlocked.
    for (Keyed& keyed : tasks) made_ready += AddLocked(std::move(keyed)) ? 1 : 0;
  }
  // After unlocking, as in Submit. A task queued behind its key needs no
  // worker until the one ahead of it ends (Work).
  if (made_ready == 1) {
    work_cv_.NotifyOne();
  } else if (made_ready > 1) {
    work_cv_.NotifyAll();
  }
}

bool HandlerPool::AddLocked(Keyed keyed) {
  if (!keyed.key.empty()) {
    auto [it, inserted] = busy_keys_.try_emplace(keyed.key);
    if (!inserted) {
      it->second.push_back(std::move(keyed.task));
      return false;
    }
  }
  ready_.push_back(std::move(keyed));
  return true;
}

bool HandlerPool::Stop(std::chrono::milliseconds timeout) {
  std::deque<Ready> ready;
  std::unordered_map<std::string, std::deque<Task>> waiting;
  bool idle;
  {
    PlainLock lock(&mu_);
    stopped_ = true;
    work_cv_.NotifyAll();
    ready.swap(ready_);
    waiting.swap(busy_keys_);
    auto none_running = [this]()
                            ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
    idle = idle_cv_.AwaitFor(&mu_, none_running, timeout);
  }
  return idle;  // `ready` and `waiting` are destroyed unlocked.
}

void HandlerPool::Work() {
  PlainLock lock(&mu_);
  auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopped_ || !ready_.empty();
  };
  for (;;) {
    work_cv_.Await(&mu_, has_work);
    if (stopped_) return;
    Ready next = std::move(ready_.front());
    ready_.pop_front();
    ++running_;
    {
      PlainUnlock unlock(&mu_);
      next.task();
      next.task = nullptr;  // Destroyed unlocked, like the task's own state.
    }
    --running_;
    // Only Stop waits for running_ == 0, once stopped_.
    if (stopped_ && running_ == 0) idle_cv_.NotifyAll();
    if (next.key.empty()) continue;
    auto it = busy_keys_.find(next.key);
    if (it == busy_keys_.end()) continue;  // Stopped meanwhile.
    if (it->second.empty()) {
      busy_keys_.erase(it);
    } else {
      ready_.push_back(Ready{std::move(next.key), std::move(it->second.front())});
      it->second.pop_front();
      // This thread takes the front on its next turn. Belt-and-braces:
      // whatever is behind it was notified for when it became ready, so a
      // worker is already on its way to it; this wakes one more in case.
      if (ready_.size() > 1) work_cv_.NotifyOne();
    }
  }
}

}  // namespace ferry::client::internal
