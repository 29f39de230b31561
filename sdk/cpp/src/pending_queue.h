// A FIFO of Pending messages: a ring of pointers.
#ifndef FERRY_CLIENT_SRC_PENDING_QUEUE_H_
#define FERRY_CLIENT_SRC_PENDING_QUEUE_H_

#include <cstdint>
#include <memory>
#include <utility>

#include "pending.h"

namespace ferry::client::internal {

// Owns its messages. Moving messages in and out touches only the ring, not
// the messages: a key's messages wait here while up to MaxOutstandingBytes
// of others are published, so by the time they leave they are out of the
// cache, and a list linked through them cost a cache miss per message just to
// find the next one. An empty queue allocates nothing. Not thread-safe.
class PendingQueue {
 public:
  PendingQueue() = default;
  PendingQueue(PendingQueue&& other) noexcept
      : slots_(std::move(other.slots_)),
        capacity_(std::exchange(other.capacity_, 0)),
        head_(std::exchange(other.head_, 0)),
        size_(std::exchange(other.size_, 0)) {}
  PendingQueue& operator=(PendingQueue&& other) noexcept {
    if (this != &other) {
      Clear();
      slots_ = std::move(other.slots_);
      capacity_ = std::exchange(other.capacity_, 0);
      head_ = std::exchange(other.head_, 0);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~PendingQueue() { Clear(); }

  bool empty() const { return size_ == 0; }

  void push_back(std::unique_ptr<Pending> message) {
    MakeRoom();
    slots_[(head_ + size_) & (capacity_ - 1)] = message.release();
    ++size_;
  }

  void push_front(std::unique_ptr<Pending> message) {
    MakeRoom();
    head_ = (head_ + capacity_ - 1) & (capacity_ - 1);
    slots_[head_] = message.release();
    ++size_;
  }

  // Must not be empty.
  std::unique_ptr<Pending> pop_front() {
    std::unique_ptr<Pending> first(slots_[head_]);
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
    // The next one leaves with the key's next batch: start fetching it now.
    if (size_ > 0) __builtin_prefetch(slots_[head_]);
    return first;
  }

 private:
  // Capacity is a power of two (index arithmetic by mask), doubled when full.
  void MakeRoom() {
    if (size_ < capacity_) return;
    const uint32_t capacity = capacity_ == 0 ? 4 : capacity_ * 2;
    auto slots = std::make_unique<Pending*[]>(capacity);
    for (uint32_t i = 0; i < size_; ++i) slots[i] = slots_[(head_ + i) & (capacity_ - 1)];
    slots_ = std::move(slots);
    capacity_ = capacity;
    head_ = 0;
  }

  void Clear() {
    while (!empty()) pop_front();
  }

  std::unique_ptr<Pending*[]> slots_;
  uint32_t capacity_ = 0;
  uint32_t head_ = 0;
  uint32_t size_ = 0;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_PENDING_QUEUE_H_
