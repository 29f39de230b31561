#include "publish/publisher_service.h"

#include <fmt/format.h>

#include <deque>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "api/convert.h"
#include "api/retry.h"
#include "publish/received_batch.h"

namespace ferry::publish {
namespace {

absl::Status Overloaded(const InflightLimiter& limiter) {
  return absl::ResourceExhaustedError(
      fmt::format("node holds its limit of {} bytes in flight "
                  "(publish.max_inflight_bytes); retry later or on another node",
                  limiter.limit()));
}

// One PublishStream call. Batches are read, admitted and handed to the
// publisher one at a time, in the order they were sent (one read chain: the
// next read starts after BatchPublisher::Publish returned), so they reach
// the backend in that order; they are then published and answered
// concurrently, and answers go out in completion order through a write queue
// (gRPC allows one write in flight). The reactor deletes itself in OnDone,
// which gRPC calls only after Finish, and Finish waits for every batch.
// The caller's principal once `request` passed the authorizer ("" without
// checks or with auth off).
absl::StatusOr<std::string> Admit(security::Authorizer* authorizer,
                                  grpc::CallbackServerContext& context,
                                  const PublishRequestView& request) {
  if (authorizer == nullptr) return std::string();
  // The authorizer reads the topic through the message's descriptor.
  v1::PublishRequest topic_only;
  topic_only.set_topic(request.topic);
  return authorizer->Admit(context, topic_only);
}

// Counts an accepted batch for its principal (metrics.max_principals).
void CountFor(metrics::PrincipalCounters* published, const std::string& principal,
              const PublishRequestView& request) {
  if (published != nullptr && !principal.empty()) {
    published->For(principal).Inc(static_cast<double>(request.messages.size()));
  }
}

// The stream's answer to a batch that failed as a whole.
grpc::ByteBuffer BatchError(uint64_t request_id, const absl::Status& status) {
  v1::PublishResponse response;
  response.set_request_id(request_id);
  api::ToProtoStatus(status, api::IsRetryable(status.code()), response.mutable_error());
  grpc::Slice bytes(response.SerializeAsString());
  return grpc::ByteBuffer(&bytes, 1);
}

class PublishStreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  PublishStreamReactor(BatchPublisher* publisher, InflightLimiter* limiter,
                       security::Authorizer* authorizer,
                       metrics::PrincipalCounters* published,
                       grpc::CallbackServerContext* context)
      : publisher_(publisher),
        limiter_(limiter),
        authorizer_(authorizer),
        published_(published),
        context_(context) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // client half-closed, or the call is gone
      {
        absl::MutexLock lock(&mu_);
        reads_done_ = true;
      }
      MaybeFinish();
      return;
    }
    auto exchange = std::make_shared<ReceivedBatch>();
    absl::Status decoded = exchange->Decode(request_);
    request_.Clear();
    if (!decoded.ok()) {
      // Not a PublishRequest: which batch it was is unknown, so the stream
      // ends (after the answers it owes) instead of answering it.
      {
        absl::MutexLock lock(&mu_);
        reads_done_ = true;
        end_status_ = api::ToGrpcStatus(decoded);
      }
      MaybeFinish();
      return;
    }
    const PublishRequestView& request = exchange->request();
    absl::StatusOr<std::string> principal = Admit(authorizer_, *context_, request);
    absl::StatusOr<PreparedBatch> batch =
        principal.ok() ? publisher_->Prepare(request) : principal.status();
    if (!batch.ok()) {
      Send(BatchError(request.request_id, batch.status()));
      ContinueReading();
      return;
    }
    CountFor(published_, *principal, request);
    {
      absl::MutexLock lock(&mu_);
      ++pending_;
    }
    const int64_t bytes = batch->bytes;
    limiter_->AcquireAsync(bytes, [this, exchange, batch = *batch, bytes] {
      if (cancelled_.load()) {
        limiter_->Release(bytes);
        BatchDone();
      } else {
        publisher_->Publish(&exchange->request(), exchange->answer(), batch,
                            [this, exchange] {
                              Send(exchange->Response());
                              BatchDone();
                            });
      }
      // Only now, with the batch handed over (each message passed to
      // Cluster::Publish, or the batch queued behind earlier ones for its
      // topic's creation), may the next batch be read: reading it earlier
      // would let its dispatch run on another thread alongside this one's and
      // reorder a key's messages. `this` is still alive: Finish needs
      // reads_done_, which only the read started here can set.
      ContinueReading();
    });
  }

  void OnWriteDone(bool ok) override {
    const grpc::ByteBuffer* next = nullptr;
    bool resume_reading = false;
    {
      absl::MutexLock lock(&mu_);
      writes_.pop_front();
      if (!ok) {
        // The client is gone: answers still owed are dropped; its messages
        // were published and are reported to nobody (the SDK retries them
        // elsewhere, which the ferry.id header lets consumers de-duplicate).
        broken_ = true;
        writes_.clear();
      }
      if (writes_.empty()) {
        writing_ = false;
      } else {
        next = &writes_.front();
      }
      if (read_paused_ && writes_.size() < kMaxQueuedReplies) {
        read_paused_ = false;
        resume_reading = true;
      }
    }
    if (resume_reading) StartRead(&request_);
    if (next != nullptr) {
      StartWrite(next);
    } else {
      MaybeFinish();
    }
  }

  void OnCancel() override { cancelled_ = true; }

  void OnDone() override { delete this; }

 private:
  // Answers waiting for a slow reader are bounded: past this many, the next
  // batch is not read until the client takes some.
  static constexpr size_t kMaxQueuedReplies = 64;

  // Starts the next read unless too many answers are queued; OnWriteDone
  // resumes it then. There is only ever one read chain, so reads never
  // overlap.
  void ContinueReading() {
    {
      absl::MutexLock lock(&mu_);
      if (writes_.size() >= kMaxQueuedReplies) {
        read_paused_ = true;
        return;
      }
    }
    StartRead(&request_);
  }

  void Send(grpc::ByteBuffer response) {
    const grpc::ByteBuffer* start = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (broken_) return;
      // Swapped in: ByteBuffer has no move constructor, a push would copy.
      writes_.emplace_back().Swap(&response);
      if (!writing_) {
        writing_ = true;
        start = &writes_.front();
      }
    }
    if (start != nullptr) StartWrite(start);
  }

  void BatchDone() {
    {
      absl::MutexLock lock(&mu_);
      --pending_;
    }
    MaybeFinish();
  }

  // Finishes once the client stopped sending and every batch was answered.
  // Finish is called outside the lock: OnDone (which deletes this) may follow.
  void MaybeFinish() {
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (!reads_done_ || pending_ > 0 || writing_ || finished_) return;
      finished_ = true;
      status = end_status_;
    }
    Finish(status);
  }

  BatchPublisher* const publisher_;
  InflightLimiter* const limiter_;
  security::Authorizer* const authorizer_;
  metrics::PrincipalCounters* const published_;
  grpc::CallbackServerContext* const context_;  // valid until OnDone
  // Only touched by the read chain (one read in flight at a time).
  grpc::ByteBuffer request_;
  std::atomic<bool> cancelled_{false};

  absl::Mutex mu_;
  std::deque<grpc::ByteBuffer> writes_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  // What Finish reports: OK, or why the stream was ended.
  grpc::Status end_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

PublisherService::PublisherService(BatchPublisher* publisher, InflightLimiter* limiter,
                                   security::Authorizer* authorizer,
                                   metrics::PrincipalCounters* published)
    : publisher_(publisher),
      limiter_(limiter),
      authorizer_(authorizer),
      published_(published) {}

grpc::ServerUnaryReactor* PublisherService::Publish(grpc::CallbackServerContext* context,
                                                    const grpc::ByteBuffer* request,
                                                    grpc::ByteBuffer* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto exchange = std::make_unique<ReceivedBatch>();
  if (absl::Status s = exchange->Decode(*request); !s.ok()) {
    reactor->Finish(api::ToGrpcStatus(s));
    return reactor;
  }
  absl::StatusOr<std::string> principal =
      Admit(authorizer_, *context, exchange->request());
  if (!principal.ok()) {
    reactor->Finish(api::ToGrpcStatus(principal.status()));
    return reactor;
  }
  auto batch = publisher_->Prepare(exchange->request());
  if (!batch.ok()) {
    reactor->Finish(api::ToGrpcStatus(batch.status()));
    return reactor;
  }
  if (!limiter_->TryAcquire(batch->bytes)) {
    reactor->Finish(api::ToGrpcStatus(Overloaded(*limiter_)));
    return reactor;
  }
  CountFor(published_, *principal, exchange->request());
  // `response` is gRPC's until the call is done, which Finish starts.
  ReceivedBatch* received = exchange.release();
  publisher_->Publish(&received->request(), received->answer(), *batch,
                      [reactor, received, response] {
                        // ByteBuffer has no move assignment: `=` would copy.
                        grpc::ByteBuffer answer = received->Response();
                        response->Swap(&answer);
                        delete received;
                        reactor->Finish(grpc::Status::OK);
                      });
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
PublisherService::PublishStream(grpc::CallbackServerContext* context) {
  return new PublishStreamReactor(publisher_, limiter_, authorizer_, published_, context);
}

}  // namespace ferry::publish
