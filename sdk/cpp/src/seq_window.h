// Which of a stream of sequence numbers are still unresolved.
#ifndef FERRY_CLIENT_SRC_SEQ_WINDOW_H_
#define FERRY_CLIENT_SRC_SEQ_WINDOW_H_

#include <cstdint>
#include <deque>

namespace ferry::client::internal {

// Tracks sequence numbers handed out in increasing order (1, 2, 3, ...) and
// resolved in any order, and answers "what is the lowest unresolved one?" in
// O(1). Add and Resolve are amortized O(1): a deque of flags from the lowest
// unresolved number to the highest added one, trimmed at the front as the
// lowest ones resolve. Its size is the spread between the oldest unresolved
// and the newest message, not the number in flight.
//
// Not thread-safe; the publisher guards it with its mutex.
class SeqWindow {
 public:
  // Registers the next sequence number; returns it.
  uint64_t Add() {
    resolved_.push_back(false);
    return low_ + resolved_.size() - 1;
  }

  // Marks `seq` (returned by Add, not resolved yet) resolved.
  void Resolve(uint64_t seq) {
    resolved_[seq - low_] = true;
    while (!resolved_.empty() && resolved_.front()) {
      resolved_.pop_front();
      ++low_;
    }
  }

  // The lowest unresolved sequence number; the next Add's number if none.
  uint64_t LowestUnresolved() const { return low_; }

  // The next number Add will return.
  uint64_t next() const { return low_ + resolved_.size(); }

 private:
  uint64_t low_ = 1;
  std::deque<bool> resolved_;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_SEQ_WINDOW_H_
