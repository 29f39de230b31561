// Publisher::PublishMany against in-process fake nodes: results, parts,
// per-key order with Publish, retries, flow control, closing.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "fake_node.h"
#include "ferry/client/publisher.h"
#include "publisher_test_util.h"

namespace ferry::client {
namespace {

using namespace publisher_test;  // NOLINT: the shared helpers

// Views of `values` (keys from `keys`, "" none); both must outlive them.
std::vector<MessageView> Views(const std::vector<std::string>& values,
                               const std::vector<std::string>& keys = {}) {
  std::vector<MessageView> views;
  for (std::size_t i = 0; i < values.size(); ++i) {
    views.push_back(MessageView{.key = i < keys.size() ? keys[i] : std::string_view(),
                                .value = values[i]});
  }
  return views;
}

PublishManyResult Get(std::future<PublishManyResult>& future) {
  if (future.wait_for(kWait) != std::future_status::ready) {
    ADD_FAILURE() << "no result within " << kWait.count() << " ms";
    return PublishManyResult{};
  }
  return future.get();
}

TEST(PublishMany, ResultsCarryClusterPartitionOffsetAndIdsInCallOrder) {
  FakeNode node("cluster-a");
  auto publisher = Build(Options({&node}));
  const std::vector<std::string> values = {"v0", "v1", "v2"};
  const std::vector<std::string> keys = {"k", "", "k"};
  std::vector<MessageView> views = Views(values, keys);
  views[1].id = "given-id";
  auto future = publisher->PublishMany("orders", views);
  PublishManyResult result = Get(future);

  ASSERT_TRUE(result.ok()) << result.errors.size();
  ASSERT_EQ(result.size(), 3u);
  const std::vector<Accepted> written = node.accepted();
  ASSERT_EQ(written.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(written[i].value, values[i]);
    EXPECT_EQ(written[i].topic, "orders");
    EXPECT_EQ(result.clusters[result.messages[i].cluster], "cluster-a");
    EXPECT_EQ(result.messages[i].partition, written[i].partition);
    EXPECT_EQ(result.messages[i].offset, written[i].offset);
    EXPECT_EQ(result.id(i), written[i].id);
    EXPECT_EQ(result.Get(i).id, written[i].id);
    EXPECT_EQ(result.Get(i).cluster, "cluster-a");
  }
  EXPECT_EQ(result.id(1), "given-id");
  EXPECT_EQ(result.id(0).size(), 32u);
  EXPECT_NE(result.id(0), result.id(2));
  const auto calls = node.calls();
  ASSERT_EQ(calls.size(), 1u) << "one request for a call within the batch limits";
  EXPECT_TRUE(calls[0].compact_results());
}

TEST(PublishMany, ReadsCompactAnswersOfBothApis) {
  FakeNode node("cluster-c");
  node.AnswerCompact(true);
  auto publisher = Build(Options({&node}));
  const std::vector<std::string> values = {"a", "b", "c"};
  const std::vector<std::string> keys = {"x", "y", "x"};
  auto many = publisher->PublishMany("t", Views(values, keys));
  PublishManyResult result = Get(many);
  auto one = publisher->Publish("t", Message{.key = "x", .value = "d"});
  ASSERT_EQ(one.wait_for(kWait), std::future_status::ready);
  PublishResult single = one.get();

  ASSERT_TRUE(result.ok());
  const std::vector<Accepted> written = node.accepted();
  ASSERT_EQ(written.size(), 4u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(result.messages[i].offset, written[i].offset);
    EXPECT_EQ(result.messages[i].partition, written[i].partition);
    EXPECT_EQ(result.id(i), written[i].id);
  }
  ASSERT_TRUE(single.ok()) << single.error;
  EXPECT_EQ(single.cluster, "cluster-c");
  EXPECT_EQ(single.offset, written[3].offset);
  EXPECT_EQ(single.id, written[3].id) << "the SDK's own id: compact answers echo none";
}

TEST(PublishMany, SplitsACallIntoRequestsWithinTheBatchLimits) {
  FakeNode node;
  auto publisher = Build(Options({&node}).MaxBatchMessages(3).Linger(kLong));
  std::vector<std::string> values;
  for (int i = 0; i < 7; ++i) values.push_back(fmt::format("m{}", i));
  auto future = publisher->PublishMany("t", Views(values));
  EXPECT_TRUE(Get(future).ok());
  auto calls = node.calls();
  ASSERT_EQ(calls.size(), 3u) << "sent at once, without waiting for Linger";
  std::vector<std::vector<std::string>> sent;
  for (const auto& call : calls) sent.push_back(Values(call));
  std::sort(sent.begin(), sent.end());  // keyless parts may overtake each other
  EXPECT_EQ(sent, (std::vector<std::vector<std::string>>{
                      {"m0", "m1", "m2"}, {"m3", "m4", "m5"}, {"m6"}}));
}

TEST(PublishMany, KeepsEachKeysOrderWithPublishAndOtherCallsAcrossRetries) {
  FakeNode node;
  node.DelayAnswers(milliseconds(2));
  node.FailMessageOnce("K-2", kUnavailable, /*retryable=*/true);
  node.FailMessageOnce("J-4", kUnavailable, /*retryable=*/true);
  auto publisher = Build(Options({&node}).MaxBatchMessages(2).Linger(milliseconds(0)));
  std::vector<std::future<PublishResult>> singles;
  std::vector<std::future<PublishManyResult>> calls;
  std::vector<std::string> expected_k, expected_j;
  std::vector<std::vector<std::string>> values, keys;  // kept for the views
  values.reserve(30);
  keys.reserve(30);
  int n = 0;
  for (int round = 0; round < 10; ++round) {
    const std::string k = fmt::format("K-{}", ++n);
    expected_k.push_back(k);
    singles.push_back(publisher->Publish("t", Message{.key = "K", .value = k}));
    values.push_back({fmt::format("K-{}", ++n), fmt::format("J-{}", n),
                      fmt::format("K-{}", n + 1), "free"});
    ++n;
    keys.push_back({"K", "J", "K", ""});
    expected_k.push_back(values.back()[0]);
    expected_j.push_back(values.back()[1]);
    expected_k.push_back(values.back()[2]);
    calls.push_back(publisher->PublishMany("t", Views(values.back(), keys.back())));
    const std::string j = fmt::format("J-{}", ++n);
    expected_j.push_back(j);
    singles.push_back(publisher->Publish("t", Message{.key = "J", .value = j}));
  }
  for (auto& single : singles) {
    ASSERT_EQ(single.wait_for(kWait), std::future_status::ready);
    EXPECT_TRUE(single.get().ok());
  }
  for (auto& call : calls) EXPECT_TRUE(Get(call).ok());
  EXPECT_EQ(WrittenForKey(node, "K"), expected_k);
  EXPECT_EQ(WrittenForKey(node, "J"), expected_j);
  EXPECT_EQ(node.key_overlaps(), 0);
}

TEST(PublishMany, RetriesOnlyTheRetryableFailuresWithTheSameIds) {
  FakeNode node;
  node.FailMessageOnce("m2", kUnavailable, /*retryable=*/true, "broker away");
  node.FailMessageOnce("m3", kInvalidArgument, /*retryable=*/false, "too large");
  auto publisher = Build(Options({&node}));
  const std::vector<std::string> values = {"m1", "m2", "m3", "m4"};
  auto future = publisher->PublishMany("t", Views(values));
  PublishManyResult result = Get(future);

  EXPECT_EQ(result.failed, 1u);
  EXPECT_TRUE(result.messages[0].ok());
  EXPECT_TRUE(result.messages[1].ok()) << "retried";
  EXPECT_EQ(result.messages[2].code, kInvalidArgument);
  EXPECT_FALSE(result.messages[2].retryable);
  EXPECT_EQ(result.errors[result.messages[2].error], "too large");
  EXPECT_EQ(result.Get(2).error, "too large");
  EXPECT_EQ(result.Get(2).endpoint, node.address()) << "the node that refused it";
  EXPECT_EQ(result.Get(3).endpoint, "");
  EXPECT_TRUE(result.messages[3].ok());
  auto calls = node.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(Values(calls[1]), std::vector<std::string>{"m2"});
  EXPECT_EQ(calls[1].messages(0).id(), calls[0].messages(1).id());
  EXPECT_EQ(calls[1].messages(0).id(), result.id(1));
}

TEST(PublishMany, RetriesAWholeFailedCallAndGivesUpAtDeliveryTimeout) {
  FakeNode node;
  node.FailCalls(2, grpc::StatusCode::UNAVAILABLE);
  auto publisher = Build(Options({&node}));
  const std::vector<std::string> values = {"a", "b"};
  auto retried = publisher->PublishMany("t", Views(values));
  EXPECT_TRUE(Get(retried).ok());
  EXPECT_EQ(node.calls().size(), 3u);

  node.FailCalls(1000, grpc::StatusCode::UNAVAILABLE);
  auto publisher2 = Build(Options({&node}).DeliveryTimeout(milliseconds(100)));
  auto given_up = publisher2->PublishMany("t", Views(values));
  PublishManyResult result = Get(given_up);
  EXPECT_EQ(result.failed, 2u);
  EXPECT_EQ(result.messages[0].code, kUnavailable);
  EXPECT_TRUE(result.messages[0].retryable);
  EXPECT_NE(result.errors[result.messages[0].error].find("scripted call failure"),
            std::string::npos);
  EXPECT_EQ(result.endpoints[result.messages[0].endpoint], node.address());
}

TEST(PublishMany, FailureAfterARetryOnAnotherNodeNamesThatNode) {
  FakeNode first;
  FakeNode refusing;
  auto publisher = RetriedElsewhereThenRefused(first, refusing, "bad");
  const std::vector<std::string> values = {"ok", "bad"};
  auto future = publisher->PublishMany("t", Views(values));
  PublishManyResult result = Get(future);
  ASSERT_EQ(result.size(), 2u);
  EXPECT_TRUE(result.messages[0].ok());
  EXPECT_EQ(result.messages[1].code, kInvalidArgument);
  EXPECT_EQ(result.Get(1).endpoint, refusing.address());
  EXPECT_EQ(first.calls().size(), 1u) << "tried there first";
  EXPECT_EQ(refusing.calls().size(), 1u);
}

TEST(PublishMany, RetriedMessageThatTimesOutNamesTheNodeOfItsLastAttempt) {
  FakeNode first;
  FakeNode failing;
  auto publisher = TriedTwiceThenTimedOut(first, failing, "m");
  const std::vector<std::string> values = {"ok", "m"};
  auto future = publisher->PublishMany("t", Views(values));
  PublishManyResult result = Get(future);
  ASSERT_EQ(result.size(), 2u);
  EXPECT_TRUE(result.messages[0].ok());
  EXPECT_EQ(result.messages[1].code, kUnavailable);
  EXPECT_NE(result.Get(1).error.find("scripted call failure"), std::string::npos)
      << result.Get(1).error;
  EXPECT_EQ(result.Get(1).endpoint, failing.address());
  EXPECT_EQ(first.calls().size(), 1u);
  EXPECT_EQ(failing.calls().size(), 1u);
}

TEST(PublishMany, FailsWhatDoesNotFitWithResourceExhaustedWithoutBlockWhenFull) {
  FakeNode node;
  node.HoldAnswers(true);
  auto publisher = Build(Options({&node}).MaxOutstandingBytes(100).BlockWhenFull(false));
  const std::vector<std::string> values = {std::string(60, 'a'), std::string(60, 'b'),
                                           std::string(101, 'c'), std::string(30, 'd')};
  auto future = publisher->PublishMany("t", Views(values));
  ASSERT_TRUE(node.WaitForHeld(1, kWait));
  node.HoldAnswers(false);
  PublishManyResult result = Get(future);

  EXPECT_TRUE(result.messages[0].ok());
  EXPECT_EQ(result.messages[1].code, kResourceExhausted) << "60 + 60 > 100";
  EXPECT_EQ(result.messages[2].code, kInvalidArgument) << "alone over the cap";
  EXPECT_EQ(result.Get(1).endpoint, "") << "refused before a node was tried";
  EXPECT_EQ(result.Get(2).endpoint, "");
  EXPECT_TRUE(result.messages[3].ok()) << "60 + 30 fit";
  EXPECT_EQ(result.failed, 2u);
}

TEST(PublishMany, BlocksWhenFullUntilItsEarlierPartsComplete) {
  FakeNode node;
  node.HoldAnswers(true);
  auto publisher = Build(Options({&node}).MaxOutstandingBytes(100));
  const std::vector<std::string> values = {std::string(60, 'a'), std::string(60, 'b')};
  auto publishing = std::async(
      std::launch::async, [&] { return publisher->PublishMany("t", Views(values)); });
  ASSERT_TRUE(node.WaitForHeld(1, kWait));
  EXPECT_EQ(publishing.wait_for(milliseconds(50)), std::future_status::timeout)
      << "the second part waits for room";
  node.HoldAnswers(false);
  auto future = publishing.get();
  EXPECT_TRUE(Get(future).ok());
  EXPECT_EQ(node.calls().size(), 2u);
}

TEST(PublishMany, CallbackRunsOnceAndAnEmptyCallCompletesInline) {
  FakeNode node;
  auto publisher = Build(Options({&node}));
  int empty_calls = 0;
  publisher->PublishMany("t", {}, [&](PublishManyResult result) {
    ++empty_calls;
    EXPECT_EQ(result.size(), 0u);
  });
  EXPECT_EQ(empty_calls, 1);

  std::promise<PublishManyResult> done;
  const std::vector<std::string> values = {"x", "y"};
  publisher->PublishMany("t", Views(values),
                         [&](PublishManyResult result) { done.set_value(result); });
  auto future = done.get_future();
  EXPECT_TRUE(Get(future).ok());
}

TEST(PublishMany, DestructorFailsWhatIsLeftWithPublisherClosed) {
  FakeNode node;
  node.HoldAnswers(true);
  std::future<PublishManyResult> future;
  {
    auto publisher = Build(Options({&node}).CloseTimeout(milliseconds(50)));
    const std::vector<std::string> values = {"a", "b"};
    future = publisher->PublishMany("t", Views(values));
    ASSERT_TRUE(node.WaitForHeld(1, kWait));
  }
  PublishManyResult result = Get(future);
  EXPECT_EQ(result.failed, 2u);
  EXPECT_EQ(result.messages[0].code, kUnavailable);
  EXPECT_EQ(result.errors[result.messages[0].error], "publisher closed");
  EXPECT_EQ(result.Get(0).endpoint, "");
  node.HoldAnswers(false);
}

TEST(PublishMany, WithFallbackEnabledGoesMessageByMessageThroughTheNodes) {
  FakeNode node;
  auto publisher = Build(Options({&node}).Fallback(true));
  const std::vector<std::string> values = {"a", "b", "c"};
  const std::vector<std::string> keys = {"k", "k", ""};
  auto future = publisher->PublishMany("t", Views(values, keys));
  PublishManyResult result = Get(future);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(WrittenForKey(node, "k"), (std::vector<std::string>{"a", "b"}));
  // Each message went through a node under the id its result names; the
  // keyless one may have been sent before or after the keyed ones.
  std::vector<std::string> accepted_ids;
  for (const auto& message : node.accepted()) accepted_ids.push_back(message.id);
  std::vector<std::string> result_ids;
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_FALSE(result.messages[i].direct);
    result_ids.emplace_back(result.id(i));
  }
  EXPECT_THAT(accepted_ids, ::testing::UnorderedElementsAreArray(result_ids));
}

}  // namespace
}  // namespace ferry::client
