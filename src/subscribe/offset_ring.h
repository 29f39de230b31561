#pragma once

// Values keyed by the offsets of one partition, as the subscribe path buffers
// them: appended in increasing offset order (gaps allowed: compacted topics,
// transaction markers), found by offset, erased in any order. A sorted
// RingBuffer instead of a tree: no allocation per value, and a lookup is one
// index computation while the offsets are dense (binary search past a gap).
//
// An erased value is reset at once (freeing what it holds); its slot stays
// until every slot before it is erased too, or until erased slots outnumber
// live ones (then they are dropped in one pass). So one value that stays
// (a message in flight for an hour) cannot make the ring grow with
// everything appended after it: at most about twice the live values' slots.
//
// Threading: not thread-safe. Cost: Append, Erase amortized O(1); Find O(1)
// without gaps, O(log n) otherwise; ForEach O(n) over the slots. Pointers
// from Find() stay valid until the next Append(), Erase(), Clear() or Trim().
//
// Usage:
//
//   OffsetRing<Entry> ring;
//   ring.Append(42, Entry{...});
//   if (Entry* entry = ring.Find(42)) ...;
//   ring.Erase(42);

#include <cstddef>
#include <cstdint>
#include <utility>

#include "subscribe/ring_buffer.h"

namespace ferry::subscribe {

template <typename T>
class OffsetRing {
 public:
  // `offset` must be above every offset appended since the last Clear().
  T& Append(int64_t offset, T value) {
    ++live_;
    slots_.push_back({.offset = offset, .live = true, .value = std::move(value)});
    return slots_.back().value;
  }

  // The live value at `offset`, or null (never appended, or erased).
  T* Find(int64_t offset) { return const_cast<T*>(std::as_const(*this).Find(offset)); }
  const T* Find(int64_t offset) const {
    const Slot* slot = Locate(offset);
    return slot == nullptr || !slot->live ? nullptr : &slot->value;
  }

  // Erases the value at `offset`; no-op if there is none.
  void Erase(int64_t offset) {
    Slot* slot = const_cast<Slot*>(Locate(offset));
    if (slot == nullptr || !slot->live) return;
    --live_;
    if (slot != &slots_.front()) {
      slot->live = false;
      slot->value = T{};
      if (slots_.size() > kMinSlotsToCompact && slots_.size() > 2 * live_) {
        slots_.RemoveIf([](const Slot& s) { return !s.live; });
      }
      return;
    }
    // Acks come mostly in offset order: the value goes with its slot.
    slots_.pop_front();
    while (!slots_.empty() && !slots_.front().live) slots_.pop_front();
  }

  size_t size() const { return live_; }
  // Slots held, live or erased (memory: at most about 2 * size() + 1024).
  size_t slot_count() const { return slots_.size(); }
  bool empty() const { return live_ == 0; }
  // The lowest live offset. Not empty().
  int64_t front_offset() const { return slots_.front().offset; }

  // Calls fn(offset, value) for every live value, in offset order.
  template <typename Fn>
  void ForEach(Fn fn) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].live) fn(slots_[i].offset, slots_[i].value);
    }
  }
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].live) fn(slots_[i].offset, slots_[i].value);
    }
  }

  // Calls fn(offset, value) for every live value at or above `offset`, in
  // offset order, while fn returns true.
  template <typename Fn>
  void ForEachFrom(int64_t offset, Fn fn) {
    ForEachFromIn(*this, offset, fn);
  }
  template <typename Fn>
  void ForEachFrom(int64_t offset, Fn fn) const {
    ForEachFromIn(*this, offset, fn);
  }

  void Clear() {
    slots_.clear();
    live_ = 0;
  }

  // Gives back slots the ring did not need since the last Trim() (see
  // RingBuffer::Trim). Pointers from Find() are invalidated.
  void Trim() { slots_.Trim(); }

 private:
  struct Slot {
    int64_t offset = -1;
    bool live = false;
    T value;
  };

  // The slot of `offset`, live or erased, or null. The front slot is always
  // live, so front_offset() is the lowest live offset.
  const Slot* Locate(int64_t offset) const {
    if (slots_.empty() || offset < slots_.front().offset) return nullptr;
    const auto distance = static_cast<uint64_t>(offset - slots_.front().offset);
    if (distance < slots_.size() && slots_[distance].offset == offset) {
      return &slots_[distance];  // no gap before it
    }
    const size_t i = LowerBound(offset);
    return i < slots_.size() && slots_[i].offset == offset ? &slots_[i] : nullptr;
  }

  // The index of the first slot at or above `offset` (slots_.size(): none).
  size_t LowerBound(int64_t offset) const {
    size_t low = 0, high = slots_.size();
    while (low < high) {
      const size_t mid = low + (high - low) / 2;
      if (slots_[mid].offset < offset) {
        low = mid + 1;
      } else {
        high = mid;
      }
    }
    return low;
  }

  // ForEachFrom for a ring and a const ring.
  template <typename Ring, typename Fn>
  static void ForEachFromIn(Ring& ring, int64_t offset, Fn& fn) {
    for (size_t i = ring.LowerBound(offset); i < ring.slots_.size(); ++i) {
      auto& slot = ring.slots_[i];
      if (slot.live && !fn(slot.offset, slot.value)) return;
    }
  }

  // Below this many slots erased ones are left to the front to drop.
  static constexpr size_t kMinSlotsToCompact = 1024;

  RingBuffer<Slot> slots_;
  size_t live_ = 0;
};

}  // namespace ferry::subscribe
