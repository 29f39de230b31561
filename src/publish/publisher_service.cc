#include "publish/publisher_service.h"

#include <fmt/format.h>
#include <google/protobuf/arena.h>

#include <deque>

#include "absl/synchronization/mutex.h"
#include "api/convert.h"
#include "api/retry.h"

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
                                  const v1::PublishRequest& request) {
  if (authorizer == nullptr) return std::string();
  return authorizer->Admit(context, request);
}

// Counts an accepted batch for its principal (metrics.max_principals).
void CountFor(metrics::PrincipalCounters* published, const std::string& principal,
              const v1::PublishRequest& request) {
  if (published != nullptr && !principal.empty()) {
    published->For(principal).Inc(request.messages_size());
  }
}

class PublishStreamReactor final
    : public grpc::ServerBidiReactor<v1::PublishRequest, v1::PublishResponse> {
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
    auto exchange = std::make_shared<Exchange>();
    exchange->request = std::move(request_);
    request_.Clear();
    absl::StatusOr<std::string> principal =
        Admit(authorizer_, *context_, exchange->request);
    absl::StatusOr<PreparedBatch> batch =
        principal.ok() ? publisher_->Prepare(exchange->request) : principal.status();
    if (!batch.ok()) {
      v1::PublishResponse response;
      response.set_request_id(exchange->request.request_id());
      api::ToProtoStatus(batch.status(), api::IsRetryable(batch.status().code()),
                         response.mutable_error());
      Send(std::move(response));
      ContinueReading();
      return;
    }
    CountFor(published_, *principal, exchange->request);
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
        publisher_->Publish(&exchange->request, &exchange->response, batch,
                            [this, exchange] {
                              Send(std::move(exchange->response));
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
    const v1::PublishResponse* next = nullptr;
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
  // One batch's request and the response BatchPublisher fills in.
  struct Exchange {
    v1::PublishRequest request;
    v1::PublishResponse response;
  };

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

  void Send(v1::PublishResponse response) {
    const v1::PublishResponse* start = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (broken_) return;
      writes_.push_back(std::move(response));
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
    {
      absl::MutexLock lock(&mu_);
      if (!reads_done_ || pending_ > 0 || writing_ || finished_) return;
      finished_ = true;
    }
    Finish(grpc::Status::OK);
  }

  BatchPublisher* const publisher_;
  InflightLimiter* const limiter_;
  security::Authorizer* const authorizer_;
  metrics::PrincipalCounters* const published_;
  grpc::CallbackServerContext* const context_;  // valid until OnDone
  // Only touched by the read chain (one read in flight at a time).
  v1::PublishRequest request_;
  std::atomic<bool> cancelled_{false};

  absl::Mutex mu_;
  std::deque<v1::PublishResponse> writes_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
};

// One unary call's messages, on an arena of their own: parsing the request
// and building the response allocate a message, a result, a status and a
// timestamp per published message, which the arena turns into pointer bumps
// freed at once. Deleted by gRPC (Release) after the call.
class UnaryMessages final
    : public grpc::MessageHolder<v1::PublishRequest, v1::PublishResponse> {
 public:
  UnaryMessages() : arena_(ArenaOptions()) {
    set_request(google::protobuf::Arena::CreateMessage<v1::PublishRequest>(&arena_));
    set_response(google::protobuf::Arena::CreateMessage<v1::PublishResponse>(&arena_));
  }
  void Release() override { delete this; }

 private:
  static google::protobuf::ArenaOptions ArenaOptions() {
    google::protobuf::ArenaOptions options;
    // A batch of a few hundred messages needs tens of KiB: start big
    // enough that most need one or two blocks.
    options.start_block_size = 16 << 10;
    options.max_block_size = 256 << 10;
    return options;
  }

  google::protobuf::Arena arena_;
};

}  // namespace

grpc::MessageHolder<v1::PublishRequest, v1::PublishResponse>*
PublisherService::UnaryAllocator::AllocateMessages() {
  return new UnaryMessages();
}

PublisherService::PublisherService(BatchPublisher* publisher, InflightLimiter* limiter,
                                   security::Authorizer* authorizer,
                                   metrics::PrincipalCounters* published)
    : publisher_(publisher),
      limiter_(limiter),
      authorizer_(authorizer),
      published_(published) {
  SetMessageAllocatorFor_Publish(&allocator_);
}

grpc::ServerUnaryReactor* PublisherService::Publish(grpc::CallbackServerContext* context,
                                                    const v1::PublishRequest* request,
                                                    v1::PublishResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::string> principal = Admit(authorizer_, *context, *request);
  if (!principal.ok()) {
    reactor->Finish(api::ToGrpcStatus(principal.status()));
    return reactor;
  }
  auto batch = publisher_->Prepare(*request);
  if (!batch.ok()) {
    reactor->Finish(api::ToGrpcStatus(batch.status()));
    return reactor;
  }
  if (!limiter_->TryAcquire(batch->bytes)) {
    reactor->Finish(api::ToGrpcStatus(Overloaded(*limiter_)));
    return reactor;
  }
  CountFor(published_, *principal, *request);
  // `request` is the one UnaryMessages holds (our allocator made it), which
  // gRPC frees only after Finish: the publisher may move values out of it,
  // and writes the results straight into `response` on the same arena.
  auto* messages = static_cast<UnaryMessages*>(context->GetRpcAllocatorState());
  publisher_->Publish(messages->request(), response, *batch,
                      [reactor] { reactor->Finish(grpc::Status::OK); });
  return reactor;
}

grpc::ServerBidiReactor<v1::PublishRequest, v1::PublishResponse>*
PublisherService::PublishStream(grpc::CallbackServerContext* context) {
  return new PublishStreamReactor(publisher_, limiter_, authorizer_, published_, context);
}

}  // namespace ferry::publish
