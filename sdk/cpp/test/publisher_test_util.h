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
