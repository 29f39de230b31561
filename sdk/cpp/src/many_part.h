// A PublishMany call on its way to its result: the call's shared state
// (ManyCall) and the parts it is sent in (ManyPart), one request each.
#ifndef FERRY_CLIENT_SRC_MANY_PART_H_
#define FERRY_CLIENT_SRC_MANY_PART_H_

#include <grpcpp/support/slice.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "completion.h"
#include "ferry/client/publisher.h"
#include "pending.h"

namespace ferry::client::internal {

// Records message `index`'s outcome in `result` (whose cluster and error
// lists it may extend).
void RecordSuccess(PublishManyResult* result, std::size_t index, std::string_view cluster,
                   int32_t partition, int64_t offset, bool direct = false);
// `endpoint`: the node the failing request went to (empty: none was tried).
void RecordFailure(PublishManyResult* result, std::size_t index, int code, bool retryable,
                   std::string_view error, bool direct = false,
                   std::string_view endpoint = {});

// The outcomes of one PublishMany call, written by whoever resolves a part
// (the sender thread; the calling thread for what fails at once), and its
// completion, run by whoever releases the last hold.
//
// Holds: the calling thread holds one while it splits the call into parts,
// and each part one until every message in it has its final outcome, so
// the completion runs exactly once, after the last outcome was written.
class ManyCall {
 public:
  // `result` has an outcome slot and an id per message.
  ManyCall(ManyCompletion done, PublishManyResult result)
      : result_(std::move(result)), done_(std::move(done)) {}

  void Hold() { holds_.fetch_add(1, std::memory_order_relaxed); }
  // Releases a hold; the last one completes the call (on this thread).
  void Release();

  // Message `index`'s outcome, under one lock per group of messages.
  class ABSL_SCOPED_LOCKABLE Writer {
   public:
    explicit Writer(ManyCall& call) ABSL_EXCLUSIVE_LOCK_FUNCTION(call.mu_);
    ~Writer() ABSL_UNLOCK_FUNCTION();
    void Succeeded(std::size_t index, std::string_view cluster, int32_t partition,
                   int64_t offset, bool direct = false) {
      RecordSuccess(&call_.result_, index, cluster, partition, offset, direct);
    }
    void Failed(std::size_t index, int code, bool retryable, std::string_view error,
                bool direct = false, std::string_view endpoint = {}) {
      RecordFailure(&call_.result_, index, code, retryable, error, direct, endpoint);
    }
    // The message failed before: the text of its last error; empty if not.
    std::string_view LastError(std::size_t index) const;

   private:
    ManyCall& call_;
  };

 private:
  absl::Mutex mu_;
  PublishManyResult result_ ABSL_GUARDED_BY(mu_);
  std::atomic<std::size_t> holds_{1};
  ManyCompletion done_;
};

// A slice of a PublishMany call sent as one request: the request is encoded
// once, when the call is made, and sent as it is (a retry sends the failed
// messages' bytes again, so also their ids).
//
// Owned by one place at a time (the publisher's incoming queue, the
// Batcher, an in-flight call), like Pending.
struct ManyPart {
  // The Batcher's fields.
  // Publish order over the whole publisher (one seq for the part).
  uint64_t seq = 0;
  std::string topic;
  // Per message with an ordering key (else key): that key, viewing `request`.
  // Read (and let go) by Batcher::AddPart.
  std::vector<std::string_view> order_keys;
  // The distinct order_keys, filled by Batcher::AddPart: the keys the part
  // holds from when it may be sent until it is done. Copied out of the
  // request with their hashes: a part is released long after it was
  // published, when its request is out of the cache, and views into it cost
  // a cache miss per key; these are a few sequential lines.
  struct HeldKey {
    // The Batcher's key map's hash of the key.
    std::size_t hash = 0;
    // Where the key is in held_key_bytes.
    uint32_t begin = 0;
    uint32_t size = 0;
  };
  std::vector<HeldKey> held_keys;
  std::string held_key_bytes;
  std::string_view KeyOf(const HeldKey& key) const {
    return std::string_view(held_key_bytes).substr(key.begin, key.size);
  }
  // Keys it still waits for (Batcher).
  std::size_t keys_to_grant = 0;
  Clock::time_point published_at;
  // No attempt starts at or after this (published_at + DeliveryTimeout).
  Clock::time_point deadline;
  int attempts = 0;
  Clock::time_point not_before;
  // The endpoint that failed the last attempt as a node; -1: none.
  int failed_endpoint = -1;

  // The sender's fields.
  // The PublishRequest of every message: header, the messages' fields, then
  // the trailer (request fields after `messages`).
  grpc::Slice request;
  std::size_t header_bytes = 0;
  std::size_t trailer_bytes = 0;
  // End of message i's field in `request`; it starts where i - 1's ends
  // (message 0: at header_bytes).
  std::vector<uint32_t> field_ends;
  // The messages (indexes into field_ends) of the next or current attempt.
  std::vector<uint32_t> sending;
  // Counted against MaxOutstandingBytes.
  std::size_t payload_bytes = 0;
  std::shared_ptr<ManyCall> call;
  // The call's index of this part's message 0.
  std::size_t first = 0;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_MANY_PART_H_
