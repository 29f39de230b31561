#pragma once

// One subscriber stream's flow-control credit: the messages and bytes it
// holds unacked against the limits it asked for. A stream may take one more
// message while it is below both limits, so a message larger than the byte
// limit still goes out (alone) instead of blocking the stream for good.
//
// Threading: not thread-safe (used under the dispatcher's lock). Cost: O(1).

#include <cstdint>

namespace ferry::subscribe {

class StreamCredit {
 public:
  StreamCredit(int64_t max_messages, int64_t max_bytes)
      : max_messages_(max_messages), max_bytes_(max_bytes) {}

  bool available() const { return messages_ < max_messages_ && bytes_ < max_bytes_; }
  // A message of `bytes` was handed to the stream / left it (acked, nacked,
  // expired, released).
  void Take(int64_t bytes) {
    messages_ += 1;
    bytes_ += bytes;
  }
  void Give(int64_t bytes) {
    messages_ -= 1;
    bytes_ -= bytes;
  }
  // New limits from the client; a limit <= 0 keeps the current one.
  void SetLimits(int64_t max_messages, int64_t max_bytes) {
    if (max_messages > 0) max_messages_ = max_messages;
    if (max_bytes > 0) max_bytes_ = max_bytes;
  }

  int64_t messages() const { return messages_; }
  int64_t bytes() const { return bytes_; }

 private:
  int64_t max_messages_;
  int64_t max_bytes_;
  int64_t messages_ = 0;
  int64_t bytes_ = 0;
};

}  // namespace ferry::subscribe
