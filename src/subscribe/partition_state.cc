#include "subscribe/partition_state.h"

#include <algorithm>
#include <limits>

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
  entries_.emplace_hint(entries_.end(), message.offset, std::move(entry));
  if (gate_open) ready_.insert(ready_.end(), message.offset);
  return true;
}

void PartitionState::Skip(int64_t offset) {
  if (auto it = entries_.find(offset); it != entries_.end()) {
    Remove(it);
  } else if (offset >= end_offset_) {
    // Never buffered: appended and acked in one step.
    end_offset_ = offset + 1;
  }
}

void PartitionState::LeaveFlight(int64_t offset, const Entry& entry) {
  deadlines_.erase({entry.deadline, offset});
  by_stream_.erase({entry.stream, offset});
}

void PartitionState::Remove(Entries::iterator it) {
  const int64_t offset = it->first;
  Entry& entry = it->second;
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
      LeaveFlight(offset, entry);
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
  entries_.erase(it);
  if (mode_ == OrderingMode::kPartition && held_gate && !entries_.empty()) {
    // In kPartition mode the gate holder is always the lowest buffered offset.
    next = entries_.begin()->first;
  }

  if (next.has_value()) {
    Entry& head = entries_.find(*next)->second;
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
    entries_.find(offset)->second.phase = Phase::kReady;
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
  Entry& entry = entries_.find(offset)->second;
  entry.phase = Phase::kInFlight;
  entry.attempt += 1;
  entry.stream = stream;
  entry.deadline = now + ack_deadline;
  deadlines_.emplace(entry.deadline, offset);
  by_stream_.emplace(stream, offset);
  return Delivery{.offset = offset,
                  .attempt = entry.attempt,
                  .generation = generation_,
                  .stream = stream,
                  .deadline = entry.deadline};
}

PartitionState::Entry* PartitionState::FindInFlight(const Receipt& receipt) {
  if (receipt.generation != generation_) return nullptr;
  auto it = entries_.find(receipt.offset);
  if (it == entries_.end()) return nullptr;
  Entry& entry = it->second;
  if (entry.phase != Phase::kInFlight || entry.attempt != receipt.attempt) {
    return nullptr;
  }
  return &entry;
}

ReceiptCheck PartitionState::Ack(const Receipt& receipt) {
  if (FindInFlight(receipt) == nullptr) return ReceiptCheck::kExpired;
  Remove(entries_.find(receipt.offset));
  return ReceiptCheck::kOk;
}

ReceiptCheck PartitionState::Nack(const Receipt& receipt, absl::Time now,
                                  absl::Duration delay) {
  Entry* entry = FindInFlight(receipt);
  if (entry == nullptr) return ReceiptCheck::kExpired;
  LeaveFlight(receipt.offset, *entry);
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
  deadlines_.erase({entry->deadline, receipt.offset});
  entry->deadline = deadline;
  deadlines_.emplace(deadline, receipt.offset);
  return ReceiptCheck::kOk;
}

ReceiptCheck PartitionState::Reassign(const Receipt& receipt, StreamId stream,
                                      absl::Time deadline) {
  Entry* entry = FindInFlight(receipt);
  if (entry == nullptr) return ReceiptCheck::kExpired;
  by_stream_.erase({entry->stream, receipt.offset});
  entry->stream = stream;
  by_stream_.emplace(stream, receipt.offset);
  return Extend(receipt, deadline);
}

std::vector<int64_t> PartitionState::ExpireDeadlines(absl::Time now) {
  std::vector<int64_t> expired;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const int64_t offset = deadlines_.begin()->second;
    Entry& entry = entries_.find(offset)->second;
    LeaveFlight(offset, entry);
    entry.phase = Phase::kReady;
    ready_.insert(offset);
    expired.push_back(offset);
  }
  std::sort(expired.begin(), expired.end());
  return expired;
}

std::vector<int64_t> PartitionState::ReleaseStream(StreamId stream) {
  std::vector<int64_t> released;
  auto it = by_stream_.lower_bound({stream, std::numeric_limits<int64_t>::min()});
  while (it != by_stream_.end() && it->first == stream) {
    const int64_t offset = it->second;
    Entry& entry = entries_.find(offset)->second;
    deadlines_.erase({entry.deadline, offset});
    it = by_stream_.erase(it);
    entry.phase = Phase::kReady;
    ready_.insert(offset);
    released.push_back(offset);  // by_stream_ is ordered by offset per stream
  }
  return released;
}

void PartitionState::Reset(int64_t next_offset) {
  // A new generation expires every receipt handed out so far, including ones
  // whose offset and attempt will recur after a rewind.
  ++generation_;
  end_offset_ = next_offset;
  buffered_bytes_ = 0;
  entries_.clear();
  ready_.clear();
  delayed_.clear();
  deadlines_.clear();
  by_stream_.clear();
  keys_.clear();
}

int64_t PartitionState::CommitOffset() const {
  return entries_.empty() ? end_offset_ : entries_.begin()->first;
}

size_t PartitionState::in_flight() const { return deadlines_.size(); }

size_t PartitionState::waiting() const { return entries_.size() - deadlines_.size(); }

std::vector<int64_t> PartitionState::WaitingOffsets() const {
  std::vector<int64_t> offsets;
  offsets.reserve(waiting());
  for (const auto& [offset, entry] : entries_) {
    if (entry.phase != Phase::kInFlight) offsets.push_back(offset);
  }
  return offsets;
}

int32_t PartitionState::attempts(int64_t offset) const {
  auto it = entries_.find(offset);
  return it == entries_.end() ? 0 : it->second.attempt;
}

std::optional<absl::Time> PartitionState::NextRedeliveryTime() const {
  if (delayed_.empty()) return std::nullopt;
  return delayed_.begin()->first;
}

}  // namespace ferry::subscribe
