// An in-process ferry.v1.Subscriber node for SDK tests: listens on
// 127.0.0.1:<free port>, logs every stream's requests, and lets a test
// deliver messages, answer receipts, reject opens and break streams.
#ifndef FERRY_CLIENT_TEST_FAKE_SUBSCRIBER_NODE_H_
#define FERRY_CLIENT_TEST_FAKE_SUBSCRIBER_NODE_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "ferry/v1/subscriber.grpc.pb.h"

namespace ferry::client::testing {

// What the node saw on one stream.
struct StreamLog {
  ferry::v1::SubscriptionOpen open;
  // The requests after `open`, in arrival order.
  std::vector<ferry::v1::SubscribeRequest> requests;
  // The node answered `opened` (else it rejected the stream).
  bool opened = false;
  // The client half-closed (WritesDone).
  bool half_closed = false;
  // The call is over.
  bool done = false;

  // Receipts acked one by one.
  std::vector<std::string> Acked() const;
  // Spans acked, as "<run>:<first>+<count>".
  std::vector<std::string> AckedSpans() const;
  // Receipts per Acks request, in order.
  std::vector<std::size_t> AckBatchSizes() const;
  struct Timed {
    std::string receipt;
    std::chrono::milliseconds duration;
  };
  // With their delay.
  std::vector<Timed> Nacked() const;
  // With their deadline.
  std::vector<Timed> Extended() const;
};

class FakeSubscriberNode {
 public:
  using Streams = std::vector<StreamLog>;

  FakeSubscriberNode();
  ~FakeSubscriberNode();  // Ends every stream (CANCELLED) and stops serving.

  const std::string& address() const { return address_; }

  // Opens from now on are answered with `code` instead of `opened`
  // (grpc::StatusCode::OK: accept again).
  void RejectOpens(grpc::StatusCode code, std::string message = "scripted rejection");
  // Sends one MessageBatch on stream `index` (0-based, in opening order).
  // Empty receipts are filled in ("s<index>-<n>"). Returns the receipts.
  // With `runs`, the batch carries them (MessageBatch.runs).
  std::vector<std::string> Deliver(std::size_t index,
                                   std::vector<ferry::v1::ReceivedMessage> messages,
                                   std::vector<ferry::v1::ReceiptRun> runs = {});
  void SendReceiptFailure(std::size_t index, const std::string& receipt, int code,
                          const std::string& message);
  // Ends stream `index` with `status`, as a node going away would.
  void Break(std::size_t index, const grpc::Status& status);

  Streams streams() const;
  // Waits until `done(streams)` holds; false on timeout.
  bool WaitFor(const std::function<bool(const Streams&)>& done,
               std::chrono::milliseconds timeout) const;

 private:
  class Reactor;
  class Service;

  grpc::ServerBidiReactor<ferry::v1::SubscribeRequest, ferry::v1::SubscribeResponse>*
  NewStream(grpc::CallbackServerContext* context);
  // Reactor callbacks. Returns the rejection status, or OK.
  grpc::Status Opened(std::size_t index, const ferry::v1::SubscriptionOpen& open);
  // `opened` is on its way: deliveries now follow it.
  void Accepted(std::size_t index);
  void Received(std::size_t index, const ferry::v1::SubscribeRequest& request);
  void HalfClosed(std::size_t index);
  void Done(std::size_t index);
  Reactor* Find(std::size_t index) const;

  std::string address_;
  mutable absl::Mutex mu_;
  Streams logs_ ABSL_GUARDED_BY(mu_);
  // Reactors in opening order; owned here until the server has shut down.
  std::vector<std::unique_ptr<Reactor>> reactors_ ABSL_GUARDED_BY(mu_);
  grpc::StatusCode reject_code_ ABSL_GUARDED_BY(mu_) = grpc::StatusCode::OK;
  std::string reject_message_ ABSL_GUARDED_BY(mu_);
  int next_receipt_ ABSL_GUARDED_BY(mu_) = 0;

  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace ferry::client::testing

#endif  // FERRY_CLIENT_TEST_FAKE_SUBSCRIBER_NODE_H_
