// A FIFO of Pending messages linked through Pending::next_in_queue.
#ifndef FERRY_CLIENT_SRC_PENDING_QUEUE_H_
#define FERRY_CLIENT_SRC_PENDING_QUEUE_H_

#include <memory>
#include <utility>

#include "pending.h"

namespace ferry::client::internal {

// Owns its messages. Unlike a std::deque, an empty queue allocates nothing:
// the Batcher creates and drops one per ordering key with every batch of
// that key, so this is on the per-message path. Not thread-safe.
class PendingQueue {
 public:
  PendingQueue() = default;
  PendingQueue(PendingQueue&& other) noexcept
      : head_(std::exchange(other.head_, nullptr)),
        tail_(std::exchange(other.tail_, nullptr)) {}
  PendingQueue& operator=(PendingQueue&& other) noexcept {
    if (this != &other) {
      Clear();
      head_ = std::exchange(other.head_, nullptr);
      tail_ = std::exchange(other.tail_, nullptr);
    }
    return *this;
  }
  ~PendingQueue() { Clear(); }

  bool empty() const { return head_ == nullptr; }

  void push_back(std::unique_ptr<Pending> message) {
    Pending* raw = message.release();
    raw->next_in_queue = nullptr;
    if (tail_ == nullptr) {
      head_ = raw;
    } else {
      tail_->next_in_queue = raw;
    }
    tail_ = raw;
  }

  void push_front(std::unique_ptr<Pending> message) {
    Pending* raw = message.release();
    raw->next_in_queue = head_;
    head_ = raw;
    if (tail_ == nullptr) tail_ = raw;
  }

  // Must not be empty.
  std::unique_ptr<Pending> pop_front() {
    std::unique_ptr<Pending> first(head_);
    head_ = first->next_in_queue;
    if (head_ == nullptr) tail_ = nullptr;
    first->next_in_queue = nullptr;
    return first;
  }

 private:
  // A loop, not a chain of destructors: a key may hold very many messages.
  void Clear() {
    while (!empty()) pop_front();
  }

  Pending* head_ = nullptr;
  Pending* tail_ = nullptr;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_PENDING_QUEUE_H_
