#include "subscribe/tick_schedule.h"

namespace ferry::subscribe {

void TickSchedule::Wake(const std::string& key, absl::Time at) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = held_.try_emplace(key, at);
  if (!inserted) {
    if (it->second <= at) return;
    by_time_.erase({it->second, key});
    it->second = at;
  }
  by_time_.emplace(at, key);
}

std::vector<std::string> TickSchedule::TakeDue(absl::Time now) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> due;
  while (!by_time_.empty() && by_time_.begin()->first <= now) {
    auto node = by_time_.extract(by_time_.begin());
    held_.erase(node.value().second);
    due.push_back(std::move(node.value().second));
  }
  return due;
}

size_t TickSchedule::size() const {
  absl::MutexLock lock(&mu_);
  return held_.size();
}

}  // namespace ferry::subscribe
