// Helpers shared by the Publisher tests against fake nodes.
#ifndef FERRY_CLIENT_TEST_PUBLISHER_TEST_UTIL_H_
#define FERRY_CLIENT_TEST_PUBLISHER_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "fake_node.h"
#include "ferry/client/publisher.h"

namespace ferry::client::publisher_test {

using std::chrono::milliseconds;
using testing::Accepted;
using testing::FakeNode;

inline constexpr milliseconds kWait(5000);
// A linger no test waits out: batches then form by count, bytes, Flush or
// because nothing is in flight, whatever the machine's speed.
inline constexpr std::chrono::hours kLong(1);
inline constexpr int kInvalidArgument = 3;
inline constexpr int kNotFound = 5;
inline constexpr int kResourceExhausted = 8;
inline constexpr int kUnavailable = 14;

// Fast retries and short linger so that tests take milliseconds.
inline Publisher::Builder Options(const std::vector<const FakeNode*>& nodes) {
  std::vector<std::string> endpoints;
  for (const FakeNode* node : nodes) endpoints.push_back(node->address());
  Publisher::Builder builder;
  builder.Endpoints(std::move(endpoints))
      .Linger(milliseconds(1))
      .RetryBackoff(milliseconds(5), milliseconds(40))
      .RequestTimeout(milliseconds(2000))
      .CloseTimeout(milliseconds(2000));
  return builder;
}

inline std::unique_ptr<Publisher> Build(const Publisher::Builder& builder) {
  std::string error;
  std::unique_ptr<Publisher> publisher = builder.Build(&error);
  EXPECT_NE(publisher, nullptr) << error;
  return publisher;
}

// The two paths to a failure after a retry on another node (round robin
// starts at the first endpoint). Here `first` fails its next call
// UNAVAILABLE, so `value` is retried on `refusing`, which refuses it for good.
inline std::unique_ptr<Publisher> RetriedElsewhereThenRefused(FakeNode& first,
                                                              FakeNode& refusing,
                                                              const std::string& value) {
  first.FailCalls(1, grpc::StatusCode::UNAVAILABLE);
  refusing.FailMessageOnce(value, kInvalidArgument, /*retryable=*/false, "too large");
  return Build(Options({&first, &refusing}));
}

// Here `first` refuses `value` once retryably (answered: it stays healthy)
// and `failing` fails every call UNAVAILABLE. Backoffs of 1 s then 2 s and a
// 2.5 s delivery timeout: tried on `first`, then on `failing`, whose failure's
// retry would come after the timeout, so `value` fails with `failing`'s error.
inline std::unique_ptr<Publisher> TriedTwiceThenTimedOut(FakeNode& first,
                                                         FakeNode& failing,
                                                         const std::string& value) {
  first.FailMessageOnce(value, kUnavailable, /*retryable=*/true, "broker away");
  failing.FailCalls(1'000'000, grpc::StatusCode::UNAVAILABLE);
  return Build(Options({&first, &failing})
                   .RetryBackoff(milliseconds(1000), milliseconds(4000))
                   .DeliveryTimeout(milliseconds(2500)));
}

inline std::vector<std::string> Values(const ferry::v1::PublishRequest& call) {
  std::vector<std::string> values;
  for (const auto& message : call.messages()) values.push_back(message.value());
  return values;
}

// Values the node wrote for `key`, in the order it wrote them.
inline std::vector<std::string> WrittenForKey(const FakeNode& node,
                                              const std::string& key) {
  std::vector<std::string> values;
  for (const Accepted& accepted : node.accepted()) {
    if (accepted.key == key) values.push_back(accepted.value);
  }
  return values;
}

}  // namespace ferry::client::publisher_test

#endif  // FERRY_CLIENT_TEST_PUBLISHER_TEST_UTIL_H_
