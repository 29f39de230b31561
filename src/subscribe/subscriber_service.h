#pragma once

#include <memory>
#include <set>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/blocking_task_runner.h"
#include "ferry/v1/subscriber.grpc.pb.h"
#include "metrics/principal_counters.h"
#include "security/authorizer.h"
#include "subscribe/group_registry.h"

namespace ferry::subscribe {

class StreamGuard;

// The Subscriber gRPC service (callback API). Each Subscribe call is one
// stream of one group: the first request opens it, later ones carry acks,
// nacks, extensions and flow updates; messages flow out as the group's
// dispatcher hands them over.
//
// The method is registered raw (byte buffers, not protos): the dispatcher
// serializes message batches itself, straight from the fetched records
// (DeliveryBatchWriter), and the stream writes those bytes as they are.
// Requests are parsed here as v1::SubscribeRequest.
class SubscriberService final
    : public v1::Subscriber::WithRawCallbackMethod_Subscribe<v1::Subscriber::Service> {
 public:
  // `registry`, `authorizer` (null: no checks) and `delivered` (null: not
  // counted) must outlive the service and its calls. Opening a stream needs
  // subscribe on its group and topics; with auth on, the messages a stream
  // delivers are counted for its principal in `delivered`.
  SubscriberService(GroupRegistry* registry, std::string node_id,
                    security::Authorizer* authorizer = nullptr,
                    metrics::PrincipalCounters* delivered = nullptr)
      : registry_(registry),
        node_id_(std::move(node_id)),
        authorizer_(authorizer),
        delivered_(delivered) {}

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Subscribe(
      grpc::CallbackServerContext* context) override;

  // Cancels every open stream (node draining): clients reconnect to other
  // nodes and their in-flight messages are delivered again.
  void CancelAll();

  // Stream registry for CancelAll; used by the streams themselves.
  void Add(const std::shared_ptr<StreamGuard>& stream);
  void Remove(const std::shared_ptr<StreamGuard>& stream);
  // Runs a stream's open (topic metadata, joining the group: blocking) off
  // gRPC's callback threads.
  void RunBlocking(std::function<void()> task) { opener_.Post(std::move(task)); }
  security::Authorizer* authorizer() const { return authorizer_; }
  metrics::PrincipalCounters* delivered() const { return delivered_; }

 private:
  GroupRegistry* const registry_;
  const std::string node_id_;
  security::Authorizer* const authorizer_;
  metrics::PrincipalCounters* const delivered_;
  absl::Mutex mu_;
  std::set<std::shared_ptr<StreamGuard>> streams_ ABSL_GUARDED_BY(mu_);
  // Two threads: one cluster slow to answer metadata delays opens, but does
  // not stop them. Calls wait for their open, so gRPC's shutdown waits for
  // these tasks, and they end before the service is destroyed.
  BlockingTaskRunner opener_{2};
};

}  // namespace ferry::subscribe
