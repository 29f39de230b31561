// One published message on its way from Publish() to its result.
#ifndef FERRY_CLIENT_SRC_PENDING_H_
#define FERRY_CLIENT_SRC_PENDING_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "completion.h"
#include "ferry/client/publisher.h"

namespace ferry::client::internal {

using Clock = std::chrono::steady_clock;

// Owned by exactly one place at a time (the publisher's incoming queue, the
// Batcher, an in-flight call), which is what makes "each message resolves
// exactly once" hold: whoever owns it last completes it.
//
// One allocation per message: what is sent (the message already encoded as
// an entry of PublishRequest.messages, publish_wire.h), the topic and the
// ordering key live in bytes right behind the struct. The sender thread walks
// many of these long after they were published (out of the cache), so the
// fields it reads on every batch share a cache line.
struct Pending {
  // A message whose encoding takes `wire_bytes`; `topic` and `order_key` are
  // copied in. Write the encoding to mutable_wire().
  static std::unique_ptr<Pending> New(std::string_view topic, std::string_view order_key,
                                      std::size_t wire_bytes);
  static void operator delete(void* pending) { ::operator delete(pending); }

  Pending(const Pending&) = delete;
  Pending& operator=(const Pending&) = delete;

  // Behind the struct: order key and topic (next to the fields read with
  // them), then the encoding.
  char* mutable_wire() { return reinterpret_cast<char*>(this + 1) + names_bytes_; }
  std::string_view wire() const {
    return {reinterpret_cast<const char*>(this + 1) + names_bytes_, wire_bytes};
  }

  // The Batcher's fields first: one cache line.
  // Publish order over the whole publisher: assigned under the publisher's
  // lock, so it is also the order of `published_at`.
  uint64_t seq = 0;
  // ordering_key if set, else key; empty: the message is unordered.
  std::string_view order_key;
  // Size of wire(), counted against MaxBatchBytes.
  std::size_t wire_bytes = 0;
  Clock::time_point published_at;
  // No retry starts at or after this point (published_at + DeliveryTimeout).
  Clock::time_point deadline;
  // Failed attempts so far, and when the next may start.
  int attempts = 0;
  // The endpoint that was unreachable or timed out on the last attempt; the
  // retry goes elsewhere if it can. -1: none.
  int failed_endpoint = -1;
  Clock::time_point not_before;

  std::string_view topic;
  // Counted against MaxOutstandingBytes.
  std::size_t payload_bytes = 0;
  // The outcome of the last failed attempt; null until there was one.
  std::unique_ptr<PublishResult> last_error;
  // Also inside wire(); kept whole for the result.
  std::string id;
  Completion done;

 private:
  Pending() = default;

  std::size_t names_bytes_ = 0;
};

inline std::unique_ptr<Pending> Pending::New(std::string_view topic,
                                             std::string_view order_key,
                                             std::size_t wire_bytes) {
  void* memory =
      ::operator new(sizeof(Pending) + wire_bytes + topic.size() + order_key.size());
  std::unique_ptr<Pending> pending(new (memory) Pending());
  pending->wire_bytes = wire_bytes;
  pending->names_bytes_ = order_key.size() + topic.size();
  char* tail = reinterpret_cast<char*>(pending.get() + 1);
  if (!order_key.empty()) std::memcpy(tail, order_key.data(), order_key.size());
  pending->order_key = {tail, order_key.size()};
  tail += order_key.size();
  if (!topic.empty()) std::memcpy(tail, topic.data(), topic.size());
  pending->topic = {tail, topic.size()};
  return pending;
}

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_PENDING_H_
