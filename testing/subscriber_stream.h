#pragma once

// A raw Subscriber.Subscribe stream for integration tests: the wire protocol
// without the SDK, so tests see exactly what ferryd sends and can send what a
// broken or hostile client would.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ferry/v1/subscriber.grpc.pb.h"

namespace ferry::testing {

class SubscriberStream {
 public:
  // Called on the stream's reader thread for every delivered message, before
  // Next() can return it: the earliest moment the test can see a delivery.
  using MessageObserver = std::function<void(const v1::ReceivedMessage&)>;

  // Opens a stream to `address` and sends `open` (nothing else).
  SubscriberStream(const std::string& address, const v1::SubscriptionOpen& open,
                   MessageObserver on_message = nullptr);
  // Cancels the stream if it is still open.
  ~SubscriberStream();

  // The `opened` answer, or nullopt if the stream ended first / timed out.
  std::optional<v1::Opened> WaitOpened(absl::Duration timeout = absl::Seconds(30));
  // The next delivered message; nullopt after `timeout` or when the stream
  // ended.
  std::optional<v1::ReceivedMessage> Next(absl::Duration timeout);
  // Up to `count` messages, waiting at most `timeout` in total.
  std::vector<v1::ReceivedMessage> Take(size_t count, absl::Duration timeout);
  // Receipt results received so far (failed acks, nacks, extensions).
  std::vector<v1::ReceiptResult> ReceiptResults();
  // Waits until at least `count` receipt results arrived.
  std::vector<v1::ReceiptResult> WaitReceiptResults(size_t count, absl::Duration timeout);

  bool Ack(const std::vector<std::string>& receipts);
  bool Nack(const std::vector<std::string>& receipts, absl::Duration delay);
  bool Extend(const std::vector<std::string>& receipts, absl::Duration deadline);
  bool Send(const v1::SubscribeRequest& request);
  // A barrier: sends an ack with a unique malformed receipt and waits for its
  // INVALID_ARGUMENT result. ferryd handles a stream's requests in order and
  // answers them in order, so on true every request sent before was applied
  // and its failures (if any) are in ReceiptResults(). False when the stream
  // ended or the answer did not come within `timeout`.
  bool Sync(absl::Duration timeout = absl::Seconds(30));

  // Half-closes and returns the final status.
  grpc::Status Close();
  // Returns the status the server ended the stream with (waits for it).
  grpc::Status WaitEnded(absl::Duration timeout = absl::Seconds(30));
  // Whether the stream ended (the final status is then available).
  bool ended() const;
  // The status the server ended the stream with; nullopt while it has not.
  std::optional<grpc::Status> end_status() const;
  // Breaks the stream abruptly, as a crashed client would.
  void Cancel();

 private:
  void ReadLoop();

  std::unique_ptr<v1::Subscriber::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::SubscribeRequest, v1::SubscribeResponse>>
      stream_;
  const MessageObserver on_message_;
  std::thread reader_;
  std::atomic<int64_t> syncs_{0};

  absl::Mutex write_mu_;
  bool writes_done_ = false;

  mutable absl::Mutex mu_;
  std::optional<v1::Opened> opened_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::ReceivedMessage> messages_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ReceiptResult> results_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

v1::SubscriptionOpen MakeOpen(const std::string& group,
                              const std::vector<std::string>& topics,
                              v1::Ordering ordering = v1::ORDERING_NONE,
                              bool from_earliest = true);

}  // namespace ferry::testing
