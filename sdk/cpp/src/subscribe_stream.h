// One Subscriber.Subscribe stream to one node: reads message batches, batches
// the acks, nacks and extensions of the messages it delivered, and extends
// the deadlines of messages not settled yet.
#ifndef FERRY_CLIENT_SRC_SUBSCRIBE_STREAM_H_
#define FERRY_CLIENT_SRC_SUBSCRIBE_STREAM_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "ferry/client/subscriber.h"
#include "ferry/v1/subscriber.pb.h"
#include "plain_mutex.h"
#include "subscribe_wire.h"

namespace ferry::client::internal {

using Clock = std::chrono::steady_clock;

// Shared by the subscriber and its streams (and so by handles that outlive
// the subscriber); see SubscriberStats.
struct Counters {
  std::atomic<int64_t> received{0};
  std::atomic<int64_t> acks_sent{0};
  std::atomic<int64_t> nacks_sent{0};
  std::atomic<int64_t> extensions_sent{0};
  std::atomic<int64_t> dropped_settlements{0};
  std::atomic<int64_t> receipt_failures{0};
  std::atomic<int64_t> reconnects{0};
  std::atomic<int> open_streams{0};
};

class SubscribeStream;

// One response's messages as received: the slices gRPC read it into, kept
// alive so that the decoded ReceivedViews can point into them instead of
// copying each field. Immutable once handed to the listener; shared by
// whatever still uses a view (MessageBatch, handler tasks).
struct ReceivedBatch {
  std::vector<grpc::Slice> slices;
  DecodedResponse decoded;
  // The stream that delivered the messages; message i's sequence number on it
  // is first_seq + i.
  std::shared_ptr<SubscribeStream> stream;
  uint64_t first_seq = 0;
};

// What a stream tells its subscriber. Called on gRPC threads, never with the
// stream's lock held except Wake (which must therefore not call the stream).
class StreamListener {
 public:
  virtual ~StreamListener() = default;
  // Messages whose receipts the stream now tracks (deadline extension) under
  // the sequence numbers batch->first_seq, first_seq + 1, ...; the listener
  // settles each of them (or lets its AckHandle or MessageBatch nack it).
  virtual void OnMessages(std::shared_ptr<const ReceivedBatch> batch) = 0;
  virtual void OnReceiptFailures(SubscribeStream* stream,
                                 std::vector<ReceiptFailure> failures) = 0;
  // The stream ended; the last call the stream makes.
  virtual void OnStreamDone(SubscribeStream* stream, grpc::Status status) = 0;
  // Something is due earlier than the last Tick() said.
  virtual void Wake() = 0;
};

struct StreamConfig {
  std::chrono::milliseconds ack_deadline{30'000};
  int max_ack_batch = 500;
  std::chrono::milliseconds max_ack_delay{5};
  std::chrono::milliseconds max_extension{3'600'000};
};

// Threading: the gRPC reactor callbacks, the subscriber's background thread
// (Start, Tick, Close, Cancel) and application threads (Ack, Nack, Extend via
// AckHandle) meet under mu_. mu_ is never held while calling into gRPC,
// because gRPC may run a callback inline.
//
// Lifetime: owned through shared_ptr by the subscriber and by the receipts of
// the messages it delivered. The subscriber keeps it at least until
// OnStreamDone; after that every call is a no-op, so handles may keep it
// longer. A hold keeps gRPC from finishing the call while this object may
// still start a write.
//
// Responses are read as raw bytes and decoded by hand (subscribe_wire.h); a
// response that does not decode ends the stream with INTERNAL naming the
// field, and the subscriber reconnects.
class SubscribeStream
    : public grpc::ClientBidiReactor<ferry::v1::SubscribeRequest, grpc::ByteBuffer>,
      public std::enable_shared_from_this<SubscribeStream> {
 public:
  // Requests are typed, responses raw bytes.
  using Stub = grpc::TemplatedGenericStub<ferry::v1::SubscribeRequest, grpc::ByteBuffer>;

  SubscribeStream(std::size_t endpoint, std::string address, StreamConfig config,
                  StreamListener* listener, std::shared_ptr<Counters> counters);

  // Sends `open` and starts reading. Called once.
  void Start(Stub* stub, const ferry::v1::SubscribeRequest& open);

  std::size_t endpoint() const { return endpoint_; }
  const std::string& address() const { return address_; }
  // True once the node answered `opened`.
  bool opened() const { return opened_.load(); }

  // Settle or extend the message this stream delivered as `seq` (see
  // StreamListener::OnMessages). Batched; dropped and counted once the stream
  // broke or is closing.
  void Ack(uint64_t seq) { AckAll(std::span<const uint64_t>(&seq, 1)); }
  // Many acks under one lock.
  void AckAll(std::span<const uint64_t> seqs);
  void Nack(uint64_t seq, std::chrono::milliseconds delay);
  void Extend(uint64_t seq, std::chrono::milliseconds deadline);

  // Sends the batch if its delay has passed and the extensions that are due.
  // Returns when the next thing will be due (time_point::max(): nothing).
  Clock::time_point Tick(Clock::time_point now);

  // Sends what is pending, then half-closes; the node then ends the stream.
  // Settlements after this are dropped.
  void Close();
  // Ends the stream at once.
  void Cancel() { context_.TryCancel(); }

 private:
  using Request = ferry::v1::SubscribeRequest;

  // Not in a receipt run.
  static constexpr uint64_t kNoRun = UINT64_MAX;

  // A delivered message, by its place in its batch's block. The receipt
  // lives in the block only: the handle names it by sequence number, so
  // delivering and acking copy no receipt and hash no string.
  struct Lease {
    // When the node will redeliver the message, as far as we know.
    Clock::time_point expires;
    // The sequence number of the first message of its receipt run (see
    // runs_), or kNoRun.
    uint64_t run_start = kNoRun;
    // False once acked or nacked (its receipt may still wait in acks_).
    bool unsettled = true;
    // False once automatic extension gave up (MaxExtension) or the node
    // reported the receipt failed: kept only so a late ack is still sent.
    bool extending = true;
  };
  // The receipts and leases of one received batch, kept while a message of
  // it is neither settled nor its ack sent. Leases are indexed by
  // seq - first_seq: settling one is a flag, not a map erase.
  struct ReceiptBlock {
    Receipts receipts;
    uint64_t first_seq = 0;
    Clock::time_point delivered;
    std::vector<Lease> leases;
    // Messages whose receipt is still needed: unsettled or ack pending.
    uint32_t live = 0;
    // Leases still unsettled: the extension and receipt-failure scans skip
    // a block at 0 (its acks may still be pending).
    uint32_t unsettled = 0;
    std::string_view At(uint64_t seq) const { return receipts.At(seq - first_seq); }
  };
  // A v1::ReceiptRun the node sent: consecutive acks of its messages go out
  // as one v1::ReceiptSpan instead of a receipt each.
  struct Run {
    std::string token;
    // Messages of the run whose ack was not taken into a request yet (nor
    // nacked): the token is kept until none is left.
    uint32_t unsent;
  };
  // An ack waiting for the next request.
  struct PendingAck {
    uint64_t seq;
    uint64_t run_start;
    // Holds one of the block's `live`.
    ReceiptBlock* block;
  };
  // An unsettled lease and its block.
  struct Found {
    ReceiptBlock* block;
    Lease* lease;
    // Marks the lease settled.
    void Settle() const {
      lease->unsettled = false;
      --block->unsettled;
    }
  };

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnWritesDoneDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  // False when the response did not decode (the stream is then cancelled).
  bool HandleResponse();
  void HandleMessages(std::shared_ptr<ReceivedBatch> batch);
  void HandleReceiptResults(const DecodedResponse& response);
  // The unsettled lease of `seq`, or {nullptr, nullptr}: a message settled
  // already (a handle settles once) or whose block is gone (the stream
  // stopped accepting, which the callers checked).
  Found FindLocked(uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Calls f(seq, block, lease) for every unsettled lease.
  template <typename F>
  void ForEachUnsettledLocked(F f) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A message of `block` no longer needs its receipt.
  void ReleaseBlockLocked(ReceiptBlock* block) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Extend when 2/3 of the deadline has passed: a third of it is left for
  // the extension to reach the node.
  Clock::duration ExtensionMargin() const { return config_.ack_deadline / 3; }
  // Adds one settlement or extension to the pending batch; sends the batch
  // when it is full. Returns whether the caller must StartWrite(&current_).
  // The caller then calls PlanFlushLocked once.
  bool AddPendingLocked(std::vector<std::string>* list, std::string receipt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The same once the settlement is in its list.
  bool CountPendingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // At the end of a call that added settlements: wakes the background thread
  // if what is left pending is due before its next tick. Once per call, not
  // per settlement, so that a call whose acks all left in full batches
  // wakes nobody.
  void PlanFlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Nack: takes the lease's receipt into `list`. Returns whether the caller
  // must StartWrite(&current_).
  bool SettleLocked(uint64_t seq, std::vector<std::string>* list)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ack: the same into acks_, keeping the message's run.
  bool AckLocked(uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks the runs of a new block on its leases and keeps their tokens.
  void AddRunsLocked(std::vector<DecodedRun>& runs, ReceiptBlock& block)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `n` messages of the run at run_start no longer need its token. With
  // `token`, sets it to the token (moved out at the last use).
  void ReleaseRunLocked(uint64_t run_start, uint32_t n, std::string* token = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The pending acks as one request: spans for consecutive messages of a
  // run, receipts for the rest.
  void TakeAcksLocked(ferry::v1::Acks& acks) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TakePendingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts the next queued write if none is in flight: returns whether the
  // caller must StartWrite(&current_) (after unlocking).
  bool NextWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The stream broke: nothing more is sent; unsent settlements are counted.
  void BreakLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the caller must RemoveHold() (after unlocking).
  bool ReleaseHoldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::size_t endpoint_;
  const std::string address_;
  const StreamConfig config_;
  StreamListener* const listener_;
  const std::shared_ptr<Counters> counters_;

  grpc::ClientContext context_;
  // Owned by the read in flight (one at a time).
  grpc::ByteBuffer response_;
  // Used by OnReadDone only (one read at a time).
  std::vector<std::string_view> pieces_;
  // Why the stream was cancelled, if a response did not decode; set before
  // TryCancel, read in OnDone.
  std::string decode_error_;
  // Owned by the write in flight, while writing_.
  Request current_;
  std::atomic<bool> opened_{false};

  // Taken per ack (MessageBatch::Ack, AckHandle): not an absl::Mutex, whose
  // deadlock detection Debian's Abseil runs on every lock (plain_mutex.h).
  PlainMutex mu_;
  // Settlements and extensions are accepted (not broken, not closing).
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  // By first_seq (ordered: a sequence number's block is the last one that
  // starts at or before it). The next message gets next_seq_.
  std::map<uint64_t, std::unique_ptr<ReceiptBlock>> blocks_ ABSL_GUARDED_BY(mu_);
  // The block FindLocked found last (settlements come mostly in order), or
  // null.
  ReceiptBlock* recent_block_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // No lease is due for extension before this (it may be earlier than the
  // first that is: Tick() then scans and sets it exactly).
  Clock::time_point next_extension_ ABSL_GUARDED_BY(mu_) = Clock::time_point::max();
  // The background thread calls Tick() by this time without a Wake().
  Clock::time_point next_tick_ ABSL_GUARDED_BY(mu_) = Clock::time_point::max();
  // By the sequence number of their first message.
  absl::flat_hash_map<uint64_t, Run> runs_ ABSL_GUARDED_BY(mu_);
  std::vector<PendingAck> acks_ ABSL_GUARDED_BY(mu_);
  std::map<std::chrono::milliseconds, std::vector<std::string>> nacks_
      ABSL_GUARDED_BY(mu_);
  std::map<std::chrono::milliseconds, std::vector<std::string>> extensions_
      ABSL_GUARDED_BY(mu_);
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  Clock::time_point oldest_pending_ ABSL_GUARDED_BY(mu_);
  std::deque<Request> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool half_close_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_released_ ABSL_GUARDED_BY(mu_) = false;
};

// What an AckHandle holds: the stream that delivered the message and the
// message's sequence number on it.
struct Receipt {
  std::shared_ptr<SubscribeStream> stream;
  uint64_t seq = 0;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_SUBSCRIBE_STREAM_H_
