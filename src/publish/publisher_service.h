#pragma once

#include "ferry/v1/publisher.grpc.pb.h"
#include "metrics/principal_counters.h"
#include "publish/batch_publisher.h"
#include "publish/inflight_limiter.h"
#include "security/authorizer.h"

namespace ferry::publish {

// The Publisher gRPC service on the callback API: no call ever blocks a gRPC
// thread; answers are sent from backend delivery threads. Requests and
// responses travel as raw bytes (publish_wire.h): a request is decoded in
// place, its keys and values handed to the backend where gRPC received them,
// and the response written straight into the buffer gRPC sends.
class PublisherService final
    : public v1::Publisher::WithRawCallbackMethod_Publish<
          v1::Publisher::WithRawCallbackMethod_PublishStream<v1::Publisher::Service>> {
 public:
  // `publisher`, `limiter`, `authorizer` (null: no checks) and `published`
  // (null: not counted) must outlive the service and its calls. Each batch
  // needs publish on its topic; with auth on, its messages are counted for
  // the caller's principal in `published` once the batch is accepted.
  PublisherService(BatchPublisher* publisher, InflightLimiter* limiter,
                   security::Authorizer* authorizer = nullptr,
                   metrics::PrincipalCounters* published = nullptr);

  // INVALID_ARGUMENT when the bytes are not a PublishRequest;
  // RESOURCE_EXHAUSTED when the node's in-flight bytes are at the limit.
  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override;

  // Reads the next batch only once the previous one was admitted by the
  // limiter and handed to the publisher, so a client that outpaces the
  // brokers is slowed down by gRPC flow control instead of filling the
  // node's memory, and a stream's batches reach the backend in the order
  // they were sent (per-key order across batches; see publisher.proto).
  // A request that is not a PublishRequest ends the stream with
  // INVALID_ARGUMENT once the batches before it were answered.
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* PublishStream(
      grpc::CallbackServerContext* context) override;

 private:
  BatchPublisher* publisher_;
  InflightLimiter* limiter_;
  security::Authorizer* authorizer_;
  metrics::PrincipalCounters* published_;
};

}  // namespace ferry::publish
