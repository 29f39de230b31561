// Subscriber, its Builder and AckHandle: thin forwarding to Subscriber::Impl
// and to the stream that delivered a message.
#include "ferry/client/subscriber.h"

#include <utility>

#include "ack_collector.h"
#include "channel_security.h"
#include "subscribe_stream.h"
#include "subscriber_impl.h"
#include "subscriber_options.h"

namespace ferry::client {

AckHandle::AckHandle() = default;
AckHandle::AckHandle(std::unique_ptr<internal::Receipt> receipt)
    : receipt_(std::move(receipt)) {}
AckHandle::~AckHandle() { Nack(); }
AckHandle::AckHandle(AckHandle&&) noexcept = default;

AckHandle& AckHandle::operator=(AckHandle&& other) noexcept {
  if (this != &other) {
    Nack();
    receipt_ = std::move(other.receipt_);
  }
  return *this;
}

void AckHandle::Ack() {
  if (receipt_ == nullptr) return;
  std::unique_ptr<internal::Receipt> receipt = std::move(receipt_);
  if (internal::AckCollector* collector =
          internal::AckCollector::For(receipt->stream.get())) {
    collector->Add(receipt->seq);
  } else {
    receipt->stream->Ack(receipt->seq);
  }
}

void AckAll(std::span<PulledMessage> messages) {
  std::size_t i = 0;
  while (i < messages.size()) {
    const internal::Receipt* receipt = messages[i].handle_.receipt_.get();
    if (receipt == nullptr) {
      ++i;
      continue;
    }
    // Kept here: the handles let go of the stream before the collector is
    // done with it.
    const std::shared_ptr<internal::SubscribeStream> stream = receipt->stream;
    internal::AckCollector acks(stream.get());
    for (; i < messages.size(); ++i) {
      receipt = messages[i].handle_.receipt_.get();
      if (receipt != nullptr && receipt->stream != stream) break;
      messages[i].Ack();
    }
  }
}

void AckHandle::Nack(std::chrono::milliseconds delay) {
  if (receipt_ == nullptr) return;
  std::unique_ptr<internal::Receipt> receipt = std::move(receipt_);
  receipt->stream->Nack(receipt->seq, delay);
}

void AckHandle::ExtendDeadline(std::chrono::milliseconds deadline) {
  if (receipt_ != nullptr) receipt_->stream->Extend(receipt_->seq, deadline);
}

struct Subscriber::Builder::Options : internal::SubscriberOptions {};

Subscriber::Builder::Builder() : options_(std::make_unique<Options>()) {}
Subscriber::Builder::~Builder() = default;
Subscriber::Builder::Builder(Builder&&) noexcept = default;
Subscriber::Builder& Subscriber::Builder::operator=(Builder&&) noexcept = default;

Subscriber::Builder& Subscriber::Builder::Endpoints(std::vector<std::string> endpoints) {
  options_->endpoints = std::move(endpoints);
  return *this;
}

Subscriber::Builder& Subscriber::Builder::Security(client::Security security) {
  options_->security = internal::FromPublic(std::move(security));
  return *this;
}

Subscriber::Builder& Subscriber::Builder::Group(std::string group) {
  options_->group = std::move(group);
  return *this;
}

Subscriber::Builder& Subscriber::Builder::Topics(std::vector<std::string> topics) {
  options_->topics = std::move(topics);
  return *this;
}

Subscriber::Builder& Subscriber::Builder::Ordering(client::Ordering ordering) {
  options_->ordering = ordering;
  return *this;
}

Subscriber::Builder& Subscriber::Builder::AckDeadline(
    std::chrono::milliseconds deadline) {
  options_->ack_deadline = deadline;
  return *this;
}

Subscriber::Builder& Subscriber::Builder::FlowControl(int64_t max_outstanding_messages,
                                                      int64_t max_outstanding_bytes) {
  options_->max_outstanding_messages = max_outstanding_messages;
  options_->max_outstanding_bytes = max_outstanding_bytes;
  return *this;
}

Subscriber::Builder& Subscriber::Builder::StartAt(StartPosition position) {
  options_->start = position;
  return *this;
}

Subscriber::Builder& Subscriber::Builder::Filter(std::string filter) {
  options_->filter = std::move(filter);
  return *this;
}

Subscriber::Builder& Subscriber::Builder::MaxDeliveryAttempts(int attempts) {
  options_->max_delivery_attempts = attempts;
  return *this;
}

Subscriber::Builder& Subscriber::Builder::DeadLetterTopic(std::string topic) {
  options_->dead_letter_topic = std::move(topic);
  return *this;
}

Subscriber::Builder& Subscriber::Builder::ClientId(std::string client_id) {
  options_->client_id = std::move(client_id);
  return *this;
}

Subscriber::Builder& Subscriber::Builder::OnMessage(MessageHandler handler) {
  options_->on_message = std::move(handler);
  return *this;
}

Subscriber::Builder& Subscriber::Builder::HandlerThreads(int threads) {
  options_->handler_threads = threads;
  return *this;
}

Subscriber::Builder& Subscriber::Builder::OnError(ErrorHandler handler) {
  options_->on_error = std::move(handler);
  return *this;
}

Subscriber::Builder& Subscriber::Builder::OnReceiptFailure(
    ReceiptFailureHandler handler) {
  options_->on_receipt_failure = std::move(handler);
  return *this;
}

Subscriber::Builder& Subscriber::Builder::AckBatch(int max_receipts,
                                                   std::chrono::milliseconds max_delay) {
  options_->max_ack_batch = max_receipts;
  options_->max_ack_delay = max_delay;
  return *this;
}

Subscriber::Builder& Subscriber::Builder::MaxExtension(std::chrono::milliseconds max) {
  options_->max_extension = max;
  return *this;
}

Subscriber::Builder& Subscriber::Builder::ReconnectBackoff(
    std::chrono::milliseconds initial, std::chrono::milliseconds max) {
  options_->initial_backoff = initial;
  options_->max_backoff = max;
  return *this;
}

Subscriber::Builder& Subscriber::Builder::CloseTimeout(
    std::chrono::milliseconds timeout) {
  options_->close_timeout = timeout;
  return *this;
}

std::unique_ptr<Subscriber> Subscriber::Builder::Build(std::string* error) const {
  if (options_ == nullptr) {  // Moved from.
    if (error != nullptr) *error = "Subscriber::Builder used after being moved from";
    return nullptr;
  }
  if (absl::Status status = internal::Validate(*options_); !status.ok()) {
    if (error != nullptr) *error = std::string(status.message());
    return nullptr;
  }
  internal::SubscriberOptions options(*options_);
  if (!internal::BuildCredentials(options.security, &options.credentials, error)) {
    return nullptr;
  }
  return std::unique_ptr<Subscriber>(
      new Subscriber(std::make_unique<Impl>(std::move(options))));
}

Subscriber::Subscriber(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Subscriber::~Subscriber() = default;

std::optional<PulledMessage> Subscriber::Next(std::chrono::milliseconds timeout) {
  return impl_->Next(timeout);
}

std::optional<MessageBatch> Subscriber::NextBatch(std::chrono::milliseconds timeout) {
  return impl_->NextBatch(timeout);
}

std::optional<SubscriberError> Subscriber::Failure() const { return impl_->Failure(); }

SubscriberStats Subscriber::Stats() const { return impl_->Stats(); }

bool Subscriber::Close(std::chrono::milliseconds timeout) {
  return impl_->Close(timeout);
}

}  // namespace ferry::client
