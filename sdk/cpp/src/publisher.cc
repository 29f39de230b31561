// Publisher and Publisher::Builder: thin forwarding to Publisher::Impl (or,
// with Fallback, Publisher::WithFallback).
#include "ferry/client/publisher.h"

#include <utility>

#include "channel_security.h"
#include "completion.h"
#include "fallback_publisher.h"
#include "options.h"
#include "publisher_impl.h"

namespace ferry::client {

struct Publisher::Builder::Options : internal::PublisherOptions {};

Publisher::Builder::Builder() : options_(std::make_unique<Options>()) {}
Publisher::Builder::~Builder() = default;
Publisher::Builder::Builder(Builder&&) noexcept = default;
Publisher::Builder& Publisher::Builder::operator=(Builder&&) noexcept = default;

Publisher::Builder& Publisher::Builder::Endpoints(std::vector<std::string> endpoints) {
  options_->endpoints = std::move(endpoints);
  return *this;
}

Publisher::Builder& Publisher::Builder::Security(client::Security security) {
  options_->security = internal::FromPublic(std::move(security));
  return *this;
}

Publisher::Builder& Publisher::Builder::MaxBatchMessages(int messages) {
  options_->max_batch_messages = messages;
  options_->max_batch_messages_set = true;
  return *this;
}

Publisher::Builder& Publisher::Builder::MaxBatchBytes(std::size_t bytes) {
  options_->max_batch_bytes = bytes;
  options_->max_batch_bytes_set = true;
  return *this;
}

Publisher::Builder& Publisher::Builder::Linger(std::chrono::milliseconds linger) {
  options_->linger = linger;
  options_->linger_set = true;
  return *this;
}

Publisher::Builder& Publisher::Builder::MaxOutstandingBytes(std::size_t bytes) {
  options_->max_outstanding_bytes = bytes;
  return *this;
}

Publisher::Builder& Publisher::Builder::BlockWhenFull(bool block) {
  options_->block_when_full = block;
  return *this;
}

Publisher::Builder& Publisher::Builder::RequestTimeout(
    std::chrono::milliseconds timeout) {
  options_->request_timeout = timeout;
  options_->request_timeout_set = true;
  return *this;
}

Publisher::Builder& Publisher::Builder::DeliveryTimeout(
    std::chrono::milliseconds timeout) {
  options_->delivery_timeout = timeout;
  options_->delivery_timeout_set = true;
  return *this;
}

Publisher::Builder& Publisher::Builder::RetryBackoff(std::chrono::milliseconds initial,
                                                     std::chrono::milliseconds max) {
  options_->initial_backoff = initial;
  options_->max_backoff = max;
  return *this;
}

Publisher::Builder& Publisher::Builder::CloseTimeout(std::chrono::milliseconds timeout) {
  options_->close_timeout = timeout;
  return *this;
}

std::unique_ptr<Publisher> Publisher::Builder::Build(std::string* error) const {
  if (options_ == nullptr) {  // Moved from.
    if (error != nullptr) *error = "Publisher::Builder used after being moved from";
    return nullptr;
  }
  if (absl::Status status = internal::Validate(*options_); !status.ok()) {
    if (error != nullptr) *error = std::string(status.message());
    return nullptr;
  }
  internal::PublisherOptions options(*options_);
  if (!internal::BuildCredentials(options.security, &options.credentials, error)) {
    return nullptr;
  }
  if (options_->fallback) {
    return std::unique_ptr<Publisher>(
        new Publisher(std::make_unique<WithFallback>(std::move(options))));
  }
  return std::unique_ptr<Publisher>(
      new Publisher(std::make_unique<Impl>(std::move(options))));
}

Publisher::Builder& Publisher::Builder::Fallback(bool enabled) {
  options_->fallback = enabled;
  return *this;
}

Publisher::Builder& Publisher::Builder::FallbackAfter(std::chrono::milliseconds after) {
  options_->fallback_after = after;
  return *this;
}

Publisher::Builder& Publisher::Builder::PushedSettings(bool follow) {
  options_->pushed_settings = follow;
  return *this;
}

Publisher::Builder& Publisher::Builder::ClientId(std::string id) {
  options_->client_id = std::move(id);
  return *this;
}

Publisher::Publisher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Publisher::Publisher(std::unique_ptr<WithFallback> fallback)
    : fallback_(std::move(fallback)) {}

Publisher::~Publisher() = default;

std::future<PublishResult> Publisher::Publish(std::string topic, Message message) {
  auto [completion, future] = internal::Completion::WithFuture();
  if (fallback_) {
    fallback_->Publish(std::move(topic), std::move(message), std::move(completion));
  } else {
    impl_->Publish(topic, message, std::move(completion));
  }
  return std::move(future);
}

void Publisher::Publish(std::string topic, Message message, Callback done) {
  auto completion = internal::Completion::WithCallback(std::move(done));
  if (fallback_) {
    fallback_->Publish(std::move(topic), std::move(message), std::move(completion));
  } else {
    impl_->Publish(topic, message, std::move(completion));
  }
}

std::future<PublishManyResult> Publisher::PublishMany(
    std::string_view topic, std::span<const MessageView> messages) {
  auto [completion, future] = internal::ManyCompletion::WithFuture();
  if (fallback_) {
    fallback_->PublishMany(topic, messages, std::move(completion));
  } else {
    impl_->PublishMany(topic, messages, std::move(completion));
  }
  return std::move(future);
}

void Publisher::PublishMany(std::string_view topic, std::span<const MessageView> messages,
                            ManyCallback done) {
  auto completion = internal::ManyCompletion::WithCallback(std::move(done));
  if (fallback_) {
    fallback_->PublishMany(topic, messages, std::move(completion));
  } else {
    impl_->PublishMany(topic, messages, std::move(completion));
  }
}

PublishResult PublishManyResult::Get(std::size_t i) const {
  const MessageOutcome& outcome = messages[i];
  PublishResult result{.code = outcome.code,
                       .retryable = outcome.retryable,
                       .id = std::string(id(i)),
                       .direct = outcome.direct};
  if (outcome.ok()) {
    result.cluster = clusters[outcome.cluster];
    result.partition = outcome.partition;
    result.offset = outcome.offset;
  } else {
    result.error = errors[outcome.error];
    // Bounded: a result an application built by hand may have no endpoints.
    if (outcome.endpoint < endpoints.size())
      result.endpoint = endpoints[outcome.endpoint];
  }
  return result;
}

bool Publisher::Flush(std::chrono::milliseconds timeout) {
  return fallback_ ? fallback_->Flush(timeout) : impl_->Flush(timeout);
}

PublisherStats Publisher::Stats() const {
  return fallback_ ? fallback_->Stats() : impl_->Stats();
}

}  // namespace ferry::client
