// FIFOs of pointers: a ring (PointerRing) and the owning queue of Pending
// messages built on it (PendingQueue).
#ifndef FERRY_CLIENT_SRC_PENDING_QUEUE_H_
#define FERRY_CLIENT_SRC_PENDING_QUEUE_H_

#include <cstdint>
#include <memory>
#include <utility>

#include "pending.h"

namespace ferry::client::internal {

// A FIFO of T* that owns nothing. An empty ring allocates nothing; capacity
// is a power of two (index arithmetic by mask), doubled when full. Not
// thread-safe.
template <typename T>
class PointerRing {
 public:
  PointerRing() = default;
  PointerRing(PointerRing&& other) noexcept { *this = std::move(other); }
  PointerRing& operator=(PointerRing&& other) noexcept {
    if (this != &other) {
      slots_ = std::move(other.slots_);
      capacity_ = std::exchange(other.capacity_, 0);
      head_ = std::exchange(other.head_, 0);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }

  bool empty() const { return size_ == 0; }

  void push_back(T* item) {
    MakeRoom();
    slots_[(head_ + size_) & (capacity_ - 1)] = item;
    ++size_;
  }

  void push_front(T* item) {
    MakeRoom();
    head_ = (head_ + capacity_ - 1) & (capacity_ - 1);
    slots_[head_] = item;
    ++size_;
  }

  // These three: must not be empty.
  T* front() const { return slots_[head_]; }
  T* back() const { return slots_[(head_ + size_ - 1) & (capacity_ - 1)]; }
  T* pop_front() {
    T* first = slots_[head_];
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
    // The next one leaves with its key's next batch: start fetching it now.
    if (size_ > 0) __builtin_prefetch(slots_[head_]);
    return first;
  }

 private:
  void MakeRoom() {
    if (size_ < capacity_) return;
    const uint32_t capacity = capacity_ == 0 ? 4 : capacity_ * 2;
    auto slots = std::make_unique<T*[]>(capacity);
    for (uint32_t i = 0; i < size_; ++i) slots[i] = slots_[(head_ + i) & (capacity_ - 1)];
    slots_ = std::move(slots);
    capacity_ = capacity;
    head_ = 0;
  }

  std::unique_ptr<T*[]> slots_;
  uint32_t capacity_ = 0;
  uint32_t head_ = 0;
  uint32_t size_ = 0;
};

// A FIFO of Pending messages that owns them. Moving messages in and out
// touches only the ring, not the messages: a key's messages wait here while
// up to MaxOutstandingBytes of others are published, so by the time they
// leave they are out of the cache, and a list linked through them cost a
// cache miss per message just to find the next one.
class PendingQueue {
 public:
  PendingQueue() = default;
  PendingQueue(PendingQueue&& other) noexcept = default;
  PendingQueue& operator=(PendingQueue&& other) noexcept {
    if (this != &other) {
      Clear();
      ring_ = std::move(other.ring_);
    }
    return *this;
  }
  ~PendingQueue() { Clear(); }

  bool empty() const { return ring_.empty(); }

  void push_back(std::unique_ptr<Pending> message) { ring_.push_back(message.release()); }
  void push_front(std::unique_ptr<Pending> message) {
    ring_.push_front(message.release());
  }

  // Must not be empty.
  const Pending& front() const { return *ring_.front(); }
  std::unique_ptr<Pending> pop_front() {
    return std::unique_ptr<Pending>(ring_.pop_front());
  }

 private:
  void Clear() {
    while (!empty()) pop_front();
  }

  PointerRing<Pending> ring_;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_PENDING_QUEUE_H_
