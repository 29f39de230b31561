#include "subscribe/partition_state.h"

#include <algorithm>

namespace ferry::subscribe {

PartitionState::PartitionState(int64_t next_offset, OrderingMode mode)
    : mode_(mode), end_offset_(next_offset) {}

bool PartitionState::Append(FetchedMessage message) {
  if (message.offset < end_offset_) return false;
  end_offset_ = message.offset + 1;
  buffered_bytes_ += message.bytes;

  // The gate is open for a message that has no earlier buffered message of its
  // key (kKey) or of the partition (kPartition).
  bool gate_open = true;
  if (mode_ == OrderingMode::kPartition) {
    gate_open = entries_.empty();
  } else if (mode_ == OrderingMode::kKey && !message.key.empty()) {
    std::set<int64_t>& offsets = keys_[message.key];
    gate_open = offsets.empty();
    offsets.insert(offsets.end(), message.offset);
  }

  Entry entry;
  entry.key = std::move(message.key);
  entry.bytes = message.bytes;
  entry.phase = gate_open ? Phase::kReady : Phase::kBlocked;
  entries_.Append(message.offset, std::move(entry));
  if (gate_open) ready_.insert(ready_.end(), message.offset);
  return true;
}

void PartitionState::Skip(int64_t offset) {
  if (Entry* entry = entries_.Find(offset)) {
    Remove(offset, *entry);
  } else if (offset >= end_offset_) {
    // Never buffered: appended and acked in one step.
    end_offset_ = offset + 1;
  }
}

void PartitionState::LeaveFlight() { --in_flight_; }

void PartitionState::Remove(int64_t offset, Entry& entry) {
  switch (entry.phase) {
    case Phase::kBlocked:
      break;
    case Phase::kReady:
      ready_.erase(offset);
      break;
    case Phase::kDelayed:
      delayed_.erase({entry.not_before, offset});
      break;
    case Phase::kInFlight:
      LeaveFlight();
      break;
  }
  const bool held_gate = entry.phase != Phase::kBlocked;
  buffered_bytes_ -= entry.bytes;

  // The message that now heads the key / partition, if this one held its gate.
  std::optional<int64_t> next;
  if (mode_ == OrderingMode::kKey && !entry.key.empty()) {
    auto key_it = keys_.find(entry.key);
    key_it->second.erase(offset);
    if (key_it->second.empty()) {
      keys_.erase(key_it);
    } else if (held_gate) {
      next = *key_it->second.begin();
    }
  }
  entries_.Erase(offset);  // `entry` is gone from here on
  if (mode_ == OrderingMode::kPartition && held_gate && !entries_.empty()) {
    // In kPartition mode the gate holder is always the lowest buffered offset.
    next = entries_.front_offset();
  }

  if (next.has_value()) {
    Entry& head = *entries_.Find(*next);
    if (head.phase == Phase::kBlocked) {
      head.phase = Phase::kReady;
      ready_.insert(*next);
    }
  }
}

void PartitionState::PromoteDue(absl::Time now) {
  // Delays are checked lazily here; each message is moved at most once per
  // nack, so this is amortized O(log n).
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    const int64_t offset = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    entries_.Find(offset)->phase = Phase::kReady;
    ready_.insert(offset);
  }
}

std::optional<Delivery> PartitionState::Deliver(StreamId stream, absl::Time now,
                                                absl::Duration ack_deadline) {
  PromoteDue(now);
  if (ready_.empty()) return std::nullopt;
  // ready_ holds exactly the gate-open, due messages, so its lowest offset is
  // the answer in every mode; delivering it closes its key's / partition's gate
  // simply because later messages of it are kBlocked until Remove().
  return Take(*ready_.begin(), stream, now, ack_deadline);
}

std::optional<Delivery> PartitionState::Deliver(
    StreamId stream, absl::Time now, absl::Duration ack_deadline, int64_t from,
    absl::FunctionRef<bool(int64_t offset)> wanted) {
  PromoteDue(now);
  for (auto it = ready_.lower_bound(from); it != ready_.end(); ++it) {
    if (wanted(*it)) return Take(*it, stream, now, ack_deadline);
  }
  return std::nullopt;
}

Delivery PartitionState::Take(int64_t offset, StreamId stream, absl::Time now,
                              absl::Duration ack_deadline) {
  ready_.erase(offset);
  Entry& entry = *entries_.Find(offset);
  entry.phase = Phase::kInFlight;
  entry.attempt += 1;
  entry.stream = stream;
  entry.deadline = now + ack_deadline;
  ++in_flight_;
  earliest_deadline_ = std::min(earliest_deadline_, entry.deadline);
  return Delivery{.offset = offset,
                  .attempt = entry.attempt,
                  .generation = generation_,
                  .stream = stream,
                  .deadline = entry.deadline};
}

PartitionState::Entry* PartitionState::FindInFlight(const Receipt& receipt) {
  if (receipt.generation != generation_) return nullptr;
  Entry* entry = entries_.Find(receipt.offset);
  if (entry == nullptr || entry->phase != Phase::kInFlight ||
      entry->attempt != receipt.attempt) {
    return nullptr;
  }
  return entry;
}

ReceiptCheck PartitionState::Ack(const Receipt& receipt) {
  Entry* entry = FindInFlight(receipt);
  if (entry == nullptr) return ReceiptCheck::kExpired;
  Remove(receipt.offset, *entry);
  return ReceiptCheck::kOk;
}

ReceiptCheck PartitionState::Nack(const Receipt& receipt, absl::Time now,
                                  absl::Duration delay) {
  Entry* entry = FindInFlight(receipt);
  if (entry == nullptr) return ReceiptCheck::kExpired;
  LeaveFlight();
  // It held its gate while in flight and keeps it: later messages of its key /
  // the partition stay kBlocked until it is acked.
  if (delay > absl::ZeroDuration()) {
    entry->phase = Phase::kDelayed;
    entry->not_before = now + delay;
    delayed_.emplace(entry->not_before, receipt.offset);
  } else {
    entry->phase = Phase::kReady;
    ready_.insert(receipt.offset);
  }
  return ReceiptCheck::kOk;
}

ReceiptCheck PartitionState::Extend(const Receipt& receipt, absl::Time deadline) {
  Entry* entry = FindInFlight(receipt);
  if (entry == nullptr) return ReceiptCheck::kExpired;
  entry->deadline = deadline;
  earliest_deadline_ = std::min(earliest_deadline_, deadline);
  return ReceiptCheck::kOk;
}

ReceiptCheck PartitionState::Reassign(const Receipt& receipt, StreamId stream,
                                      absl::Time deadline) {
  Entry* entry = FindInFlight(receipt);
  if (entry == nullptr) return ReceiptCheck::kExpired;
  entry->stream = stream;
  return Extend(receipt, deadline);
}

std::vector<int64_t> PartitionState::ExpireDeadlines(absl::Time now) {
  if (now < earliest_deadline_) return {};
  // One scan both expires and finds the earliest deadline left, so the next
  // scan waits until then.
  earliest_deadline_ = absl::InfiniteFuture();
  return ReturnToReady([&](const Entry& entry) {
    if (entry.deadline <= now) return true;
    earliest_deadline_ = std::min(earliest_deadline_, entry.deadline);
    return false;
  });
}

std::vector<int64_t> PartitionState::ReleaseStream(StreamId stream) {
  return ReturnToReady([&](const Entry& entry) { return entry.stream == stream; });
}

std::vector<int64_t> PartitionState::ReturnToReady(
    absl::FunctionRef<bool(const Entry&)> matches) {
  std::vector<int64_t> returned;
  if (in_flight_ == 0) return returned;
  entries_.ForEach([&](int64_t offset, Entry& entry) {
    if (entry.phase != Phase::kInFlight || !matches(entry)) return;
    LeaveFlight();
    entry.phase = Phase::kReady;
    ready_.insert(offset);
    returned.push_back(offset);
  });
  return returned;
}

void PartitionState::Reset(int64_t next_offset) {
  // A new generation expires every receipt handed out so far, including ones
  // whose offset and attempt will recur after a rewind.
  ++generation_;
  end_offset_ = next_offset;
  buffered_bytes_ = 0;
  entries_.Clear();
  ready_.clear();
  delayed_.clear();
  in_flight_ = 0;
  earliest_deadline_ = absl::InfiniteFuture();
  keys_.clear();
}

int64_t PartitionState::CommitOffset() const {
  return entries_.empty() ? end_offset_ : entries_.front_offset();
}

size_t PartitionState::in_flight() const { return in_flight_; }

size_t PartitionState::waiting() const { return entries_.size() - in_flight_; }

std::vector<int64_t> PartitionState::WaitingOffsets() const {
  std::vector<int64_t> offsets;
  offsets.reserve(waiting());
  entries_.ForEach([&](int64_t offset, const Entry& entry) {
    if (entry.phase != Phase::kInFlight) offsets.push_back(offset);
  });
  return offsets;
}

int32_t PartitionState::attempts(int64_t offset) const {
  const Entry* entry = entries_.Find(offset);
  return entry == nullptr ? 0 : entry->attempt;
}

std::optional<absl::Time> PartitionState::NextRedeliveryTime() const {
  if (delayed_.empty()) return std::nullopt;
  return delayed_.begin()->first;
}

}  // namespace ferry::subscribe
