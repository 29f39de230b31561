#include "testing/subscriber_stream.h"

#include "absl/strings/str_cat.h"

namespace ferry::testing {

SubscriberStream::SubscriberStream(const std::string& address,
                                   const v1::SubscriptionOpen& open,
                                   MessageObserver on_message)
    : stub_(v1::Subscriber::NewStub(
          grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))),
      on_message_(std::move(on_message)) {
  stream_ = stub_->Subscribe(&context_);
  v1::SubscribeRequest request;
  *request.mutable_open() = open;
  Send(request);
  reader_ = std::thread([this] { ReadLoop(); });
}

SubscriberStream::~SubscriberStream() {
  context_.TryCancel();
  if (reader_.joinable()) reader_.join();
}

void SubscriberStream::ReadLoop() {
  v1::SubscribeResponse response;
  while (stream_->Read(&response)) {
    if (on_message_ && response.has_messages()) {
      for (const auto& m : response.messages().messages()) on_message_(m);
    }
    absl::MutexLock lock(&mu_);
    switch (response.response_case()) {
      case v1::SubscribeResponse::kOpened:
        opened_ = response.opened();
        break;
      case v1::SubscribeResponse::kMessages:
        for (auto& m : *response.mutable_messages()->mutable_messages()) {
          messages_.push_back(std::move(m));
        }
        break;
      case v1::SubscribeResponse::kReceiptResults:
        for (auto& r : *response.mutable_receipt_results()->mutable_results()) {
          results_.push_back(std::move(r));
        }
        break;
      default:
        break;
    }
  }
  grpc::Status status = stream_->Finish();
  absl::MutexLock lock(&mu_);
  status_ = status;
  ended_ = true;
}

std::optional<v1::Opened> SubscriberStream::WaitOpened(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(
                           +[](SubscriberStream* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                             return s->opened_.has_value() || s->ended_;
                           },
                           this),
                       timeout);
  return opened_;
}

std::optional<v1::ReceivedMessage> SubscriberStream::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(
                           +[](SubscriberStream* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                             return !s->messages_.empty() || s->ended_;
                           },
                           this),
                       timeout);
  if (messages_.empty()) return std::nullopt;
  v1::ReceivedMessage m = std::move(messages_.front());
  messages_.pop_front();
  return m;
}

std::vector<v1::ReceivedMessage> SubscriberStream::Take(size_t count,
                                                        absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  std::vector<v1::ReceivedMessage> out;
  while (out.size() < count) {
    auto m = Next(until - absl::Now());
    if (!m.has_value()) break;
    out.push_back(std::move(*m));
  }
  return out;
}

std::vector<v1::ReceiptResult> SubscriberStream::ReceiptResults() {
  absl::MutexLock lock(&mu_);
  return results_;
}

std::vector<v1::ReceiptResult> SubscriberStream::WaitReceiptResults(
    size_t count, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto enough = [this, count]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return results_.size() >= count || ended_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  return results_;
}

bool SubscriberStream::Send(const v1::SubscribeRequest& request) {
  absl::MutexLock lock(&write_mu_);
  if (writes_done_) return false;
  return stream_->Write(request);
}

bool SubscriberStream::Sync(absl::Duration timeout) {
  // Never a valid receipt: a wire receipt starts with its version byte 1.
  const std::string marker = absl::StrCat("sync-", syncs_.fetch_add(1));
  size_t seen = 0;
  {
    absl::MutexLock lock(&mu_);
    seen = results_.size();  // the answer cannot be among these
  }
  if (!Ack({marker})) return false;
  bool found = false;
  auto answered = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (; seen < results_.size() && !found; ++seen) {
      found = results_[seen].receipt() == marker;
    }
    return found || ended_;
  };
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&answered), timeout);
  return found;
}

bool SubscriberStream::Ack(const std::vector<std::string>& receipts) {
  v1::SubscribeRequest request;
  for (const auto& r : receipts) request.mutable_ack()->add_receipts(r);
  return Send(request);
}

bool SubscriberStream::Nack(const std::vector<std::string>& receipts,
                            absl::Duration delay) {
  v1::SubscribeRequest request;
  for (const auto& r : receipts) request.mutable_nack()->add_receipts(r);
  request.mutable_nack()->mutable_delay()->set_seconds(absl::ToInt64Seconds(delay));
  request.mutable_nack()->mutable_delay()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(delay % absl::Seconds(1))));
  return Send(request);
}

bool SubscriberStream::Extend(const std::vector<std::string>& receipts,
                              absl::Duration deadline) {
  v1::SubscribeRequest request;
  for (const auto& r : receipts) request.mutable_extend()->add_receipts(r);
  request.mutable_extend()->mutable_deadline()->set_seconds(
      absl::ToInt64Seconds(deadline));
  return Send(request);
}

grpc::Status SubscriberStream::Close() {
  {
    absl::MutexLock lock(&write_mu_);
    if (!writes_done_) stream_->WritesDone();
    writes_done_ = true;
  }
  return WaitEnded();
}

grpc::Status SubscriberStream::WaitEnded(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (!mu_.AwaitWithTimeout(absl::Condition(&ended_), timeout)) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "stream did not end");
  }
  return status_;
}

bool SubscriberStream::ended() const {
  absl::MutexLock lock(&mu_);
  return ended_;
}

std::optional<grpc::Status> SubscriberStream::end_status() const {
  absl::MutexLock lock(&mu_);
  if (!ended_) return std::nullopt;
  return status_;
}

void SubscriberStream::Cancel() { context_.TryCancel(); }

v1::SubscriptionOpen MakeOpen(const std::string& group,
                              const std::vector<std::string>& topics,
                              v1::Ordering ordering, bool from_earliest) {
  v1::SubscriptionOpen open;
  open.set_group(group);
  for (const auto& t : topics) open.add_topics(t);
  open.set_ordering(ordering);
  if (from_earliest) open.mutable_start()->set_earliest(true);
  return open;
}

}  // namespace ferry::testing
