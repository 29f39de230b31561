#include "mirror/partition_copier.h"

#include <algorithm>

namespace ferry::mirror {

bool PartitionCopier::Accept(int64_t offset) {
  if (rewinding_ || !stopped_.ok() || offset < next_offset_) return false;
  in_flight_.push_back({.offset = offset, .state = State::kSent});
  next_offset_ = offset + 1;
  return true;
}

bool PartitionCopier::Skip(int64_t offset) {
  if (!Accept(offset)) return false;
  in_flight_.back().state = State::kSkipped;
  PopAckedPrefix();
  return true;
}

PartitionCopier::Entry* PartitionCopier::Find(int64_t offset) {
  auto it = std::lower_bound(
      in_flight_.begin(), in_flight_.end(), offset,
      [](const Entry& entry, int64_t value) { return entry.offset < value; });
  return it == in_flight_.end() || it->offset != offset ? nullptr : &*it;
}

void PartitionCopier::Acked(int64_t offset) {
  Entry* entry = Find(offset);
  if (entry == nullptr) return;
  entry->state = State::kAcked;
  ++copied_;
  PopAckedPrefix();
}

void PartitionCopier::PopAckedPrefix() {
  while (!in_flight_.empty() && (in_flight_.front().state == State::kAcked ||
                                 in_flight_.front().state == State::kSkipped)) {
    in_flight_.pop_front();
  }
}

void PartitionCopier::Failed(int64_t offset, const absl::Status& status, bool retryable) {
  Entry* entry = Find(offset);
  if (entry == nullptr) return;
  entry->state = State::kFailed;
  if (!retryable && stopped_.ok()) stopped_ = status;
  if (!rewinding_) {
    rewinding_ = true;
    rewind_taken_ = false;
  }
}

std::optional<int64_t> PartitionCopier::TakeRewind() {
  if (!rewinding_ || rewind_taken_ || !stopped_.ok()) return std::nullopt;
  if (std::any_of(in_flight_.begin(), in_flight_.end(),
                  [](const Entry& e) { return e.state == State::kSent; })) {
    return std::nullopt;
  }
  // Everything resolved: copy again from the first record not acknowledged
  // (the acknowledged ones after it are sent again: duplicates).
  const int64_t from = in_flight_.empty() ? next_offset_ : in_flight_.front().offset;
  duplicates_ += std::count_if(in_flight_.begin(), in_flight_.end(),
                               [](const Entry& e) { return e.state == State::kAcked; });
  in_flight_.clear();
  next_offset_ = from;
  rewind_taken_ = true;
  return from;
}

void PartitionCopier::SeekDone(int64_t offset) {
  if (!rewinding_ || !rewind_taken_ || offset != next_offset_) return;
  rewinding_ = false;
}

int64_t PartitionCopier::commit_offset() const {
  return in_flight_.empty() ? next_offset_ : in_flight_.front().offset;
}

}  // namespace ferry::mirror
