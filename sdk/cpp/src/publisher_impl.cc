#include "publisher_impl.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <optional>

namespace ferry::client {
namespace {

constexpr int kDeadlineExceeded = static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED);
constexpr int kResourceExhausted = static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED);
constexpr int kInvalidArgument = static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT);
constexpr int kInternal = static_cast<int>(grpc::StatusCode::INTERNAL);
constexpr int kUnavailable = static_cast<int>(grpc::StatusCode::UNAVAILABLE);

// The node itself is the problem: try the others first for a while. This
// picks the node for the retry; whether to retry at all is Retryable's
// decision (retry.h). CANCELLED is here because the publisher cancels calls
// only when closing (handled before this is asked): otherwise it is the node
// going away, e.g. a ferryd shutting down cancels the calls its grace period
// did not finish.
bool NodeFailure(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE ||
         code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::CANCELLED;
}

PublishResult Closed(const internal::Pending& message) {
  std::string error = "publisher closed";
  if (message.last_error != nullptr) {
    error = fmt::format("publisher closed; last error: {}", message.last_error->error);
  }
  return internal::Failure(kUnavailable, std::move(error), message.id);
}

// Publisher.Publish, called through a generic stub (see PublishStub).
const std::string kPublishMethod = "/ferry.v1.Publisher/Publish";

absl::Duration ToAbsl(internal::Clock::duration duration) {
  return absl::FromChrono(std::chrono::duration_cast<std::chrono::nanoseconds>(duration));
}

}  // namespace

Publisher::Impl::Impl(internal::PublisherOptions options)
    : options_(std::move(options)),
      backoff_(options_.initial_backoff, options_.max_backoff),
      selector_(options_.endpoints.size(), backoff_),
      batcher_(internal::BatchLimits{
          .max_messages = static_cast<std::size_t>(options_.max_batch_messages),
          .max_bytes = options_.max_batch_bytes,
          .linger = options_.linger}),
      request_timeout_(options_.request_timeout) {
  {
    absl::MutexLock lock(&mu_);
    delivery_timeout_ = options_.delivery_timeout;
    settings_ = internal::SettingsOf(options_);
  }
  grpc::ChannelArguments args;
  // gRPC's own reconnect backoff grows to 2 minutes by default; keep it
  // near ours so that a node that is back is used again soon.
  auto as_int = [](std::chrono::milliseconds ms) {
    return static_cast<int>(std::min<int64_t>(ms.count(), INT32_MAX));
  };
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, as_int(options_.initial_backoff));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, as_int(options_.max_backoff));
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (const std::string& address : options_.endpoints) {
    channels.push_back(grpc::CreateCustomChannel(address, options_.credentials, args));
    endpoints_.push_back(
        Endpoint{address, std::make_unique<grpc::GenericStub>(channels.back())});
  }
  if (options_.pushed_settings && !options_.fallback) {
    follower_ = std::make_unique<internal::SettingsFollower>(
        internal::GrpcConfigSource(channels), options_.client_id,
        [this](const internal::PushedSettings& pushed) {
          ApplySettings(internal::EffectiveSettings(options_, &pushed));
        });
  }
  sender_ = std::thread([this] { Run(); });
}

Publisher::Impl::~Impl() {
  Flush(options_.close_timeout);
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    wake_ = true;
  }
  sender_.join();
  // After the sender (which tells it of reconnects), before the state its
  // thread applies settings to.
  follower_.reset();
}

void Publisher::Impl::Publish(std::string topic, Message message,
                              internal::Completion done) {
  const std::size_t payload_bytes = internal::PayloadBytes(message);
  std::string id = message.id.empty() ? ids_.Next() : std::move(message.id);
  if (payload_bytes > options_.max_outstanding_bytes) {
    done.Complete(internal::Failure(
        kInvalidArgument,
        fmt::format("message of {} bytes exceeds MaxOutstandingBytes ({} bytes)",
                    payload_bytes, options_.max_outstanding_bytes),
        std::move(id)));
    return;
  }
  // Encoded here, once: the sender thread only concatenates (a retry resends
  // the same bytes, so also the same ferry.id).
  std::unique_ptr<Pending> pending = Pending::New(
      topic, message.ordering_key.empty() ? message.key : message.ordering_key,
      internal::MessageFieldSize(message, id));
  internal::WriteMessageField(message, id, pending->mutable_wire());
  pending->payload_bytes = payload_bytes;
  pending->id = std::move(id);
  pending->done = std::move(done);

  std::optional<PublishResult> failed;
  {
    absl::MutexLock lock(&mu_);
    const std::size_t bytes = pending->payload_bytes;
    auto fits = [this, bytes]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return closing_ || outstanding_bytes_ + bytes <= options_.max_outstanding_bytes;
    };
    if (!fits() && !options_.block_when_full) {
      failed = internal::Failure(
          kResourceExhausted,
          fmt::format("MaxOutstandingBytes ({} bytes) reached: {} bytes are waiting for "
                      "their results",
                      options_.max_outstanding_bytes, outstanding_bytes_),
          pending->id);
    } else {
      mu_.Await(absl::Condition(&fits));
      if (closing_) {
        failed = Closed(*pending);
      } else {
        pending->seq = seqs_.Add();
        pending->published_at = Clock::now();
        pending->deadline = pending->published_at + delivery_timeout_;
        outstanding_bytes_ += bytes;
        incoming_.push_back(std::move(pending));
        return;
      }
    }
  }
  // Outside mu_: a callback may publish again.
  pending->done.Complete(*std::move(failed));
}

bool Publisher::Impl::Flush(std::chrono::milliseconds timeout) {
  absl::MutexLock lock(&mu_);
  const uint64_t upto = seqs_.next() - 1;
  auto done = [this, upto]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return seqs_.LowestUnresolved() > upto;
  };
  if (done()) return true;
  if (upto > urgent_upto_) {
    urgent_upto_ = upto;
    wake_ = true;
  }
  return mu_.AwaitWithTimeout(absl::Condition(&done), absl::FromChrono(timeout));
}

void Publisher::Impl::ApplySettings(const internal::NodePathSettings& settings) {
  absl::MutexLock lock(&mu_);
  if (settings == settings_) return;
  settings_ = settings;
  delivery_timeout_ = settings.delivery_timeout;
  new_settings_ = settings;
  wake_ = true;
}

PublisherStats Publisher::Impl::Stats() const {
  internal::NodePathSettings settings;
  {
    absl::MutexLock lock(&mu_);
    settings = settings_;
  }
  return PublisherStats{.ferry_messages = acknowledged_.load(),
                        .config_fetched = follower_ != nullptr && follower_->fetched(),
                        .linger = settings.linger,
                        .delivery_timeout = settings.delivery_timeout,
                        .max_batch_messages = settings.max_batch_messages,
                        .node_batches = batches_.load()};
}

void Publisher::Impl::Run() {
  std::vector<std::unique_ptr<Pending>> incoming;
  std::vector<Call*> finished;
  std::vector<std::unique_ptr<Pending>> expired;
  Resolutions done;
  std::optional<internal::NodePathSettings> new_settings;
  bool cancelled = false;
  for (;;) {
    const Clock::time_point wakeup = batcher_.NextWakeup();
    uint64_t urgent_upto = 0;
    bool closing = false;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return wake_ || !incoming_.empty() || !finished_.empty();
      };
      const absl::Condition condition(&has_work);
      if (wakeup == Clock::time_point::max()) {
        mu_.Await(condition);
      } else if (Clock::time_point now = Clock::now(); wakeup > now) {
        mu_.AwaitWithTimeout(condition, ToAbsl(wakeup - now));
      }
      incoming.swap(incoming_);
      finished.swap(finished_);
      wake_ = false;
      urgent_upto = urgent_upto_;
      closing = closing_;
      new_settings.swap(new_settings_);
    }
    if (new_settings) {
      batcher_.SetLimits(
          {.max_messages = static_cast<std::size_t>(new_settings->max_batch_messages),
           .max_bytes = new_settings->max_batch_bytes,
           .linger = new_settings->linger});
      request_timeout_ = new_settings->request_timeout;
      new_settings.reset();
    }

    const Clock::time_point now = Clock::now();
    for (Call* call : finished) Finish(call, now, closing, &done);
    finished.clear();
    for (std::unique_ptr<Pending>& message : incoming) {
      if (closing) {
        PublishResult result = Closed(*message);
        done.emplace_back(std::move(message), std::move(result));
      } else {
        batcher_.Add(std::move(message));
      }
    }
    incoming.clear();

    if (closing) {
      for (std::unique_ptr<Pending>& message : batcher_.TakeAll()) {
        PublishResult result = Closed(*message);
        done.emplace_back(std::move(message), std::move(result));
      }
      if (!cancelled) {
        // Their callbacks report CANCELLED (or the answer, if it won the
        // race), which Finish turns into "publisher closed".
        for (auto& [raw, call] : in_flight_) call->context.TryCancel();
        cancelled = true;
      }
    } else {
      batcher_.ReleaseBackoff(now);
      while (std::optional<internal::Batch> batch =
                 batcher_.NextBatch(now, urgent_upto, &expired)) {
        Start(std::move(*batch), now);
      }
      for (std::unique_ptr<Pending>& message : expired) {
        PublishResult result;
        if (message->last_error != nullptr) {
          result = std::move(*message->last_error);
        } else {
          result = internal::Failure(
              kDeadlineExceeded,
              fmt::format("not sent within DeliveryTimeout ({} ms)",
                          std::chrono::duration_cast<std::chrono::milliseconds>(
                              message->deadline - message->published_at)
                              .count()),
              message->id);
        }
        done.emplace_back(std::move(message), std::move(result));
      }
      expired.clear();
    }

    Resolve(&done);
    if (closing && in_flight_.empty()) return;
  }
}

void Publisher::Impl::Start(internal::Batch batch, Clock::time_point now) {
  auto call = std::make_unique<Call>();
  int avoid = -1;
  for (const std::unique_ptr<Pending>& message : batch.messages) {
    if (message->failed_endpoint >= 0) {
      avoid = message->failed_endpoint;
      break;
    }
  }
  call->endpoint = selector_.Pick(now, avoid);
  call->request =
      internal::EncodeRequest(++last_request_id_, batch.topic, batch.messages);
  call->topic = std::move(batch.topic);
  call->keys = std::move(batch.keys);
  call->messages = std::move(batch.messages);
  call->context.set_deadline(std::chrono::system_clock::now() + request_timeout_);
  ++batches_;

  Call* raw = call.get();
  in_flight_.emplace(raw, std::move(call));
  endpoints_[raw->endpoint].stub->UnaryCall(
      &raw->context, kPublishMethod, grpc::StubOptions(), &raw->request, &raw->response,
      [this, raw](grpc::Status status) { OnCallDone(raw, std::move(status)); });
}

void Publisher::Impl::OnCallDone(Call* call, grpc::Status status) {
  call->status = std::move(status);
  absl::MutexLock lock(&mu_);
  finished_.push_back(call);
}

void Publisher::Impl::Finish(Call* raw, Clock::time_point now, bool closing,
                             Resolutions* done) {
  std::unique_ptr<Call> call = std::move(in_flight_.extract(raw).mapped());
  const grpc::Status& status = call->status;
  // Run() cancels in-flight calls only when closing.
  const bool cancelled_by_us =
      closing && status.error_code() == grpc::StatusCode::CANCELLED;
  if (status.ok()) {
    if (selector_.ReportSuccess(call->endpoint) && follower_ != nullptr) {
      follower_->NodeReconnected();
    }
  } else if (NodeFailure(status.error_code()) && !cancelled_by_us) {
    selector_.ReportFailure(call->endpoint, now);
  }

  const int count = static_cast<int>(call->messages.size());

  std::vector<std::unique_ptr<Pending>> retries;
  const std::string& address = endpoints_[call->endpoint].address;
  results_.clear();
  const bool readable =
      status.ok() && internal::ReadResults(call->response, &response_bytes_, &results_);
  if (readable && results_.size() == call->messages.size()) {
    for (int i = 0; i < count; ++i) {
      std::unique_ptr<Pending>& message = call->messages[i];
      message->failed_endpoint = -1;
      PublishResult result = internal::FromWire(results_[i], &message->id);
      if (result.ok()) {
        done->emplace_back(std::move(message), std::move(result));
      } else {
        Failed(std::move(message), std::move(result), now, closing, &retries, done);
      }
    }
  } else {
    int code = static_cast<int>(status.error_code());
    std::string error = fmt::format("node {}: {}", address, status.error_message());
    if (status.ok()) {
      // A node that breaks the protocol: the messages' fate is unknown
      // (INTERNAL: not retried).
      code = kInternal;
      error = readable ? fmt::format(
                             "node {} answered {} results for a batch of {} "
                             "messages",
                             address, results_.size(), count)
                       : fmt::format("node {} answered an unreadable PublishResponse",
                                     address);
    } else if (cancelled_by_us) {
      for (std::unique_ptr<Pending>& message : call->messages) {
        PublishResult result = Closed(*message);
        done->emplace_back(std::move(message), std::move(result));
      }
      call->messages.clear();
    }
    const int failed_endpoint =
        NodeFailure(status.error_code()) ? static_cast<int>(call->endpoint) : -1;
    for (std::unique_ptr<Pending>& message : call->messages) {
      message->failed_endpoint = failed_endpoint;
      PublishResult result = internal::Failure(code, error, message->id);
      Failed(std::move(message), std::move(result), now, closing, &retries, done);
    }
  }
  batcher_.Complete(call->topic, call->keys, std::move(retries));
}

void Publisher::Impl::Failed(std::unique_ptr<Pending> message, PublishResult error,
                             Clock::time_point now, bool closing,
                             std::vector<std::unique_ptr<Pending>>* retries,
                             Resolutions* done) {
  if (!error.retryable) {
    done->emplace_back(std::move(message), std::move(error));
    return;
  }
  message->last_error = std::make_unique<PublishResult>(std::move(error));
  if (closing) {
    PublishResult result = Closed(*message);
    done->emplace_back(std::move(message), std::move(result));
    return;
  }
  ++message->attempts;
  const Clock::time_point retry_at = now + backoff_.Delay(message->attempts);
  if (retry_at >= message->deadline) {
    PublishResult result = std::move(*message->last_error);
    done->emplace_back(std::move(message), std::move(result));
    return;
  }
  message->not_before = retry_at;
  retries->push_back(std::move(message));
}

void Publisher::Impl::Resolve(Resolutions* done) {
  if (done->empty()) return;
  // One pass over the (cache-cold) messages collects what the locked steps
  // need, so mu_ is held only for arithmetic.
  std::size_t bytes = 0;
  uint64_t acknowledged = 0;
  std::vector<uint64_t> seqs;
  seqs.reserve(done->size());
  for (const auto& [message, result] : *done) {
    bytes += message->payload_bytes;
    seqs.push_back(message->seq);
    if (result.ok()) ++acknowledged;
  }
  acknowledged_ += acknowledged;
  {
    // Bytes first: a caller woken by its future may publish again at once
    // and must find room.
    absl::MutexLock lock(&mu_);
    outstanding_bytes_ -= bytes;
  }
  // Outside mu_: completing wakes waiting threads, which then would contend
  // for mu_ with this thread, and Publish callers would wait for the whole
  // batch; a callback may publish again.
  if (options_.on_result) {
    for (const auto& [message, result] : *done) options_.on_result(result);
  }
  for (auto& [message, result] : *done) message->done.Complete(std::move(result));
  {
    // Last, so that Flush never sees a message done whose future is not.
    absl::MutexLock lock(&mu_);
    for (uint64_t seq : seqs) seqs_.Resolve(seq);
  }
  done->clear();
}

}  // namespace ferry::client
