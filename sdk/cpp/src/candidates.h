// The messages a batch may take next, in publish (seq) order.
#ifndef FERRY_CLIENT_SRC_CANDIDATES_H_
#define FERRY_CLIENT_SRC_CANDIDATES_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "pending.h"
#include "pending_queue.h"

namespace ferry::client::internal {

// An owning set of Pending messages taken out lowest seq first.
//
// Most messages arrive in seq order (a newly published message is the
// newest): those go to the back of a FIFO ring, O(1) and without allocation.
// Only a message older than the ring's newest (one that waited behind its key
// or its retry backoff) goes to a min-heap of (seq, message) pairs, which
// compares without touching the messages. Pop takes the lower of the two
// heads.
//
// Not thread-safe.
class Candidates {
 public:
  Candidates() = default;
  Candidates(const Candidates&) = delete;
  Candidates& operator=(const Candidates&) = delete;
  ~Candidates() {
    for (const Entry& entry : older_) delete entry.message;
  }

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  // Sum of wire_bytes.
  std::size_t bytes() const { return bytes_; }
  // Messages with attempts > 0.
  std::size_t retries() const { return retries_; }

  void Push(std::unique_ptr<Pending> message) {
    const std::size_t wire_bytes = message->wire_bytes;
    const bool retry = message->attempts > 0;
    if (in_order_.empty() || message->seq > newest_in_order_) {
      newest_in_order_ = message->seq;
      in_order_.push_back(std::move(message));
    } else {
      // Released only once the entry is in: a failed allocation leaves the
      // message with the caller's unique_ptr.
      older_.push_back({message->seq, message.get()});
      message.release();
      std::push_heap(older_.begin(), older_.end(), std::greater<>());
    }
    ++size_;
    bytes_ += wire_bytes;
    if (retry) ++retries_;
  }

  // These two: must not be empty. The message with the lowest seq.
  const Pending& front() const {
    return FromRing() ? in_order_.front() : *older_.front().message;
  }
  std::unique_ptr<Pending> Pop() {
    std::unique_ptr<Pending> message;
    if (FromRing()) {
      message = in_order_.pop_front();
    } else {
      std::pop_heap(older_.begin(), older_.end(), std::greater<>());
      message.reset(older_.back().message);
      older_.pop_back();
    }
    --size_;
    bytes_ -= message->wire_bytes;
    if (message->attempts > 0) --retries_;
    return message;
  }

  // The lowest seq; UINT64_MAX when empty.
  uint64_t front_seq() const {
    if (empty()) return UINT64_MAX;
    return FromRing() ? in_order_.front().seq : older_.front().seq;
  }

  // Removes every message, in no particular order.
  void TakeAll(std::vector<std::unique_ptr<Pending>>* all) {
    while (!in_order_.empty()) all->push_back(in_order_.pop_front());
    for (const Entry& entry : older_) all->emplace_back(entry.message);
    older_.clear();
    size_ = bytes_ = retries_ = 0;
  }

 private:
  struct Entry {
    uint64_t seq;
    Pending* message;  // owned
    bool operator>(const Entry& other) const { return seq > other.seq; }
  };

  // Non-empty: whether the lowest seq is the ring's.
  bool FromRing() const {
    return older_.empty() ||
           (!in_order_.empty() && in_order_.front().seq < older_.front().seq);
  }

  PendingQueue in_order_;
  uint64_t newest_in_order_ = 0;
  std::vector<Entry> older_;
  std::size_t size_ = 0;
  std::size_t bytes_ = 0;
  std::size_t retries_ = 0;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_CANDIDATES_H_
