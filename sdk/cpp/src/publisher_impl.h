// Publisher::Impl: the sender thread and its gRPC calls.
#ifndef FERRY_CLIENT_SRC_PUBLISHER_IMPL_H_
#define FERRY_CLIENT_SRC_PUBLISHER_IMPL_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "batcher.h"
#include "common/stage_trace.h"
#include "convert.h"
#include "endpoints.h"
#include "ferry/client/publisher.h"
#include "ferry/v1/publisher.grpc.pb.h"
#include "many_part.h"
#include "options.h"
#include "pending.h"
#include "plain_mutex.h"
#include "publish_wire.h"
#include "seq_window.h"
#include "settings_follower.h"

namespace ferry::client {

// Threading: Publish() and Flush() run on application threads and only touch
// the state under mu_. One sender thread owns everything else (the Batcher,
// endpoint health, in-flight calls): it moves new messages into the Batcher,
// starts calls, handles finished calls, retries and completes futures. gRPC
// callbacks only store the call's status and queue the call for the sender
// thread under mu_, so they never block and never run SDK logic. mu_ is never
// held while calling into gRPC (a callback may run inline), nor while futures
// are completed (hundreds per batch; Publish callers would wait for them).
class Publisher::Impl {
 public:
  explicit Impl(internal::PublisherOptions options);
  ~Impl();

  // Queues the message (encoded here: nothing of `message` is kept); `done`
  // gets its result (inline when it fails at once).
  void Publish(std::string_view topic, const Message& message, internal::Completion done);
  // Encodes the messages into parts and queues them; `done` gets the call's
  // result (inline when every message failed at once).
  void PublishMany(std::string_view topic, std::span<const MessageView> messages,
                   internal::ManyCompletion done);
  bool Flush(std::chrono::milliseconds timeout);
  // Batches built and messages published from now on use `settings`
  // (pushed by the nodes); the sender thread picks them up at its next turn.
  void ApplySettings(const internal::NodePathSettings& settings);
  // Batch calls started (retries included).
  uint64_t batches() const { return batches_.load(); }
  // The node path's counters and the settings in effect.
  PublisherStats Stats() const;

 private:
  using Clock = internal::Clock;
  using Pending = internal::Pending;
  using Resolutions = std::vector<std::pair<std::unique_ptr<Pending>, PublishResult>>;
  using ManyPart = internal::ManyPart;
  using Parts = std::vector<std::unique_ptr<ManyPart>>;

  struct Endpoint {
    std::string address;
    // Publisher.Publish with request and response as bytes, written and read
    // by hand (publish_wire.h).
    std::unique_ptr<grpc::GenericStub> stub;
  };

  // One batch (or part) on the wire. Owned by in_flight_ from Start() until
  // Finish().
  struct Call {
    std::size_t endpoint = 0;
    std::string topic;
    std::vector<std::string> keys;
    // Request order.
    std::vector<std::unique_ptr<Pending>> messages;
    // Instead of `messages`: a part of a PublishMany call (its `sending`).
    std::unique_ptr<ManyPart> part;
    grpc::ClientContext context;
    // The request's header and the messages' wire() back to back.
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
    // Written by the gRPC callback before it queues the call under mu_.
    grpc::Status status;
    // With a stage trace only: when the request was handed to gRPC and when
    // its answer came back (the callback).
    int64_t sent_ns = 0;
    int64_t answered_ns = 0;
  };
  // With a stage trace only: a finished message's stamps, written once its
  // future is complete.
  struct TraceRow {
    std::string batch;  // The id of the batch's first message (ferryd's key).
    std::size_t messages = 1;
    int64_t published_ns = 0, sent_ns = 0, answered_ns = 0, picked_ns = 0;
    int attempts = 0;
    bool behind_key = false;
  };

  // The sender thread's loop; returns once closing and nothing is in flight.
  void Run();
  void Start(internal::Batch batch, Clock::time_point now);
  // Starts the call (request and endpoint set) and keeps it in in_flight_.
  void Send(std::unique_ptr<Call> call);
  // gRPC callback thread.
  void OnCallDone(Call* call, grpc::Status status);
  void Finish(Call* call, Clock::time_point now, bool closing, Resolutions* done,
              Parts* parts_done);
  // Retries `message` after a retryable `error` if its deadline allows, else
  // resolves it with `error`.
  void Failed(std::unique_ptr<Pending> message, PublishResult error,
              Clock::time_point now, bool closing,
              std::vector<std::unique_ptr<Pending>>* retries, Resolutions* done);
  // Releases the messages' bytes, completes their futures, then lets Flush
  // waiters see them resolved; the same for finished parts.
  void Resolve(Resolutions* done, Parts* parts);
  // With a stage trace: keep a row, for Resolve to write once it has
  // completed them, for a MessageBatch part the node answered and for a
  // message of `call` the node acknowledged.
  void TracePart(const Call& call, Clock::time_point picked);
  void TraceAcknowledged(const Call& call, const std::string& batch_id,
                         const Pending& message, Clock::time_point picked);
  void WriteTrace();

  // PublishMany's steps on the calling thread: queues `part` (waiting for
  // room as Publish does) or fails its messages at once.
  void Enqueue(std::unique_ptr<ManyPart> part);

  // Why Admit turned an item away, and the item, to fail.
  template <typename Item>
  struct Refusal {
    std::unique_ptr<Item> item;
    int code = 0;
    std::string error;
  };
  // Publish's and PublishMany's admission of a Pending or a ManyPart: waits
  // for room under MaxOutstandingBytes (BlockWhenFull; else refuses with
  // RESOURCE_EXHAUSTED at once), refuses with UNAVAILABLE once closing, and
  // otherwise gives the item its seq, times and bytes and queues it for the
  // sender thread.
  template <typename Item>
  std::optional<Refusal<Item>> Admit(std::unique_ptr<Item> item);
  // The sender thread's incoming queue for the item's kind. True: the
  // caller notifies sender_cv_ (after unlocking mu_, so that the woken
  // sender does not block on it at once).
  [[nodiscard]] bool IncomingFor(std::unique_ptr<Pending> message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool wake = sender_asleep_ && !wake_ && WakeSenderFor(*message);
    incoming_.push_back(std::move(message));
    return wake;
  }
  // A part always wakes the sender (has_work in Run).
  [[nodiscard]] bool IncomingFor(std::unique_ptr<ManyPart> part)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    incoming_parts_.push_back(std::move(part));
    return sender_asleep_;
  }
  // Wakes the sleeping sender thread for a message it must see before its
  // wake-up: one it would send at once (nothing of its topic in flight), one
  // that fills its topic's batch, or one whose linger ends first. Others
  // (while a batch of their topic travels) wait for the answer or the
  // linger of an earlier one, as they would in the Batcher. True: as
  // WakeSenderLocked.
  [[nodiscard]] bool WakeSenderFor(const Pending& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets wake_. True if the sender thread sleeps: the caller notifies
  // sender_cv_, after unlocking mu_ where the Impl outlives the call.
  [[nodiscard]] bool WakeSenderLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    wake_ = true;
    return sender_asleep_;
  }
  // Sender thread: sends a part from the Batcher, or, past its deadline,
  // fails it.
  void StartPart(std::unique_ptr<ManyPart> part, Clock::time_point now, Parts* done);
  // Finish for a part: `answered` (a result per message in results_), else
  // every message failed with `code` and `error`.
  void FinishPart(Call& call, bool answered, int code, const std::string& error,
                  bool cancelled_by_us, int failed_endpoint, Clock::time_point now,
                  bool closing, Parts* done);
  // Fails the messages the part still had to send "publisher closed".
  static void ClosePart(ManyPart& part);

  const internal::PublisherOptions options_;
  const internal::Backoff backoff_;
  internal::IdGenerator ids_;

  // Taken per Publish: not an absl::Mutex, whose deadlock detection Debian's
  // Abseil runs on every lock (plain_mutex.h). Nothing re-checks a waiter's
  // condition on unlock: whoever makes one true notifies its PlainCondVar.
  mutable internal::PlainMutex mu_;
  // Admit waits here for room (or closing_).
  internal::PlainCondVar room_;
  // Flush waits here for its messages' results.
  internal::PlainCondVar resolved_;
  // The sender thread sleeps here (sender_asleep_) until wake_, a part or a
  // finished call.
  internal::PlainCondVar sender_cv_;
  std::vector<std::unique_ptr<Pending>> incoming_ ABSL_GUARDED_BY(mu_);
  Parts incoming_parts_ ABSL_GUARDED_BY(mu_);
  std::vector<Call*> finished_ ABSL_GUARDED_BY(mu_);
  // Messages with seq <= urgent_upto_ are sent without waiting for Linger.
  uint64_t urgent_upto_ ABSL_GUARDED_BY(mu_) = 0;
  std::size_t outstanding_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Hands out seqs; unresolved: the message's future is not complete yet.
  internal::SeqWindow seqs_ ABSL_GUARDED_BY(mu_);
  // Wakes the sender thread: a Flush, closing, new settings, a message it
  // must see (WakeSenderFor).
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  // While the sender thread sleeps: until when, and its Batcher's quiet
  // topics (views of the Batcher's names, which stay put while it sleeps)
  // and linger then (Batcher::Quiet), for WakeSenderFor.
  bool sender_asleep_ ABSL_GUARDED_BY(mu_) = false;
  Clock::time_point sender_wakeup_ ABSL_GUARDED_BY(mu_);
  Clock::duration quiet_linger_ ABSL_GUARDED_BY(mu_){};
  internal::QuietTopics quiet_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::chrono::milliseconds delivery_timeout_ ABSL_GUARDED_BY(mu_);
  // Settings for the sender thread to apply.
  std::optional<internal::NodePathSettings> new_settings_ ABSL_GUARDED_BY(mu_);
  // The settings in effect (for Stats).
  internal::NodePathSettings settings_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> acknowledged_{0};

  // Owned by the sender thread (set up before it starts).
  std::vector<Endpoint> endpoints_;
  internal::EndpointSelector selector_;
  internal::Batcher batcher_;
  std::chrono::milliseconds request_timeout_;
  std::unordered_map<Call*, std::unique_ptr<Call>> in_flight_;
  // Finish's scratch space, kept for the next batch.
  std::vector<internal::ResultView> results_;
  std::vector<uint32_t> retries_;
  internal::ResponseStorage response_storage_;
  uint64_t last_request_id_ = 0;
  // FERRY_STAGE_TRACE (stage_trace.h): null when off.
  const std::unique_ptr<stage_trace::Tracer> trace_;
  std::vector<TraceRow> trace_rows_;
  // With a stage trace: the seqs of messages that waited behind an earlier
  // message of their key, until their final outcome.
  absl::flat_hash_set<uint64_t> trace_behind_key_;

  // Without fallback (whose probe fetches the settings itself): follows the
  // pushed settings unless the application opted out. Null otherwise.
  std::unique_ptr<internal::SettingsFollower> follower_;
  std::thread sender_;  // Last: started once everything above exists.
};

}  // namespace ferry::client

#endif  // FERRY_CLIENT_SRC_PUBLISHER_IMPL_H_
