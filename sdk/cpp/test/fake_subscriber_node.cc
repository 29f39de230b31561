#include "fake_subscriber_node.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <utility>

namespace ferry::client::testing {

using Request = ferry::v1::SubscribeRequest;
using Response = ferry::v1::SubscribeResponse;

namespace {

std::chrono::milliseconds Millis(const google::protobuf::Duration& duration) {
  return std::chrono::milliseconds(duration.seconds() * 1000 +
                                   duration.nanos() / 1'000'000);
}

}  // namespace

std::vector<std::string> StreamLog::Acked() const {
  std::vector<std::string> receipts;
  for (const Request& request : requests) {
    for (const std::string& receipt : request.ack().receipts())
      receipts.push_back(receipt);
  }
  return receipts;
}

std::vector<std::string> StreamLog::AckedSpans() const {
  std::vector<std::string> spans;
  for (const Request& request : requests) {
    for (const ferry::v1::ReceiptSpan& span : request.ack().spans()) {
      spans.push_back(fmt::format("{}:{}+{}", span.run(), span.first(), span.count()));
    }
  }
  return spans;
}

std::vector<std::size_t> StreamLog::AckBatchSizes() const {
  std::vector<std::size_t> sizes;
  for (const Request& request : requests) {
    if (request.has_ack()) sizes.push_back(request.ack().receipts_size());
  }
  return sizes;
}

std::vector<StreamLog::Timed> StreamLog::Nacked() const {
  std::vector<Timed> out;
  for (const Request& request : requests) {
    for (const std::string& receipt : request.nack().receipts()) {
      out.push_back(Timed{receipt, Millis(request.nack().delay())});
    }
  }
  return out;
}

std::vector<StreamLog::Timed> StreamLog::Extended() const {
  std::vector<Timed> out;
  for (const Request& request : requests) {
    for (const std::string& receipt : request.extend().receipts()) {
      out.push_back(Timed{receipt, Millis(request.extend().deadline())});
    }
  }
  return out;
}

// One stream. Writes go out one at a time from a queue; Finish waits for the
// queue to drain. gRPC is never called with mu_ held.
class FakeSubscriberNode::Reactor final
    : public grpc::ServerBidiReactor<Request, Response> {
 public:
  Reactor(FakeSubscriberNode* node, std::size_t index,
          grpc::CallbackServerContext* context)
      : node_(node), index_(index), context_(context) {}

  void Start() { StartRead(&request_); }

  void Send(Response response) {
    bool write;
    {
      absl::MutexLock lock(&mu_);
      if (ending_) return;
      queue_.push_back(std::move(response));
      write = NextWriteLocked();
    }
    if (write) StartWrite(&current_);
  }

  void End(const grpc::Status& status) {
    bool finish;
    {
      absl::MutexLock lock(&mu_);
      if (ending_) return;
      ending_ = true;
      status_ = status;
      finish = !writing_;
    }
    if (finish) Finish(status);
  }

 private:
  void OnReadDone(bool ok) override {
    if (!ok) {
      // A cancelled call fails its reads too; only a WritesDone is a half-close.
      if (!context_->IsCancelled()) node_->HalfClosed(index_);
      End(grpc::Status::OK);
      return;
    }
    if (!seen_open_) {
      seen_open_ = true;
      if (!request_.has_open()) {
        End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                         "the first request must carry open"));
        return;
      }
      grpc::Status rejection = node_->Opened(index_, request_.open());
      if (!rejection.ok()) {
        End(rejection);
        return;
      }
      Response opened;
      opened.mutable_opened()->set_node_id("fake");
      opened.mutable_opened()->set_stream_id(fmt::format("s{}", index_));
      Send(std::move(opened));
      node_->Accepted(index_);
    } else {
      node_->Received(index_, request_);
    }
    {
      absl::MutexLock lock(&mu_);
      if (ending_) return;
    }
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    bool write;
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) queue_.clear();
      write = NextWriteLocked();
      finish = !write && ending_;
    }
    if (write) StartWrite(&current_);
    if (finish) Finish(status_);
  }

  void OnCancel() override {
    End(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  }

  void OnDone() override { node_->Done(index_); }

  bool NextWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || queue_.empty()) return false;
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    return true;
  }

  FakeSubscriberNode* const node_;
  const std::size_t index_;
  grpc::CallbackServerContext* const context_;
  Request request_;  // Owned by the read in flight.
  bool seen_open_ = false;
  Response current_;  // Owned by the write in flight.
  absl::Mutex mu_;
  std::deque<Response> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  // Set once, before ending_.
  grpc::Status status_;
};

class FakeSubscriberNode::Service final : public ferry::v1::Subscriber::CallbackService {
 public:
  explicit Service(FakeSubscriberNode* node) : node_(node) {}

  grpc::ServerBidiReactor<Request, Response>* Subscribe(
      grpc::CallbackServerContext* context) override {
    return node_->NewStream(context);
  }

 private:
  FakeSubscriberNode* node_;
};

FakeSubscriberNode::FakeSubscriberNode() : service_(std::make_unique<Service>(this)) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    std::fprintf(stderr, "FakeSubscriberNode: cannot listen on 127.0.0.1\n");
    std::abort();
  }
  address_ = fmt::format("127.0.0.1:{}", port);
}

FakeSubscriberNode::~FakeSubscriberNode() {
  server_->Shutdown(std::chrono::system_clock::now());
  // Every reactor must have seen OnDone before it is destroyed.
  const bool all_done = WaitFor(
      [](const Streams& streams) {
        for (const StreamLog& log : streams) {
          if (!log.done) return false;
        }
        return true;
      },
      std::chrono::seconds(10));
  if (!all_done) {
    std::fprintf(stderr, "FakeSubscriberNode: streams did not end\n");
    std::abort();
  }
}

void FakeSubscriberNode::RejectOpens(grpc::StatusCode code, std::string message) {
  absl::MutexLock lock(&mu_);
  reject_code_ = code;
  reject_message_ = std::move(message);
}

std::vector<std::string> FakeSubscriberNode::Deliver(
    std::size_t index, std::vector<ferry::v1::ReceivedMessage> messages,
    std::vector<ferry::v1::ReceiptRun> runs) {
  Response response;
  std::vector<std::string> receipts;
  Reactor* reactor;
  {
    absl::MutexLock lock(&mu_);
    reactor = reactors_.at(index).get();
    for (ferry::v1::ReceivedMessage& message : messages) {
      if (message.receipt().empty()) {
        message.set_receipt(fmt::format("s{}-{}", index, next_receipt_++));
      }
      receipts.push_back(message.receipt());
      *response.mutable_messages()->add_messages() = std::move(message);
    }
    for (ferry::v1::ReceiptRun& run : runs) {
      *response.mutable_messages()->add_runs() = std::move(run);
    }
  }
  reactor->Send(std::move(response));
  return receipts;
}

void FakeSubscriberNode::SendReceiptFailure(std::size_t index, const std::string& receipt,
                                            int code, const std::string& message) {
  Response response;
  ferry::v1::ReceiptResult* result = response.mutable_receipt_results()->add_results();
  result->set_receipt(receipt);
  result->mutable_status()->set_code(code);
  result->mutable_status()->set_message(message);
  Find(index)->Send(std::move(response));
}

void FakeSubscriberNode::Break(std::size_t index, const grpc::Status& status) {
  Find(index)->End(status);
}

FakeSubscriberNode::Streams FakeSubscriberNode::streams() const {
  absl::MutexLock lock(&mu_);
  return logs_;
}

bool FakeSubscriberNode::WaitFor(const std::function<bool(const Streams&)>& done,
                                 std::chrono::milliseconds timeout) const {
  absl::MutexLock lock(&mu_);
  auto holds = [this, &done]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done(logs_); };
  return mu_.AwaitWithTimeout(absl::Condition(&holds), absl::FromChrono(timeout));
}

grpc::ServerBidiReactor<Request, Response>* FakeSubscriberNode::NewStream(
    grpc::CallbackServerContext* context) {
  Reactor* reactor;
  {
    absl::MutexLock lock(&mu_);
    const std::size_t index = logs_.size();
    logs_.emplace_back();
    reactors_.push_back(std::make_unique<Reactor>(this, index, context));
    reactor = reactors_.back().get();
  }
  reactor->Start();
  return reactor;
}

grpc::Status FakeSubscriberNode::Opened(std::size_t index,
                                        const ferry::v1::SubscriptionOpen& open) {
  absl::MutexLock lock(&mu_);
  logs_[index].open = open;
  if (reject_code_ != grpc::StatusCode::OK) {
    return grpc::Status(reject_code_, reject_message_);
  }
  return grpc::Status::OK;
}

void FakeSubscriberNode::Accepted(std::size_t index) {
  absl::MutexLock lock(&mu_);
  logs_[index].opened = true;
}

void FakeSubscriberNode::Received(std::size_t index, const Request& request) {
  absl::MutexLock lock(&mu_);
  logs_[index].requests.push_back(request);
}

void FakeSubscriberNode::HalfClosed(std::size_t index) {
  absl::MutexLock lock(&mu_);
  logs_[index].half_closed = true;
}

void FakeSubscriberNode::Done(std::size_t index) {
  absl::MutexLock lock(&mu_);
  logs_[index].done = true;
}

FakeSubscriberNode::Reactor* FakeSubscriberNode::Find(std::size_t index) const {
  absl::MutexLock lock(&mu_);
  return reactors_.at(index).get();
}

}  // namespace ferry::client::testing
