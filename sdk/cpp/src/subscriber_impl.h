// Subscriber::Impl: one stream per endpoint, the background thread that keeps
// them open and flushes their batches, and the hand-out of messages.
#ifndef FERRY_CLIENT_SRC_SUBSCRIBER_IMPL_H_
#define FERRY_CLIENT_SRC_SUBSCRIBER_IMPL_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "endpoints.h"
#include "ferry/client/subscriber.h"
#include "ferry/v1/subscriber.pb.h"
#include "handler_pool.h"
#include "plain_mutex.h"
#include "subscribe_stream.h"
#include "subscriber_options.h"

namespace ferry::client {

// Threading: gRPC threads deliver messages (into the handler pool or the pull
// queue) and report finished streams and receipt failures under mu_. The
// background thread (Run) owns endpoints_: it opens and reopens streams, ticks
// them (timed batches, extensions), closes them, and runs OnError and
// OnReceiptFailure. Lock order: a stream's lock, then mu_; mu_ is never held
// while calling a stream or destroying an AckHandle (which calls its stream).
class Subscriber::Impl : public internal::StreamListener {
 public:
  explicit Impl(internal::SubscriberOptions options);
  // Close(CloseTimeout), then waits for running handlers.
  ~Impl() override;

  std::optional<PulledMessage> Next(std::chrono::milliseconds timeout);
  std::optional<MessageBatch> NextBatch(std::chrono::milliseconds timeout);
  std::optional<SubscriberError> Failure() const;
  SubscriberStats Stats() const;
  bool Close(std::chrono::milliseconds timeout);

  void OnMessages(std::shared_ptr<const internal::ReceivedBatch> batch) override;
  void OnReceiptFailures(internal::SubscribeStream* stream,
                         std::vector<ReceiptFailure> failures) override;
  void OnStreamDone(internal::SubscribeStream* stream, grpc::Status status) override;
  void Wake() override;

 private:
  using Clock = internal::Clock;

  struct Endpoint {
    std::string address;
    std::unique_ptr<internal::SubscribeStream::Stub> stub;
    // Null while waiting to reopen.
    std::shared_ptr<internal::SubscribeStream> stream;
    // Streams opened so far.
    int attempts = 0;
    // Consecutive streams that ended before the node answered `opened`.
    int failures = 0;
    Clock::time_point reopen_at;
  };

  struct Finished {
    internal::SubscribeStream* stream;
    grpc::Status status;
  };

  void Run();
  // Handles the ended streams: schedules reopening, or records the fatal
  // error. Appends what OnError should hear.
  void Reap(std::vector<Finished> finished, Clock::time_point now, bool draining,
            std::vector<SubscriberError>* errors);
  void Open(Endpoint& endpoint, std::size_t index);
  // Callback mode: hands a batch to the handler pool.
  void Dispatch(std::shared_ptr<const internal::ReceivedBatch> batch);
  // Pull mode: waits up to `timeout` for a received batch in pulled_; false
  // if there is none to take.
  bool AwaitPulled(std::chrono::milliseconds timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets wake_ and wakes the background thread.
  void WakeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops the hand-out: Next/NextBatch callers return.
  void StopDeliveringLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const internal::SubscriberOptions options_;
  const ferry::v1::SubscribeRequest open_;
  const internal::Backoff backoff_;
  const std::shared_ptr<internal::Counters> counters_;
  // Callback mode only.
  std::unique_ptr<internal::HandlerPool> pool_;

  // Taken once per message by Next (and per batch by NextBatch, the gRPC
  // threads, the background thread): a PlainMutex, not an absl::Mutex, for
  // the deadlock detection Debian's Abseil runs on every lock
  // (plain_mutex.h). Nothing re-checks a waiter's condition on unlock, so
  // whoever makes one true notifies its condition variable. Under mu_
  // wherever this Impl may go away once mu_ is released (a stream's last
  // call, OnStreamDone, may let the background thread end and the
  // destructor run); OnMessages notifies after unlocking, as gRPC makes a
  // stream's OnStreamDone only after its other reactions returned.
  mutable internal::PlainMutex mu_;
  // Next/NextBatch wait here for !delivering_ || !pulled_.empty().
  internal::PlainCondVar pulled_cv_;
  // The background thread waits here for wake_.
  internal::PlainCondVar wake_cv_;
  // False once Close started or a fatal error stopped the subscriber.
  bool delivering_ ABSL_GUARDED_BY(mu_) = true;
  // Close: send what is pending, half-close, wait for the streams to end.
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  // Set only through WakeLocked.
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<SubscriberError> failure_ ABSL_GUARDED_BY(mu_);
  // Pull mode: received batches not handed out yet, oldest first; none empty.
  std::deque<MessageBatch> pulled_ ABSL_GUARDED_BY(mu_);
  std::vector<Finished> finished_ ABSL_GUARDED_BY(mu_);
  std::vector<ReceiptFailure> receipt_failures_ ABSL_GUARDED_BY(mu_);

  // Serializes Close calls.
  absl::Mutex close_mu_;
  std::optional<bool> closed_ ABSL_GUARDED_BY(close_mu_);

  // Owned by the background thread once it runs.
  std::vector<Endpoint> endpoints_;
  std::thread background_;  // Last: started once everything above exists.
};

}  // namespace ferry::client

#endif  // FERRY_CLIENT_SRC_SUBSCRIBER_IMPL_H_
