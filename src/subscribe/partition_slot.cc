#include "subscribe/partition_slot.h"

#include <utility>

#include "subscribe/delivery_encoder.h"

namespace ferry::subscribe {
namespace {

// A commit unanswered for this long is sent again (librdkafka answers every
// commit, with a timeout at worst; this only guards against a lost answer).
constexpr absl::Duration kCommitAnswerTimeout = absl::Seconds(60);

}  // namespace

PartitionSlot::PartitionSlot(int64_t next_offset, OrderingMode mode, uint64_t epoch,
                             TopicMetrics* metrics)
    : state_(next_offset, mode),
      mode_(mode),
      epoch_(epoch),
      metrics_(metrics),
      next_fetch_(next_offset),
      committed_(next_offset) {}

bool PartitionSlot::Buffer(backend::ConsumedRecord record, int64_t overhead,
                           absl::Time now) {
  if (seeking_) return false;
  const int64_t offset = record.offset;
  FetchedMessage fetched{
      .offset = offset,
      .key = mode_ == OrderingMode::kKey ? std::string(record.key) : "",
      .bytes =
          RecordBytes(record) + overhead + static_cast<int64_t>(record.topic.size())};
  if (!state_.Append(std::move(fetched))) return false;
  next_fetch_ = offset + 1;
  held_.Append(offset, {.record = std::move(record), .buffered_at = now});
  return true;
}

void PartitionSlot::OwnBytesBufferedBefore(absl::Time cutoff) {
  // Records are buffered in offset order, so the old ones come first.
  held_.ForEachFrom(owned_below_, [&](int64_t offset, Held& held) {
    if (held.buffered_at >= cutoff) return false;
    held.record.OwnBytes();
    owned_below_ = offset + 1;
    return true;
  });
}

std::optional<absl::Time> PartitionSlot::OldestBorrowedBufferedAt() const {
  std::optional<absl::Time> oldest;
  held_.ForEachFrom(owned_below_, [&](int64_t, const Held& held) {
    oldest = held.buffered_at;
    return false;
  });
  return oldest;
}

bool PartitionSlot::SkipFetched(int64_t offset) {
  if (seeking_ || offset < next_fetch_) return false;
  state_.Skip(offset);
  next_fetch_ = offset + 1;
  return true;
}

void PartitionSlot::SkipWaiting(int64_t offset) {
  state_.Skip(offset);
  Forget(offset);
}

void PartitionSlot::Trim() {
  held_.Trim();
  state_.Trim();
}

const backend::ConsumedRecord* PartitionSlot::Find(int64_t offset) const {
  const Held* held = held_.Find(offset);
  return held == nullptr ? nullptr : &held->record;
}

void PartitionSlot::Forget(int64_t offset) {
  if (!dead_letter_failures_.empty()) dead_letter_failures_.erase(offset);
  held_.Erase(offset);
}

void PartitionSlot::Hand(int64_t offset, InFlight in_flight) {
  if (Held* held = held_.Find(offset)) held->in_flight = in_flight;
}

std::optional<InFlight> PartitionSlot::Release(int64_t offset) {
  Held* held = held_.Find(offset);
  if (held == nullptr) return std::nullopt;
  return std::exchange(held->in_flight, std::nullopt);
}

std::vector<InFlight> PartitionSlot::ReleaseAll() {
  std::vector<InFlight> released;
  held_.ForEach([&](int64_t, Held& held) {
    if (held.in_flight.has_value()) released.push_back(*held.in_flight);
    held.in_flight.reset();
  });
  return released;
}

bool PartitionSlot::ShouldPauseFetch(int64_t limit) {
  if (fetch_paused_ || state_.buffered_bytes() <= limit) return false;
  fetch_paused_ = true;
  return true;
}

bool PartitionSlot::ShouldResumeFetch(int64_t limit) {
  if (!fetch_paused_ || state_.buffered_bytes() > limit / 2) return false;
  fetch_paused_ = false;
  return true;
}

std::optional<int64_t> PartitionSlot::TakeCommit(absl::Time now) {
  if (seeking_) return std::nullopt;
  const int64_t offset = state_.CommitOffset();
  if (offset == committed_) return std::nullopt;
  if (offset == commit_sent_ && now - commit_sent_at_ < kCommitAnswerTimeout) {
    return std::nullopt;
  }
  CommitSent(offset, now);
  return offset;
}

void PartitionSlot::CommitSent(int64_t offset, absl::Time now) {
  commit_sent_ = offset;
  commit_sent_at_ = now;
}

void PartitionSlot::OnCommitted(int64_t offset, bool ok) {
  if (ok) committed_ = offset;
  // A failed commit is sent again by the next TakeCommit.
  if (offset == commit_sent_) commit_sent_ = -1;
}

void PartitionSlot::StartSeek(int64_t offset) {
  seeking_ = true;
  seek_target_ = offset;
}

std::vector<InFlight> PartitionSlot::FinishSeek(int64_t offset) {
  std::vector<InFlight> released = ReleaseAll();
  held_.Clear();
  owned_below_ = 0;
  dead_letter_failures_.clear();
  state_.Reset(offset);
  seeking_ = false;
  next_fetch_ = offset;
  return released;
}

int PartitionSlot::DeadLetterFailed(int64_t offset) {
  return ++dead_letter_failures_[offset];
}

}  // namespace ferry::subscribe
