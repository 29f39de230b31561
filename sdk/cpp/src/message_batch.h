// What a MessageBatch holds, and the hand-out of one message of it at a time
// for Subscriber::Next.
#ifndef FERRY_CLIENT_SRC_MESSAGE_BATCH_H_
#define FERRY_CLIENT_SRC_MESSAGE_BATCH_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "ferry/client/subscriber.h"
#include "subscribe_stream.h"

namespace ferry::client::internal {

// The messages of `batch` from `begin` on that were not handed out yet, and
// which of them were settled. Used by one thread at a time.
struct BatchState {
  explicit BatchState(std::shared_ptr<const ReceivedBatch> received)
      : batch(std::move(received)),
        settled(batch->decoded.messages.size(), 0),
        unsettled(settled.size()) {}

  std::span<const ReceivedView> Messages() const {
    return std::span(batch->decoded.messages).subspan(begin);
  }
  // The stream's sequence number of Messages()[i].
  uint64_t Seq(std::size_t i) const { return batch->first_seq + begin + i; }
  bool Settled(std::size_t i) const { return settled[begin + i] != 0; }
  // Marks Messages()[i] settled; false if it already was.
  bool Settle(std::size_t i) {
    if (Settled(i)) return false;
    settled[begin + i] = 1;
    --unsettled;
    return true;
  }

  // Hands Messages()[0] over to whoever settles it from now on (a
  // PulledMessage's handle): returns its index in batch->decoded.messages.
  // Requires !Messages().empty().
  std::size_t TakeFront() {
    Settle(0);
    return begin++;
  }

  // The batch was never handed out (the subscriber closed or failed): its
  // end neither settles nor nacks anything, the node redelivers the messages
  // once the stream ends. A nack would count a delivery attempt.
  void LeaveUnsettled() {
    std::fill(settled.begin(), settled.end(), 1);
    unsettled = 0;
  }

  std::shared_ptr<const ReceivedBatch> batch;
  std::size_t begin = 0;
  std::vector<char> settled;
  // Messages neither settled nor handed out: none left, and a batch's end
  // has nothing to nack.
  std::size_t unsettled;
};

struct BatchAccess {
  // Requires a batch made by the SDK (not default-constructed or moved from).
  static BatchState& State(MessageBatch& batch) { return *batch.state_; }
};

// A batch of all of `received`'s messages.
inline MessageBatch WholeBatch(std::shared_ptr<const ReceivedBatch> received) {
  return MessageBatch(std::make_unique<BatchState>(std::move(received)));
}

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_MESSAGE_BATCH_H_
