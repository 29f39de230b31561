#include "subscribe/subscriber_service.h"

#include <fmt/format.h>

#include <atomic>
#include <deque>

#include "api/convert.h"

namespace ferry::subscribe {

class SubscribeReactor;

// What outlives a stream's reactor: the dispatcher sends through it, and it
// keeps the reactor from being deleted while a call into it is running. The
// reactor clears it in OnDone, which waits for running calls to return.
class StreamGuard final : public StreamSink {
 public:
  explicit StreamGuard(SubscribeReactor* reactor) : reactor_(reactor) {}

  void Send(SerializedResponse response) override;
  void Cancel();
  // Called by the reactor in OnDone; returns once no call into it runs.
  void Release();

 private:
  // The reactor while it lives and a call may use it; nullptr after Release.
  SubscribeReactor* Acquire();
  void Done();

  absl::Mutex mu_;
  SubscribeReactor* reactor_ ABSL_GUARDED_BY(mu_);
  int users_ ABSL_GUARDED_BY(mu_) = 0;
};

class SubscribeReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  SubscribeReactor(SubscriberService* service, GroupRegistry* registry,
                   const std::string& node_id, grpc::CallbackServerContext* context)
      : service_(service),
        registry_(registry),
        node_id_(node_id),
        context_(context),
        guard_(std::make_shared<StreamGuard>(this)),
        stream_id_(registry->NextStreamId()) {
    service_->Add(guard_);
    StartRead(&raw_request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed or the call broke
      DetachFromGroup();
      {
        absl::MutexLock lock(&mu_);
        reads_done_ = true;
      }
      MaybeFinish();
      return;
    }
    if (!grpc::SerializationTraits<v1::SubscribeRequest>::Deserialize(&raw_request_,
                                                                      &request_)
             .ok()) {
      EndRequest(absl::InvalidArgumentError("malformed SubscribeRequest"));
      return;
    }
    if (request_.has_open() && !open_started_) {
      absl::StatusOr<std::string> principal =
          service_->authorizer() == nullptr
              ? std::string()
              : service_->authorizer()->Admit(*context_, request_);
      if (!principal.ok()) {
        EndRequest(principal.status());
        return;
      }
      if (service_->delivered() != nullptr && !principal->empty()) {
        delivered_.store(&service_->delivered()->For(*principal));
      }
      // Validation reads topic metadata and joining may block: not on this
      // gRPC thread. No read is started until the open is done, so nothing
      // else of this stream runs meanwhile.
      open_started_ = true;
      service_->RunBlocking([this, open = std::move(*request_.mutable_open())] {
        // A stream cancelled while its open waited (client gone, node
        // draining) skips the metadata lookup, so queued opens cannot hold
        // up shutdown behind a slow cluster.
        EndRequest(context_->IsCancelled()
                       ? absl::CancelledError("the stream was cancelled before it opened")
                       : Open(open));
      });
      return;
    }
    EndRequest(Handle());
  }

  void OnWriteDone(bool ok) override {
    const grpc::ByteBuffer* next = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (!writes_.empty()) writes_.pop_front();
      if (!ok) {
        // The client is gone; what was not written is in flight with this
        // stream and is released (delivered again) by the detach.
        broken_ = true;
        writes_.clear();
      }
      if (writes_.empty()) {
        writing_ = false;
      } else {
        next = &writes_.front();
      }
    }
    if (!ok) context_->TryCancel();
    if (next != nullptr) {
      StartWrite(next);
    } else {
      MaybeFinish();
    }
  }

  void OnDone() override {
    DetachFromGroup();
    guard_->Release();
    service_->Remove(guard_);
    delete this;
  }

  // From the dispatcher (through the guard).
  void Send(SerializedResponse response) {
    if (metrics::Counter* delivered = delivered_.load(); delivered != nullptr) {
      delivered->Inc(static_cast<double>(response.messages()));
    }
    const grpc::ByteBuffer* start = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (broken_ || finishing_ || reads_done_) return;
      writes_.push_back(ToByteBuffer(std::move(response)));
      if (!writing_) {
        writing_ = true;
        start = &writes_.front();
      }
    }
    if (start != nullptr) StartWrite(start);
  }

  void Cancel() { context_->TryCancel(); }

 private:
  // The response's buffer becomes the slice gRPC sends, without a copy.
  static grpc::ByteBuffer ToByteBuffer(SerializedResponse response) {
    const size_t size = response.size();
    grpc::Slice slice(response.Release(), size,
                      [](void* data) { delete[] static_cast<char*>(data); });
    return grpc::ByteBuffer(&slice, 1);
  }

  void Send(const v1::SubscribeResponse& response) {
    Send(SerializedResponse::Of(response));
  }

  // Reads the next request, or ends the stream with `status`.
  void EndRequest(const absl::Status& status) {
    if (status.ok()) {
      StartRead(&raw_request_);
      return;
    }
    DetachFromGroup();
    {
      absl::MutexLock lock(&mu_);
      reads_done_ = true;
      final_status_ = api::ToGrpcStatus(status);
      // Drop queued messages, but not the one being written.
      while (writes_.size() > (writing_ ? 1 : 0)) writes_.pop_back();
    }
    MaybeFinish();
  }

  // Applies one request; an error ends the stream with that status.
  absl::Status Handle() {
    const v1::SubscribeRequest& request = request_;
    std::shared_ptr<GroupDispatcher> dispatcher;
    {
      absl::MutexLock lock(&mu_);
      dispatcher = dispatcher_;
    }
    if (request.has_open()) {
      return absl::InvalidArgumentError("open: the stream is already open");
    }
    if (dispatcher == nullptr) {
      return absl::InvalidArgumentError("the first request of a stream must be open");
    }
    std::vector<v1::ReceiptResult> failures;
    switch (request.request_case()) {
      case v1::SubscribeRequest::kAck:
        failures =
            dispatcher->Ack(stream_id_, request.ack().receipts(), request.ack().spans());
        break;
      case v1::SubscribeRequest::kNack: {
        const auto& d = request.nack().delay();
        failures =
            dispatcher->Nack(stream_id_, request.nack().receipts(),
                             absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos()));
        break;
      }
      case v1::SubscribeRequest::kExtend: {
        const auto& d = request.extend().deadline();
        const absl::Duration deadline =
            absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
        if (deadline <= absl::ZeroDuration() || deadline > absl::Minutes(10)) {
          return absl::InvalidArgumentError("extend.deadline: not in 1ns..10m");
        }
        failures = dispatcher->Extend(stream_id_, request.extend().receipts(), deadline);
        break;
      }
      case v1::SubscribeRequest::kFlow:
        if (request.flow().max_outstanding_messages() < 0 ||
            request.flow().max_outstanding_bytes() < 0) {
          return absl::InvalidArgumentError("flow: negative limit");
        }
        dispatcher->UpdateFlow(stream_id_, request.flow().max_outstanding_messages(),
                               request.flow().max_outstanding_bytes());
        break;
      default:
        return absl::InvalidArgumentError("empty request");
    }
    if (!failures.empty()) {
      v1::SubscribeResponse response;
      for (auto& f : failures) {
        *response.mutable_receipt_results()->add_results() = std::move(f);
      }
      Send(std::move(response));
    }
    return absl::OkStatus();
  }

  // Validates and attaches the stream to its group. Blocking (topic metadata,
  // bounded by the cluster's admin timeout; joining): runs on the service's
  // blocking threads.
  absl::Status Open(const v1::SubscriptionOpen& open) {
    auto validated = registry_->Validate(open);
    if (!validated.ok()) return validated.status();
    validated->stream.peer = context_->peer();
    v1::SubscribeResponse opened;
    opened.mutable_opened()->set_node_id(node_id_);
    opened.mutable_opened()->set_stream_id(fmt::format("{}/{}", node_id_, stream_id_));
    Send(opened);  // before any message the dispatcher sends
    auto dispatcher = registry_->Attach(*validated, stream_id_, guard_);
    if (!dispatcher.ok()) return dispatcher.status();
    absl::MutexLock lock(&mu_);
    dispatcher_ = *std::move(dispatcher);
    return absl::OkStatus();
  }

  void DetachFromGroup() {
    std::shared_ptr<GroupDispatcher> dispatcher;
    {
      absl::MutexLock lock(&mu_);
      dispatcher.swap(dispatcher_);
    }
    if (dispatcher != nullptr) dispatcher->Detach(stream_id_);
  }

  // Finishes once reading stopped and queued writes went out. Finish is the
  // last thing done here: OnDone (which deletes this) may follow at once.
  void MaybeFinish() {
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (!reads_done_ || writing_ || finishing_) return;
      finishing_ = true;
      status = final_status_;
    }
    Finish(status);
  }

  SubscriberService* const service_;
  GroupRegistry* const registry_;
  const std::string& node_id_;
  grpc::CallbackServerContext* const context_;
  const std::shared_ptr<StreamGuard> guard_;
  const StreamId stream_id_;
  // The principal's count of delivered messages (null: not counted); set at
  // open, before the dispatcher may send.
  std::atomic<metrics::Counter*> delivered_{nullptr};
  // Only touched by the read chain.
  grpc::ByteBuffer raw_request_;
  v1::SubscribeRequest request_;
  bool open_started_ = false;

  absl::Mutex mu_;
  std::shared_ptr<GroupDispatcher> dispatcher_ ABSL_GUARDED_BY(mu_);
  std::deque<grpc::ByteBuffer> writes_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

SubscribeReactor* StreamGuard::Acquire() {
  absl::MutexLock lock(&mu_);
  if (reactor_ != nullptr) ++users_;
  return reactor_;
}

void StreamGuard::Done() {
  absl::MutexLock lock(&mu_);
  --users_;
}

void StreamGuard::Send(SerializedResponse response) {
  if (SubscribeReactor* reactor = Acquire()) {
    reactor->Send(std::move(response));
    Done();
  }
}

void StreamGuard::Cancel() {
  if (SubscribeReactor* reactor = Acquire()) {
    reactor->Cancel();
    Done();
  }
}

void StreamGuard::Release() {
  absl::MutexLock lock(&mu_);
  reactor_ = nullptr;
  mu_.Await(absl::Condition(
      +[](int* users) { return *users == 0; }, &users_));
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* SubscriberService::Subscribe(
    grpc::CallbackServerContext* context) {
  return new SubscribeReactor(this, registry_, node_id_, context);
}

void SubscriberService::Add(const std::shared_ptr<StreamGuard>& stream) {
  absl::MutexLock lock(&mu_);
  streams_.insert(stream);
}

void SubscriberService::Remove(const std::shared_ptr<StreamGuard>& stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

void SubscriberService::CancelAll() {
  std::set<std::shared_ptr<StreamGuard>> streams;
  {
    absl::MutexLock lock(&mu_);
    streams = streams_;
  }
  for (const auto& stream : streams) stream->Cancel();
}

}  // namespace ferry::subscribe
