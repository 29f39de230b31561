// One published message on its way from Publish() to its result.
#ifndef FERRY_CLIENT_SRC_PENDING_H_
#define FERRY_CLIENT_SRC_PENDING_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "completion.h"
#include "ferry/client/publisher.h"
#include "ferry/v1/publisher.pb.h"

namespace ferry::client::internal {

using Clock = std::chrono::steady_clock;

// Owned by exactly one place at a time (the publisher's incoming queue, the
// Batcher, an in-flight call), which is what makes "each message resolves
// exactly once" hold: whoever owns it last completes it.
struct Pending {
  // Publish order over the whole publisher: assigned under the publisher's
  // lock, so it is also the order of `published_at`.
  uint64_t seq = 0;
  std::string topic;
  // ordering_key if set, else key; empty: the message is unordered.
  std::string order_key;
  // What is sent. Swapped into the request while in flight and back after.
  ferry::v1::OutgoingMessage proto;
  // Counted against MaxOutstandingBytes.
  std::size_t payload_bytes = 0;
  // Serialized size, counted against MaxBatchBytes.
  std::size_t wire_bytes = 0;
  Clock::time_point published_at;
  // No retry starts at or after this point (published_at + DeliveryTimeout).
  Clock::time_point deadline;
  // Failed attempts so far, and when the next may start.
  int attempts = 0;
  Clock::time_point not_before;
  // The outcome of the last failed attempt; null until there was one (a
  // pointer keeps the struct small: the sender thread walks many of them).
  std::unique_ptr<PublishResult> last_error;
  // The endpoint that was unreachable or timed out on the last attempt; the
  // retry goes elsewhere if it can. -1: none.
  int failed_endpoint = -1;
  Completion done;
  // The next message of the same key while both wait in a PendingQueue.
  Pending* next_in_queue = nullptr;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_PENDING_H_
