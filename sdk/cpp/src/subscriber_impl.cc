#include "subscriber_impl.h"

#include <algorithm>
#include <cstdint>

#include "ack_collector.h"
#include "grpc_channel.h"
#include "message_batch.h"
#include "subscriber_convert.h"

namespace ferry::client {
namespace {

// How long Close waits for the nodes to end the half-closed streams before
// cancelling them (a node that is gone never answers).
constexpr std::chrono::seconds kStreamCloseGrace(5);

// The subscription itself is wrong, or asks for something the nodes do not
// support (e.g. a filter): every node would answer the same.
bool Fatal(grpc::StatusCode code) {
  return code == grpc::StatusCode::INVALID_ARGUMENT ||
         code == grpc::StatusCode::NOT_FOUND || code == grpc::StatusCode::UNIMPLEMENTED ||
         code == grpc::StatusCode::UNAUTHENTICATED ||
         code == grpc::StatusCode::PERMISSION_DENIED;
}

// Most messages one handler task runs in sequence when unordered.
constexpr int kMaxRun = 16;

AckHandle Handle(const std::shared_ptr<internal::SubscribeStream>& stream, uint64_t seq) {
  return AckHandle(std::make_unique<internal::Receipt>(internal::Receipt{stream, seq}));
}

// The batch the unordered tasks share. Each task copies its messages out of
// the views and makes their handles on its own thread; a message whose task
// never ran (the pool stopped at Close) is nacked when the last task lets go
// of the batch, as its handle would have been had it been made up front.
struct SharedBatch {
  explicit SharedBatch(std::shared_ptr<const internal::ReceivedBatch> batch)
      : received(std::move(batch)), handed_out(received->decoded.messages.size(), 0) {}
  SharedBatch(const SharedBatch&) = delete;
  SharedBatch& operator=(const SharedBatch&) = delete;
  ~SharedBatch() {
    for (std::size_t i = 0; i < handed_out.size(); ++i) {
      if (handed_out[i] == 0) Handle(received->stream, received->first_seq + i).Nack();
    }
  }

  std::shared_ptr<const internal::ReceivedBatch> received;
  std::vector<char> handed_out;  // each entry written by the one task of its run
};

}  // namespace

Subscriber::Impl::Impl(internal::SubscriberOptions options)
    : options_(std::move(options)),
      open_(internal::OpenRequest(options_)),
      backoff_(options_.initial_backoff, options_.max_backoff),
      counters_(std::make_shared<internal::Counters>()) {
  if (options_.on_message) {
    pool_ = std::make_unique<internal::HandlerPool>(options_.handler_threads);
  }
  grpc::ChannelArguments args;
  // gRPC's own reconnect backoff grows to 2 minutes by default; keep it
  // near ours so that a node that is back is used again soon.
  auto as_int = [](std::chrono::milliseconds ms) {
    return static_cast<int>(std::min<int64_t>(ms.count(), INT32_MAX));
  };
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, as_int(options_.initial_backoff));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, as_int(options_.max_backoff));
  for (const std::string& address : options_.endpoints) {
    auto channel = internal::NewChannel(address, options_.credentials, args);
    Endpoint endpoint;
    endpoint.address = address;
    endpoint.stub = std::make_unique<internal::SubscribeStream::Stub>(channel);
    endpoints_.push_back(std::move(endpoint));
  }
  background_ = std::thread([this] { Run(); });
}

Subscriber::Impl::~Impl() {
  Close(options_.close_timeout);
  pool_.reset();  // Waits for handlers still running: they use options_.
}

bool Subscriber::Impl::AwaitPulled(std::chrono::milliseconds timeout) {
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !delivering_ || !pulled_.empty();
  };
  pulled_cv_.AwaitFor(&mu_, ready, timeout);
  return delivering_ && !pulled_.empty();
}

void Subscriber::Impl::WakeLocked() {
  wake_ = true;
  wake_cv_.NotifyOne();
}

void Subscriber::Impl::StopDeliveringLocked() {
  delivering_ = false;
  pulled_cv_.NotifyAll();
}

std::optional<PulledMessage> Subscriber::Impl::Next(std::chrono::milliseconds timeout) {
  if (pool_ != nullptr) return std::nullopt;
  MessageBatch used_up;  // let go of after unlocking
  std::shared_ptr<const internal::ReceivedBatch> batch;
  std::size_t index = 0;
  {
    internal::PlainLock lock(&mu_);
    if (!AwaitPulled(timeout)) return std::nullopt;
    internal::BatchState& state = internal::BatchAccess::State(pulled_.front());
    batch = state.batch;
    index = state.TakeFront();
    if (state.Messages().empty()) {
      used_up = std::move(pulled_.front());
      pulled_.pop_front();
    }
  }
  // Copied outside mu_, which the gRPC threads take to queue batches.
  return PulledMessage(batch->decoded.messages[index].Copy(),
                       Handle(batch->stream, batch->first_seq + index));
}

std::optional<MessageBatch> Subscriber::Impl::NextBatch(
    std::chrono::milliseconds timeout) {
  if (pool_ != nullptr) return std::nullopt;
  internal::PlainLock lock(&mu_);
  if (!AwaitPulled(timeout)) return std::nullopt;
  std::optional<MessageBatch> next(std::move(pulled_.front()));
  pulled_.pop_front();
  return next;
}

std::optional<SubscriberError> Subscriber::Impl::Failure() const {
  internal::PlainLock lock(&mu_);
  return failure_;
}

SubscriberStats Subscriber::Impl::Stats() const {
  const internal::Counters& c = *counters_;
  return SubscriberStats{.received = c.received.load(),
                         .acks_sent = c.acks_sent.load(),
                         .nacks_sent = c.nacks_sent.load(),
                         .extensions_sent = c.extensions_sent.load(),
                         .dropped_settlements = c.dropped_settlements.load(),
                         .receipt_failures = c.receipt_failures.load(),
                         .reconnects = c.reconnects.load(),
                         .open_streams = c.open_streams.load()};
}

bool Subscriber::Impl::Close(std::chrono::milliseconds timeout) {
  absl::MutexLock close_lock(&close_mu_);
  if (closed_.has_value()) return *closed_;
  std::deque<MessageBatch> undelivered;
  {
    internal::PlainLock lock(&mu_);
    StopDeliveringLocked();
    undelivered.swap(pulled_);
  }
  // Nacked (unlocked): redelivered at once, to whoever is still subscribed.
  undelivered.clear();
  const bool handlers_done = pool_ == nullptr || pool_->Stop(timeout);
  {
    internal::PlainLock lock(&mu_);
    draining_ = true;
    WakeLocked();
  }
  background_.join();
  closed_ = handlers_done;
  return handlers_done;
}

void Subscriber::Impl::OnMessages(std::shared_ptr<const internal::ReceivedBatch> batch) {
  // Either way, messages that arrive once the subscriber stopped delivering
  // (Close, a fatal error) are not handed out and not nacked: the node
  // redelivers them once the closing streams end, without counting an
  // attempt.
  if (pool_ != nullptr) {
    {
      internal::PlainLock lock(&mu_);
      if (!delivering_) return;
    }
    Dispatch(std::move(batch));
    return;
  }
  // Made before locking, so mu_ (which the application thread waits on) is
  // taken once per batch.
  MessageBatch pulled = internal::WholeBatch(std::move(batch));
  {
    internal::PlainLock lock(&mu_);
    if (!delivering_) {
      internal::BatchAccess::State(pulled).LeaveUnsettled();
      return;
    }
    pulled_.push_back(std::move(pulled));
  }
  // All: the batch may hold a message for each waiting Next. After
  // unlocking, so a woken Next does not block on mu_: this stream's
  // OnStreamDone, which this Impl waits for before it goes away, comes only
  // after this reaction returned.
  pulled_cv_.NotifyAll();
}

void Subscriber::Impl::Dispatch(std::shared_ptr<const internal::ReceivedBatch> received) {
  const MessageHandler* handler = &options_.on_message;
  const std::vector<ReceivedView>& messages = received->decoded.messages;
  std::vector<internal::HandlerPool::Keyed> tasks;
  if (options_.ordering == Ordering::kNone) {
    // Unordered: a task per run of messages rather than per message, so the
    // pool's lock and the stream's (for the acks, see AckCollector) are taken
    // once per run. Runs are short enough that one slow handler holds up few
    // others, and split the batch over all handler threads. The tasks share
    // the batch; each copies its messages, makes their handles and frees
    // them on its own thread, where they are used.
    const int threads = options_.handler_threads;
    const int count = static_cast<int>(messages.size());
    const int run_size = std::clamp((count + threads - 1) / threads, 1, kMaxRun);
    auto batch = std::make_shared<SharedBatch>(std::move(received));
    tasks.reserve((count + run_size - 1) / run_size);
    for (int begin = 0; begin < count; begin += run_size) {
      const int end = std::min(begin + run_size, count);
      tasks.push_back(
          {{}, [handler, batch, begin, end] {
             const internal::ReceivedBatch& received = *batch->received;
             internal::AckCollector acks(received.stream.get());
             for (int i = begin; i < end; ++i) {
               const ReceivedMessage message = received.decoded.messages[i].Copy();
               batch->handed_out[i] = 1;
               (*handler)(message, Handle(received.stream, received.first_seq + i));
             }
           }});
    }
  } else {
    tasks.reserve(messages.size());
    for (std::size_t i = 0; i < messages.size(); ++i) {
      std::string key = internal::OrderingKey(options_.ordering, messages[i]);
      tasks.push_back(
          {std::move(key),
           [handler, received, i,
            handle = Handle(received->stream, received->first_seq + i)]() mutable {
             (*handler)(received->decoded.messages[i].Copy(), std::move(handle));
           }});
    }
  }
  // One lock and one wake-up round per batch, not per message.
  pool_->SubmitAll(std::move(tasks));
}

void Subscriber::Impl::OnReceiptFailures(internal::SubscribeStream* /*stream*/,
                                         std::vector<ReceiptFailure> failures) {
  if (!options_.on_receipt_failure) return;
  internal::PlainLock lock(&mu_);
  for (ReceiptFailure& failure : failures)
    receipt_failures_.push_back(std::move(failure));
  WakeLocked();
}

void Subscriber::Impl::OnStreamDone(internal::SubscribeStream* stream,
                                    grpc::Status status) {
  internal::PlainLock lock(&mu_);
  finished_.push_back(Finished{stream, std::move(status)});
  WakeLocked();
}

void Subscriber::Impl::Wake() {
  internal::PlainLock lock(&mu_);
  WakeLocked();
}

void Subscriber::Impl::Run() {
  bool streams_closed = false;
  bool cancelled = false;
  Clock::time_point cancel_at = Clock::time_point::max();
  Clock::time_point next = Clock::time_point::min();  // Open the streams at once.
  std::vector<Finished> finished;
  std::vector<ReceiptFailure> receipt_failures;
  std::vector<SubscriberError> errors;
  for (;;) {
    bool draining;
    {
      internal::PlainLock lock(&mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return wake_; };
      if (next == Clock::time_point::max()) {
        wake_cv_.Await(&mu_, woken);
      } else if (next > Clock::now()) {
        wake_cv_.AwaitUntil(&mu_, woken, next);
      }
      wake_ = false;
      finished.swap(finished_);
      receipt_failures.swap(receipt_failures_);
      draining = draining_;
    }
    const Clock::time_point now = Clock::now();
    Reap(std::move(finished), now, draining, &errors);
    finished.clear();
    bool stopping;
    {
      internal::PlainLock lock(&mu_);
      stopping = draining || failure_.has_value();
    }

    if (stopping && !streams_closed) {
      for (Endpoint& endpoint : endpoints_) {
        if (endpoint.stream != nullptr) endpoint.stream->Close();
      }
      streams_closed = true;
      cancel_at = now + kStreamCloseGrace;
    }
    if (stopping && !cancelled && now >= cancel_at) {
      for (Endpoint& endpoint : endpoints_) {
        if (endpoint.stream != nullptr) endpoint.stream->Cancel();
      }
      cancelled = true;
    }
    if (!stopping) {
      for (std::size_t i = 0; i < endpoints_.size(); ++i) {
        Endpoint& endpoint = endpoints_[i];
        if (endpoint.stream == nullptr && endpoint.reopen_at <= now) Open(endpoint, i);
      }
    }

    if (options_.on_error) {
      for (const SubscriberError& error : errors) options_.on_error(error);
    }
    errors.clear();
    for (const ReceiptFailure& failure : receipt_failures) {
      options_.on_receipt_failure(failure);
    }
    receipt_failures.clear();

    next = Clock::time_point::max();
    bool any_stream = false;
    for (Endpoint& endpoint : endpoints_) {
      if (endpoint.stream != nullptr) {
        any_stream = true;
        next = std::min(next, endpoint.stream->Tick(now));
      } else if (!stopping) {
        next = std::min(next, endpoint.reopen_at);
      }
    }
    if (draining && !any_stream) return;
    if (stopping && !cancelled) next = std::min(next, cancel_at);
  }
}

void Subscriber::Impl::Reap(std::vector<Finished> finished, Clock::time_point now,
                            bool draining, std::vector<SubscriberError>* errors) {
  for (Finished& done : finished) {
    Endpoint& endpoint = endpoints_[done.stream->endpoint()];
    // The stream has made its last call (OnStreamDone): release it here.
    std::shared_ptr<internal::SubscribeStream> stream = std::move(endpoint.stream);
    if (draining) continue;
    const grpc::StatusCode code = done.status.error_code();
    std::string message = done.status.error_message();
    if (message.empty()) message = "stream ended";
    std::deque<MessageBatch> undelivered;
    {
      internal::PlainLock lock(&mu_);
      if (failure_.has_value()) continue;  // Stopped: nothing is reopened.
      if (Fatal(code)) {
        failure_ = SubscriberError{.code = static_cast<int>(code),
                                   .error = message,
                                   .endpoint = endpoint.address,
                                   .fatal = true};
        errors->push_back(*failure_);
        StopDeliveringLocked();
        undelivered.swap(pulled_);
        continue;  // `undelivered` nacks, after unlocking.
      }
    }
    if (!done.status.ok()) {
      errors->push_back(SubscriberError{.code = static_cast<int>(code),
                                        .error = message,
                                        .endpoint = endpoint.address,
                                        .fatal = false});
    }
    // A stream that was serving restarts the backoff; one that never got
    // `opened` (node down, overloaded) makes it grow.
    endpoint.failures = stream->opened() ? 1 : endpoint.failures + 1;
    endpoint.reopen_at = now + backoff_.Delay(endpoint.failures);
  }
}

void Subscriber::Impl::Open(Endpoint& endpoint, std::size_t index) {
  auto stream = std::make_shared<internal::SubscribeStream>(
      index, endpoint.address,
      internal::StreamConfig{.ack_deadline = options_.ack_deadline,
                             .max_ack_batch = options_.max_ack_batch,
                             .max_ack_delay = options_.max_ack_delay,
                             .max_extension = options_.max_extension},
      this, counters_);
  if (endpoint.attempts++ > 0) ++counters_->reconnects;
  endpoint.stream = stream;
  stream->Start(endpoint.stub.get(), open_);
}

}  // namespace ferry::client
