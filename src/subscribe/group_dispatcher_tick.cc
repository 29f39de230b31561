// GroupDispatcher's timer side: Tick() and when it asks for the next one.
// The registry's ticker visits a group only when the group asked for it
// (TickSchedule), so a group with nothing due costs the node nothing.
#include <algorithm>

#include "subscribe/group_dispatcher.h"

namespace ferry::subscribe {

void GroupDispatcher::SetTickRequest(TickRequest request) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  tick_request_ = std::move(request);
  tick_requested_ = absl::InfiniteFuture();
  RequestTick(NextTickDue());
}

void GroupDispatcher::RequestTick(absl::Time at) {
  if (at >= tick_requested_ || !tick_request_) return;
  tick_requested_ = at;
  tick_request_(at);
}

absl::Time GroupDispatcher::NextTickDue() const {
  absl::Time due = absl::InfiniteFuture();
  if (streams_.empty()) due = idle_since_ + config_.group_idle_timeout;
  if (!slots_.empty()) due = std::min(due, next_commit_);
  for (const auto& [cp, slot] : slots_) {
    due = std::min(due, slot->state().NextDeadlineCheck());
    if (std::optional<absl::Time> at = slot->state().NextRedeliveryTime()) {
      due = std::min(due, *at);
    }
    if (std::optional<absl::Time> at = slot->OldestBorrowedBufferedAt()) {
      // Copied once strictly older than the hold.
      due = std::min(due, *at + kBorrowedBytesHold + absl::Nanoseconds(1));
    }
  }
  return due;
}

void GroupDispatcher::Tick(absl::Time now) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    // This visit answers every request so far; what it leaves due is asked
    // for again below.
    tick_requested_ = absl::InfiniteFuture();
    for (auto& [tp, slot] : slots_) {
      slot->OwnBytesBufferedBefore(now - kBorrowedBytesHold);
      std::vector<int64_t> expired = slot->state().ExpireDeadlines(now);
      for (int64_t offset : expired) ReturnCredit(*slot, offset);
      if (!expired.empty()) slot->metrics().expired->Inc(expired.size());
    }
    if (now >= next_commit_) {
      CommitAll(now);
      next_commit_ = now + config_.commit_interval;
      for (auto& [cp, slot] : slots_) {
        // Before Pump, which holds pointers to records while it writes.
        slot->Trim();
        backend::GroupMember* member = Member(cp.cluster);
        const int64_t high = member ? member->HighWatermark(cp.partition) : -1;
        if (high >= 0) {
          metrics_.Lag(cp.cluster, cp.partition)
              .Set(static_cast<double>(
                  std::max<int64_t>(0, high - slot->state().CommitOffset())));
        }
      }
    }
    Pump(now);
    RequestTick(NextTickDue());
    ClaimOutbox(out);
  }
  Flush(std::move(out));
}

}  // namespace ferry::subscribe
