#include "publisher_impl.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "grpc_channel.h"
#include "retry.h"

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

}  // namespace

Publisher::Impl::Impl(internal::PublisherOptions options)
    : options_(std::move(options)),
      backoff_(options_.initial_backoff, options_.max_backoff),
      selector_(options_.endpoints.size(), backoff_),
      batcher_(internal::BatchLimits{
          .max_messages = static_cast<std::size_t>(options_.max_batch_messages),
          .max_bytes = options_.max_batch_bytes,
          .linger = options_.linger}),
      request_timeout_(options_.request_timeout),
      trace_(stage_trace::Tracer::Open("sdk-publish",
                                       "batch\tmessages\tpublished_ns\tsent_ns\t"
                                       "answered_ns\tpicked_ns\tresolved_ns\tattempts\t"
                                       "behind_key")) {
  {
    internal::PlainLock lock(&mu_);
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
    channels.push_back(internal::NewChannel(address, options_.credentials, args));
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
    internal::PlainLock lock(&mu_);
    closing_ = true;
    if (WakeSenderLocked()) sender_cv_.NotifyOne();
    // Admit's waiters give up.
    room_.NotifyAll();
  }
  sender_.join();
  // After the sender (which tells it of reconnects), before the state its
  // thread applies settings to.
  follower_.reset();
}

void Publisher::Impl::Publish(std::string_view topic, const Message& message,
                              internal::Completion done) {
  const MessageView view = internal::ViewOf(message);
  const std::size_t payload_bytes = internal::PayloadBytes(view);
  std::string id = message.id.empty() ? ids_.Next() : message.id;
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
  std::unique_ptr<Pending> pending =
      Pending::New(topic, view.ordering_key.empty() ? view.key : view.ordering_key,
                   internal::MessageFieldSize(view, id));
  internal::WriteMessageField(view, id, pending->mutable_wire());
  pending->payload_bytes = payload_bytes;
  pending->id = std::move(id);
  pending->done = std::move(done);

  std::optional<Refusal<Pending>> refused = Admit(std::move(pending));
  if (!refused) return;
  // Outside mu_: a callback may publish again. A new message has no last
  // error, so "publisher closed" is what Closed() would say.
  refused->item->done.Complete(
      internal::Failure(refused->code, std::move(refused->error), refused->item->id));
}

void Publisher::Impl::PublishMany(std::string_view topic,
                                  std::span<const MessageView> messages,
                                  internal::ManyCompletion done) {
  PublishManyResult result = ids_.NewResult(messages);
  std::size_t max_messages = 0, max_bytes = 0;
  {
    internal::PlainLock lock(&mu_);
    max_messages = static_cast<std::size_t>(settings_.max_batch_messages);
    max_bytes = settings_.max_batch_bytes;
  }
  // Parts: runs of messages within the batch limits (a larger message
  // alone) and, together, within MaxOutstandingBytes, so each fits once the
  // ones before it are done. A message over that cap fails at once.
  Parts parts;
  std::vector<uint32_t> field_sizes(messages.size());
  std::size_t first = 0, bytes = 0, payload = 0;
  auto close_part = [&](std::size_t end) {
    if (end == first) return;
    std::unique_ptr<ManyPart> part = internal::EncodePart(
        topic, messages.subspan(first, end - first), result, first,
        std::span<const uint32_t>(field_sizes).subspan(first, end - first));
    part->payload_bytes = payload;
    part->first = first;
    parts.push_back(std::move(part));
  };
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const std::size_t message_payload = internal::PayloadBytes(messages[i]);
    if (message_payload > options_.max_outstanding_bytes) {
      close_part(i);
      first = i + 1;
      bytes = payload = 0;
      internal::RecordFailure(
          &result, i, kInvalidArgument, false,
          fmt::format("message of {} bytes exceeds MaxOutstandingBytes ({} bytes)",
                      message_payload, options_.max_outstanding_bytes));
      continue;
    }
    field_sizes[i] =
        static_cast<uint32_t>(internal::MessageFieldSize(messages[i], result.id(i)));
    if (i > first && (i - first == max_messages || bytes + field_sizes[i] > max_bytes ||
                      payload + message_payload > options_.max_outstanding_bytes)) {
      close_part(i);
      first = i;
      bytes = payload = 0;
    }
    bytes += field_sizes[i];
    payload += message_payload;
  }
  close_part(messages.size());

  auto call = std::make_shared<internal::ManyCall>(std::move(done), std::move(result));
  for (std::unique_ptr<ManyPart>& part : parts) {
    part->call = call;
    call->Hold();
    Enqueue(std::move(part));
  }
  call->Release();  // Completes here when every message failed at once.
}

void Publisher::Impl::Enqueue(std::unique_ptr<ManyPart> part) {
  std::optional<Refusal<ManyPart>> refused = Admit(std::move(part));
  if (!refused) return;
  // Outside mu_: the release may complete the call, and a callback may
  // publish again.
  ManyPart& refused_part = *refused->item;
  {
    internal::ManyCall::Writer writer(*refused_part.call);
    for (uint32_t i : refused_part.sending) {
      writer.Failed(refused_part.first + i, refused->code,
                    internal::Retryable(refused->code), refused->error);
    }
  }
  refused_part.call->Release();
}

template <typename Item>
std::optional<Publisher::Impl::Refusal<Item>> Publisher::Impl::Admit(
    std::unique_ptr<Item> item) {
  bool wake_sender = false;
  {
    internal::PlainLock lock(&mu_);
    const std::size_t bytes = item->payload_bytes;
    auto fits = [this, bytes]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return closing_ || outstanding_bytes_ + bytes <= options_.max_outstanding_bytes;
    };
    if (!fits() && !options_.block_when_full) {
      return Refusal<Item>{
          std::move(item), kResourceExhausted,
          fmt::format("MaxOutstandingBytes ({} bytes) reached: {} bytes are waiting for "
                      "their results",
                      options_.max_outstanding_bytes, outstanding_bytes_)};
    }
    room_.Await(&mu_, fits);
    if (closing_) return Refusal<Item>{std::move(item), kUnavailable, "publisher closed"};
    item->seq = seqs_.Add();
    item->published_at = Clock::now();
    item->deadline = item->published_at + delivery_timeout_;
    outstanding_bytes_ += bytes;
    wake_sender = IncomingFor(std::move(item));
  }
  // Unlocked: the woken sender takes mu_ at once.
  if (wake_sender) sender_cv_.NotifyOne();
  return std::nullopt;
}

bool Publisher::Impl::Flush(std::chrono::milliseconds timeout) {
  uint64_t upto = 0;
  bool wake_sender = false;
  {
    internal::PlainLock lock(&mu_);
    upto = seqs_.next() - 1;
    if (seqs_.LowestUnresolved() > upto) return true;
    if (upto > urgent_upto_) {
      urgent_upto_ = upto;
      wake_sender = WakeSenderLocked();
    }
  }
  // Unlocked: the woken sender takes mu_ at once (Flush is rare: the second
  // lock costs less than the sender blocking behind this thread).
  if (wake_sender) sender_cv_.NotifyOne();
  internal::PlainLock lock(&mu_);
  auto done = [this, upto]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return seqs_.LowestUnresolved() > upto;
  };
  return resolved_.AwaitFor(&mu_, done, timeout);
}

void Publisher::Impl::ApplySettings(const internal::NodePathSettings& settings) {
  bool wake_sender = false;
  {
    internal::PlainLock lock(&mu_);
    if (settings == settings_) return;
    settings_ = settings;
    delivery_timeout_ = settings.delivery_timeout;
    new_settings_ = settings;
    wake_sender = WakeSenderLocked();
  }
  if (wake_sender) sender_cv_.NotifyOne();
}

PublisherStats Publisher::Impl::Stats() const {
  internal::NodePathSettings settings;
  {
    internal::PlainLock lock(&mu_);
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
  Parts incoming_parts;
  std::vector<Call*> finished;
  std::vector<std::unique_ptr<Pending>> expired;
  Resolutions done;
  Parts done_parts;
  std::optional<internal::NodePathSettings> new_settings;
  bool cancelled = false;
  // As last read: a Flush that raises it since also sets wake_.
  uint64_t urgent_upto = 0;
  internal::QuietTopics quiet;
  for (;;) {
    const Clock::time_point wakeup = batcher_.NextWakeup(urgent_upto);
    // Before mu_, which Publish waits for: only this thread changes the
    // Batcher.
    if (wakeup > Clock::now()) batcher_.Quiet(urgent_upto, &quiet);
    bool closing = false;
    {
      internal::PlainLock lock(&mu_);
      // New messages wake this thread only when they change what is due
      // (WakeSenderFor): a wake-up costs more than a small batch's work.
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return wake_ || !incoming_parts_.empty() || !finished_.empty();
      };
      // Messages that came while this thread worked are not in the Batcher
      // (nor in its quiet topics) yet: take them first.
      if (const Clock::time_point now = Clock::now(); incoming_.empty() && wakeup > now) {
        quiet_.swap(quiet);
        quiet_linger_ = batcher_.linger();
        sender_wakeup_ = wakeup;
        sender_asleep_ = true;
        if (wakeup == Clock::time_point::max()) {
          sender_cv_.Await(&mu_, has_work);
        } else {
          sender_cv_.AwaitUntil(&mu_, has_work, wakeup);
        }
        sender_asleep_ = false;
      }
      incoming.swap(incoming_);
      incoming_parts.swap(incoming_parts_);
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
    if (trace_ != nullptr && !closing) {
      // Before Finish frees their keys: a message that came while its key's
      // call was out waited behind it. (Add, below, sees the ones behind
      // an earlier message of this turn.)
      for (const std::unique_ptr<Pending>& message : incoming) {
        if (batcher_.WaitsBehindKey(*message)) trace_behind_key_.insert(message->seq);
      }
    }
    for (Call* call : finished) Finish(call, now, closing, &done, &done_parts);
    finished.clear();
    // In publish order (seq) across both queues: a key goes to whichever
    // came first.
    auto next_part = incoming_parts.begin();
    auto add_parts_before = [&](uint64_t seq) {
      for (; next_part != incoming_parts.end() && (*next_part)->seq < seq; ++next_part) {
        if (closing) {
          ClosePart(**next_part);
          done_parts.push_back(std::move(*next_part));
        } else {
          batcher_.AddPart(std::move(*next_part));
        }
      }
    };
    for (std::unique_ptr<Pending>& message : incoming) {
      add_parts_before(message->seq);
      if (closing) {
        PublishResult result = Closed(*message);
        done.emplace_back(std::move(message), std::move(result));
      } else {
        if (trace_ != nullptr && batcher_.WaitsBehindKey(*message)) {
          trace_behind_key_.insert(message->seq);
        }
        batcher_.Add(std::move(message));
      }
    }
    add_parts_before(UINT64_MAX);
    incoming.clear();
    incoming_parts.clear();

    if (closing) {
      for (std::unique_ptr<ManyPart>& part : batcher_.TakeAllParts()) {
        ClosePart(*part);
        done_parts.push_back(std::move(part));
      }
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
      while (std::unique_ptr<ManyPart> part = batcher_.NextPart()) {
        StartPart(std::move(part), now, &done_parts);
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

    Resolve(&done, &done_parts);
    if (closing && in_flight_.empty()) return;
  }
}

bool Publisher::Impl::WakeSenderFor(const Pending& message) {
  // Debian's Abseil keeps its own string_view.
  auto quiet = quiet_.find(absl::string_view(message.topic.data(), message.topic.size()));
  if (quiet == quiet_.end() || message.published_at + quiet_linger_ < sender_wakeup_ ||
      quiet->second.messages <= 1 || quiet->second.bytes <= message.wire_bytes) {
    return WakeSenderLocked();
  }
  --quiet->second.messages;
  quiet->second.bytes -= message.wire_bytes;
  return false;
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
  Send(std::move(call));
}

void Publisher::Impl::Send(std::unique_ptr<Call> call) {
  call->context.set_deadline(std::chrono::system_clock::now() + request_timeout_);
  ++batches_;
  Call* raw = call.get();
  if (trace_ != nullptr) raw->sent_ns = stage_trace::NowNs();
  in_flight_.emplace(raw, std::move(call));
  endpoints_[raw->endpoint].stub->UnaryCall(
      &raw->context, kPublishMethod, grpc::StubOptions(), &raw->request, &raw->response,
      [this, raw](grpc::Status status) { OnCallDone(raw, std::move(status)); });
}

void Publisher::Impl::OnCallDone(Call* call, grpc::Status status) {
  if (trace_ != nullptr) call->answered_ns = stage_trace::NowNs();
  call->status = std::move(status);
  internal::PlainLock lock(&mu_);
  finished_.push_back(call);
  // Under mu_, unlike the other wake-ups: once mu_ is released the sender
  // may finish this call, see nothing in flight at close, return, and the
  // destructor free sender_cv_.
  if (sender_asleep_) sender_cv_.NotifyOne();
}

void Publisher::Impl::Finish(Call* raw, Clock::time_point now, bool closing,
                             Resolutions* done, Parts* parts_done) {
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

  const std::size_t count =
      call->part != nullptr ? call->part->sending.size() : call->messages.size();
  const std::string& address = endpoints_[call->endpoint].address;
  results_.clear();
  const bool readable =
      status.ok() && internal::ReadResults(call->response, &response_storage_, &results_);
  const bool answered = readable && results_.size() == count;
  // When not answered: what each message failed with.
  int code = static_cast<int>(status.error_code());
  std::string error;
  if (!answered) {
    error = fmt::format("node {}: {}", address, status.error_message());
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
    }
  }
  const int failed_endpoint =
      NodeFailure(status.error_code()) ? static_cast<int>(call->endpoint) : -1;
  if (call->part != nullptr) {
    if (trace_ != nullptr && answered) TracePart(*call, now);
    FinishPart(*call, answered, code, error, cancelled_by_us, failed_endpoint, now,
               closing, parts_done);
    return;
  }

  std::vector<std::unique_ptr<Pending>> retries;
  if (answered) {
    // The trace names a batch by its first message's id (ferryd's rows too).
    const std::string batch_id = trace_ != nullptr ? call->messages.front()->id : "";
    for (std::size_t i = 0; i < count; ++i) {
      std::unique_ptr<Pending>& message = call->messages[i];
      message->failed_endpoint = -1;
      auto& [resolved, result] = done->emplace_back();
      internal::FromWire(results_[i], &message->id, &result);
      if (result.ok()) {
        if (trace_ != nullptr) TraceAcknowledged(*call, batch_id, *message, now);
        resolved = std::move(message);
      } else {
        PublishResult error = std::move(result);
        error.endpoint = address;
        done->pop_back();
        Failed(std::move(message), std::move(error), now, closing, &retries, done);
      }
    }
  } else {
    if (cancelled_by_us) {
      for (std::unique_ptr<Pending>& message : call->messages) {
        PublishResult result = Closed(*message);
        done->emplace_back(std::move(message), std::move(result));
      }
      call->messages.clear();
    }
    for (std::unique_ptr<Pending>& message : call->messages) {
      message->failed_endpoint = failed_endpoint;
      PublishResult result = internal::Failure(code, error, message->id);
      result.endpoint = address;
      Failed(std::move(message), std::move(result), now, closing, &retries, done);
    }
  }
  batcher_.Complete(call->topic, call->keys, std::move(retries));
}

void Publisher::Impl::StartPart(std::unique_ptr<ManyPart> part, Clock::time_point now,
                                Parts* done) {
  if (part->deadline <= now) {
    // Waited behind its keys (or its backoff) too long. A message that was
    // tried keeps its last error.
    if (part->attempts == 0) {
      const std::string error =
          fmt::format("not sent within DeliveryTimeout ({} ms)",
                      std::chrono::duration_cast<std::chrono::milliseconds>(
                          part->deadline - part->published_at)
                          .count());
      internal::ManyCall::Writer writer(*part->call);
      for (uint32_t i : part->sending) {
        writer.Failed(part->first + i, kDeadlineExceeded,
                      internal::Retryable(kDeadlineExceeded), error);
      }
    }
    done->push_back(std::move(part));
    return;
  }
  auto call = std::make_unique<Call>();
  call->endpoint = selector_.Pick(now, part->failed_endpoint);
  // The first attempt sends the bytes encoded at PublishMany as they are.
  call->request = part->attempts == 0 ? grpc::ByteBuffer(&part->request, 1)
                                      : internal::EncodeRetry(*part);
  call->part = std::move(part);
  Send(std::move(call));
}

void Publisher::Impl::FinishPart(Call& call, bool answered, int code,
                                 const std::string& error, bool cancelled_by_us,
                                 int failed_endpoint, Clock::time_point now, bool closing,
                                 Parts* done) {
  ManyPart& part = *call.part;
  if (cancelled_by_us) {
    ClosePart(part);
    done->push_back(std::move(call.part));
    return;
  }
  retries_.clear();
  uint64_t acknowledged = 0;
  const std::string& address = endpoints_[call.endpoint].address;
  {
    internal::ManyCall::Writer writer(*part.call);
    for (std::size_t k = 0; k < part.sending.size(); ++k) {
      const uint32_t i = part.sending[k];
      if (!answered) {
        const bool retryable = internal::Retryable(code);
        writer.Failed(part.first + i, code, retryable, error, false, address);
        if (retryable) retries_.push_back(i);
        continue;
      }
      const internal::ResultView& result = results_[k];
      if (result.code == 0) {
        writer.Succeeded(part.first + i, result.cluster, result.partition, result.offset);
        ++acknowledged;
        continue;
      }
      const bool retryable = internal::Retryable(result.code, result.retryable);
      writer.Failed(
          part.first + i, result.code, retryable,
          result.error.empty()
              ? fmt::format("node answered code {} without a reason", result.code)
              : std::string(result.error),
          false, address);
      if (retryable) retries_.push_back(i);
    }
  }
  acknowledged_ += acknowledged;
  part.failed_endpoint = answered ? -1 : failed_endpoint;
  if (!retries_.empty()) {
    part.sending.assign(retries_.begin(), retries_.end());
    if (closing) {
      ClosePart(part);
    } else {
      ++part.attempts;
      const Clock::time_point retry_at = now + backoff_.Delay(part.attempts);
      // Else the retried messages keep their last error.
      if (retry_at < part.deadline) {
        part.not_before = retry_at;
        batcher_.RetryPart(std::move(call.part));
        return;
      }
    }
  }
  done->push_back(std::move(call.part));
}

void Publisher::Impl::ClosePart(ManyPart& part) {
  internal::ManyCall::Writer writer(*part.call);
  for (uint32_t i : part.sending) {
    const std::string last(writer.LastError(part.first + i));
    writer.Failed(part.first + i, kUnavailable, internal::Retryable(kUnavailable),
                  last.empty() ? std::string("publisher closed")
                               : fmt::format("publisher closed; last error: {}", last));
  }
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

void Publisher::Impl::Resolve(Resolutions* done, Parts* parts) {
  if (done->empty() && parts->empty()) return;
  // One pass over the (cache-cold) messages collects what the locked steps
  // need, so mu_ is held only for arithmetic.
  std::size_t bytes = 0;
  uint64_t acknowledged = 0;
  std::vector<uint64_t> seqs;
  seqs.reserve(done->size() + parts->size());
  for (const auto& [message, result] : *done) {
    bytes += message->payload_bytes;
    seqs.push_back(message->seq);
    if (result.ok()) ++acknowledged;
    if (trace_ != nullptr) trace_behind_key_.erase(message->seq);
  }
  for (const std::unique_ptr<ManyPart>& part : *parts) {
    bytes += part->payload_bytes;
    // Before the part (whose keys view its bytes) goes.
    batcher_.CompletePart(*part);
    seqs.push_back(part->seq);
  }
  acknowledged_ += acknowledged;
  {
    // Bytes first: a caller woken by its future may publish again at once
    // and must find room.
    internal::PlainLock lock(&mu_);
    outstanding_bytes_ -= bytes;
  }
  // After unlocking (this thread outlives every waiter). All: each waiter
  // needs its own amount of room. With many callers blocked in Admit this
  // wakes them all per resolved batch, to find room for some; BlockWhenFull
  // at its limit is the slow path this accepts.
  room_.NotifyAll();
  // Outside mu_: completing wakes waiting threads, which then would contend
  // for mu_ with this thread, and Publish callers would wait for the whole
  // batch; a callback may publish again.
  if (options_.on_result) {
    for (const auto& [message, result] : *done) options_.on_result(result);
  }
  for (auto& [message, result] : *done) message->done.Complete(std::move(result));
  for (std::unique_ptr<ManyPart>& part : *parts) part->call->Release();
  if (trace_ != nullptr) WriteTrace();
  {
    // Last, so that Flush never sees a message done whose future is not.
    internal::PlainLock lock(&mu_);
    for (uint64_t seq : seqs) seqs_.Resolve(seq);
  }
  // After unlocking, as room_. All: each Flush waits for its own seq. A
  // thread that does not wait costs nothing here; glibc's notify without
  // waiters makes no system call.
  resolved_.NotifyAll();
  done->clear();
  parts->clear();
}

void Publisher::Impl::TracePart(const Call& call, Clock::time_point picked) {
  trace_rows_.push_back(TraceRow{.batch = "part",
                                 .messages = call.part->sending.size(),
                                 .published_ns = stage_trace::Ns(call.part->published_at),
                                 .sent_ns = call.sent_ns,
                                 .answered_ns = call.answered_ns,
                                 .picked_ns = stage_trace::Ns(picked),
                                 .attempts = call.part->attempts});
}

void Publisher::Impl::TraceAcknowledged(const Call& call, const std::string& batch_id,
                                        const Pending& message,
                                        Clock::time_point picked) {
  trace_rows_.push_back(TraceRow{.batch = batch_id,
                                 .messages = 1,
                                 .published_ns = stage_trace::Ns(message.published_at),
                                 .sent_ns = call.sent_ns,
                                 .answered_ns = call.answered_ns,
                                 .picked_ns = stage_trace::Ns(picked),
                                 .attempts = message.attempts,
                                 .behind_key = trace_behind_key_.contains(message.seq)});
}

void Publisher::Impl::WriteTrace() {
  const int64_t resolved_ns = stage_trace::NowNs();
  for (const TraceRow& row : trace_rows_) {
    trace_->Row(row.batch, {static_cast<int64_t>(row.messages), row.published_ns,
                            row.sent_ns, row.answered_ns, row.picked_ns, resolved_ns,
                            row.attempts, row.behind_key ? 1 : 0});
  }
  trace_rows_.clear();
}

}  // namespace ferry::client
