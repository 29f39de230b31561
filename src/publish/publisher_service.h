#pragma once

#include "ferry/v1/publisher.grpc.pb.h"
#include "metrics/principal_counters.h"
#include "publish/batch_publisher.h"
#include "publish/inflight_limiter.h"
#include "security/authorizer.h"

namespace ferry::publish {

// The Publisher gRPC service on the callback API: no call ever blocks a gRPC
// thread; answers are sent from backend delivery threads.
class PublisherService final : public v1::Publisher::CallbackService {
 public:
  // `publisher`, `limiter`, `authorizer` (null: no checks) and `published`
  // (null: not counted) must outlive the service and its calls. Each batch
  // needs publish on its topic; with auth on, its messages are counted for
  // the caller's principal in `published` once the batch is accepted.
  PublisherService(BatchPublisher* publisher, InflightLimiter* limiter,
                   security::Authorizer* authorizer = nullptr,
                   metrics::PrincipalCounters* published = nullptr);

  // RESOURCE_EXHAUSTED when the node's in-flight bytes are at the limit.
  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const v1::PublishRequest* request,
                                    v1::PublishResponse* response) override;

  // Reads the next batch only once the previous one was admitted by the
  // limiter and handed to the publisher, so a client that outpaces the
  // brokers is slowed down by gRPC flow control instead of filling the
  // node's memory, and a stream's batches reach the backend in the order
  // they were sent (per-key order across batches; see publisher.proto).
  grpc::ServerBidiReactor<v1::PublishRequest, v1::PublishResponse>* PublishStream(
      grpc::CallbackServerContext* context) override;

 private:
  // Gives each unary call a request and response on an arena of their own,
  // which the handler may move values out of and fill in place: the
  // messages' values go to the backend without a copy, and gRPC destroys
  // both only after the call finished.
  class UnaryAllocator final
      : public grpc::MessageAllocator<v1::PublishRequest, v1::PublishResponse> {
   public:
    grpc::MessageHolder<v1::PublishRequest, v1::PublishResponse>* AllocateMessages()
        override;
  };

  BatchPublisher* publisher_;
  InflightLimiter* limiter_;
  security::Authorizer* authorizer_;
  metrics::PrincipalCounters* published_;
  UnaryAllocator allocator_;
};

}  // namespace ferry::publish
