#include "publish/inflight_limiter.h"

#include <vector>

namespace ferry::publish {

bool InflightLimiter::TryAcquire(int64_t bytes) {
  absl::MutexLock lock(&mu_);
  if (!waiters_.empty() || in_use_ + bytes > limit_) return false;
  in_use_ += bytes;
  return true;
}

void InflightLimiter::AcquireAsync(int64_t bytes, std::function<void()> admitted) {
  {
    absl::MutexLock lock(&mu_);
    if (!waiters_.empty() || in_use_ + bytes > limit_) {
      waiters_.push_back({bytes, std::move(admitted)});
      return;
    }
    in_use_ += bytes;
  }
  admitted();
}

void InflightLimiter::Release(int64_t bytes) {
  std::vector<std::function<void()>> ready;
  {
    absl::MutexLock lock(&mu_);
    in_use_ -= bytes;
    while (!waiters_.empty() && in_use_ + waiters_.front().bytes <= limit_) {
      in_use_ += waiters_.front().bytes;
      ready.push_back(std::move(waiters_.front().admitted));
      waiters_.pop_front();
    }
  }
  // Outside the lock: an admitted waiter may publish and release again.
  for (auto& admitted : ready) admitted();
}

int64_t InflightLimiter::in_use() const {
  absl::MutexLock lock(&mu_);
  return in_use_;
}

}  // namespace ferry::publish
