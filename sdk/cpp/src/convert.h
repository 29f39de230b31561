// Conversions between the SDK's public types and the ferry.v1 protos, and
// message ids.
#ifndef FERRY_CLIENT_SRC_CONVERT_H_
#define FERRY_CLIENT_SRC_CONVERT_H_

#include <cstddef>
#include <span>
#include <string>

#include "ferry/client/publisher.h"
#include "publish_wire.h"

namespace ferry::client::internal {

// Random 128-bit ids as 32 lowercase hex digits. Thread-safe without a
// lock: each thread draws from its own engine, seeded from
// std::random_device on the thread's first id (a lock per Publish showed in
// the per-message profile).
class IdGenerator {
 public:
  std::string Next();
  // The result of a PublishMany call of `messages` before any outcome: a
  // slot per message and their ids, each the message's own, else a new one.
  PublishManyResult NewResult(std::span<const MessageView> messages);
};

// Bytes of a message counted against MaxOutstandingBytes: key, ordering key,
// value and header keys and values.
std::size_t PayloadBytes(const MessageView& message);
inline std::size_t PayloadBytes(const Message& message) {
  return PayloadBytes(ViewOf(message));
}

// The result of a message the node answered; `id` is the message's, used
// when the node echoed none, and then moved into the result when it
// succeeded (the message is done then). `retryable` is the node's decision
// (Retryable with its flag).
// Written into *written (a default PublishResult), in place: it is built
// once per message and moved once, into the completion.
void FromWire(const ResultView& result, std::string* id, PublishResult* written);

// A failure the node did not describe with a ferry.v1.Status (a failed call,
// an unreachable node, the SDK's own checks and limits): `retryable` is
// decided from `code` by Retryable (retry.h).
PublishResult Failure(int code, std::string error, std::string id);

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_CONVERT_H_
