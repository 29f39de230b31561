#include "publish/sojourn_gate.h"

#include <algorithm>

namespace ferry::publish {

std::optional<SojournGate::Ticket> SojournGate::TryAdmit(std::string_view topic,
                                                         absl::Time now,
                                                         absl::Duration* oldest_wait) {
  // Debian's Abseil has an absl::string_view of its own.
  const absl::string_view key(topic.data(), topic.size());
  absl::MutexLock lock(&mu_);
  auto it = queues_.find(key);
  if (it != queues_.end()) {
    // Never empty: an emptied queue is erased.
    const absl::Duration waited = now - it->second.batches.front().admitted;
    if (waited > budget_) {
      *oldest_wait = waited;
      return std::nullopt;
    }
  } else {
    it = queues_.try_emplace(key).first;
    it->second.topic = it->first;
  }
  TopicQueue& queue = it->second;
  // Callers read the clock before taking the lock, so `now` may be a little
  // older than the newest admission.
  const absl::Time admitted =
      queue.batches.empty() ? now : std::max(now, queue.batches.back().admitted);
  queue.batches.push_back({.admitted = admitted});
  Ticket ticket;
  ticket.queue_ = &queue;
  ticket.sequence_ = queue.front_sequence + queue.batches.size() - 1;
  return ticket;
}

void SojournGate::Done(const Ticket& ticket) {
  absl::MutexLock lock(&mu_);
  TopicQueue& queue = *ticket.queue_;
  queue.batches[ticket.sequence_ - queue.front_sequence].answered = true;
  while (!queue.batches.empty() && queue.batches.front().answered) {
    queue.batches.pop_front();
    ++queue.front_sequence;
  }
  if (queue.batches.empty()) {
    queues_.erase(absl::string_view(queue.topic.data(), queue.topic.size()));
  }
}

size_t SojournGate::topics() const {
  absl::MutexLock lock(&mu_);
  return queues_.size();
}

}  // namespace ferry::publish
