// Behaviour of ferry::client::Publisher against in-process fake nodes. Every
// wait is bounded (kWait); nothing relies on sleeping for correctness.
#include "ferry/client/publisher.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fake_node.h"
#include "publisher_test_util.h"

namespace ferry::client {
namespace {

using namespace publisher_test;  // NOLINT: the shared helpers

Message Make(std::string value, std::string key = "") {
  Message message;
  message.key = std::move(key);
  message.value = std::move(value);
  return message;
}

// The result, or a failed test if it does not arrive within kWait.
PublishResult Get(std::future<PublishResult>& future) {
  if (future.wait_for(kWait) != std::future_status::ready) {
    ADD_FAILURE() << "no result within " << kWait.count() << " ms";
    PublishResult missing;
    missing.code = -1;
    return missing;
  }
  return future.get();
}

bool IsReady(const std::future<PublishResult>& future) {
  return future.wait_for(milliseconds(0)) == std::future_status::ready;
}

// Puts a call of `topic` in flight and holds the node's answers, so that
// what is published next collects (a topic with nothing in flight sends its
// first message at once). Tests release with node.HoldAnswers(false).
std::future<PublishResult> Occupy(Publisher& publisher, FakeNode& node,
                                  const std::string& topic = "t") {
  node.HoldAnswers(true);
  std::future<PublishResult> busy = publisher.Publish(topic, Make("busy"));
  EXPECT_TRUE(node.WaitForHeld(1, kWait));
  return busy;
}

std::set<std::string> WrittenIds(const FakeNode& node) {
  std::set<std::string> ids;
  for (const Accepted& accepted : node.accepted()) ids.insert(accepted.id);
  return ids;
}

TEST(Publisher, ResultsCarryClusterPartitionAndOffset) {
  FakeNode node("cluster-a");
  auto publisher = Build(Options({&node}));
  auto first = publisher->Publish("orders", Make("v1", "k"));
  auto second = publisher->Publish("orders", Make("v2", "k"));
  PublishResult one = Get(first);
  PublishResult two = Get(second);

  ASSERT_TRUE(one.ok()) << one.error;
  ASSERT_TRUE(two.ok()) << two.error;
  std::vector<Accepted> written = node.accepted();
  ASSERT_EQ(written.size(), 2u);
  EXPECT_EQ(one.cluster, "cluster-a");
  EXPECT_EQ(one.partition, written[0].partition);
  EXPECT_EQ(one.offset, written[0].offset);
  EXPECT_EQ(one.id, written[0].id);
  EXPECT_EQ(two.offset, one.offset + 1);
  EXPECT_EQ(written[0].topic, "orders");
}

TEST(Publisher, SendsHeadersTimestampAndOrderingKey) {
  FakeNode node;
  auto publisher = Build(Options({&node}));
  Message message = Make("v", "record-key");
  message.ordering_key = "order-key";
  message.headers = {{"h", "1"}, {"h", "2"}};
  message.timestamp =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123));
  auto future = publisher->Publish("t", std::move(message));
  ASSERT_TRUE(Get(future).ok());

  const std::vector<ferry::v1::PublishRequest> calls = node.calls();
  ASSERT_EQ(calls.size(), 1u);
  const ferry::v1::OutgoingMessage& sent = calls[0].messages(0);
  EXPECT_EQ(sent.key(), "record-key");
  EXPECT_EQ(sent.ordering_key(), "order-key");
  ASSERT_EQ(sent.headers_size(), 2);
  EXPECT_EQ(sent.headers(1).value(), "2");
  EXPECT_EQ(sent.timestamp().seconds(), 1'700'000'000);
  EXPECT_EQ(sent.timestamp().nanos(), 123'000'000);
}

// The sender thread is asleep when the last message fills the batch: that
// message must wake it.
TEST(Publisher, FullBatchLeavesWithoutWaitingForLinger) {
  FakeNode node;
  auto publisher =
      Build(Options({&node}).MaxBatchMessages(4).Linger(kLong).RequestTimeout(
          milliseconds(30000)));
  auto busy = Occupy(*publisher, node);
  std::vector<std::future<PublishResult>> futures;
  for (int i = 0; i < 3; ++i) futures.push_back(publisher->Publish("t", Make("m")));
  std::this_thread::sleep_for(milliseconds(50));  // lets the sender fall asleep
  futures.push_back(publisher->Publish("t", Make("last")));
  ASSERT_TRUE(node.WaitForHeld(2, kWait));  // sent while the first call is out
  node.HoldAnswers(false);
  for (auto& future : futures) EXPECT_TRUE(Get(future).ok());
  ASSERT_EQ(node.calls().size(), 2u);
  EXPECT_EQ(node.calls()[1].messages_size(), 4);
}

TEST(Publisher, PartialBatchLeavesAfterLingerInPublishOrder) {
  FakeNode node;
  auto publisher = Build(Options({&node}).Linger(milliseconds(100)));
  auto busy = Occupy(*publisher, node);
  auto a = publisher->Publish("t", Make("a"));
  auto b = publisher->Publish("t", Make("b", "k"));
  auto c = publisher->Publish("t", Make("c"));
  // They leave after the linger, while the first call is still out.
  ASSERT_TRUE(node.WaitForHeld(2, kWait));
  node.HoldAnswers(false);
  EXPECT_TRUE(Get(a).ok());
  EXPECT_TRUE(Get(b).ok());
  EXPECT_TRUE(Get(c).ok());
  ASSERT_EQ(node.calls().size(), 2u);
  EXPECT_EQ(Values(node.calls()[1]), (std::vector<std::string>{"a", "b", "c"}));
}

// While a call is out, new messages of its topic do not wake the sender
// thread unless they change what is due: these are the ones that must. The
// held call must not time out first (its answer would wake the sender).
TEST(Publisher, BatchFullByBytesLeavesWithoutWaitingForLinger) {
  FakeNode node;
  auto publisher =
      Build(Options({&node}).MaxBatchBytes(1000).Linger(kLong).RequestTimeout(
          milliseconds(30000)));
  auto busy = Occupy(*publisher, node);
  auto a = publisher->Publish("t", Make(std::string(10, 'a')));
  auto b = publisher->Publish("t", Make(std::string(10, 'b')));
  // Not needed for the outcome: lets the sender fall asleep again, so that
  // it is the third message, which fills the batch, that must wake it.
  std::this_thread::sleep_for(milliseconds(50));
  auto c = publisher->Publish("t", Make(std::string(900, 'c')));
  ASSERT_TRUE(node.WaitForHeld(2, kWait));  // sent while the first call is out
  node.HoldAnswers(false);
  for (auto* future : {&a, &b, &c}) EXPECT_TRUE(Get(*future).ok());
  ASSERT_GE(node.calls().size(), 2u);
  EXPECT_EQ(Values(node.calls()[1]),
            (std::vector<std::string>{std::string(10, 'a'), std::string(10, 'b')}));
}

TEST(Publisher, AnIdleTopicSendsAtOnceWhileAnotherTopicsCallIsOut) {
  FakeNode node;
  auto publisher =
      Build(Options({&node}).Linger(kLong).RequestTimeout(milliseconds(30000)));
  auto busy = Occupy(*publisher, node, "t");
  auto queued = publisher->Publish("t", Make("waits for the first call"));
  std::this_thread::sleep_for(milliseconds(50));  // as above
  auto other = publisher->Publish("u", Make("goes at once"));
  ASSERT_TRUE(node.WaitForHeld(2, kWait));
  EXPECT_EQ(node.calls()[1].topic(), "u");
  node.HoldAnswers(false);
  EXPECT_TRUE(Get(busy).ok());
  EXPECT_TRUE(Get(queued).ok());
  EXPECT_TRUE(Get(other).ok());
}

TEST(Publisher, LingerOfALaterMessageEndsWhileACallIsOut) {
  FakeNode node;
  auto publisher = Build(
      Options({&node}).Linger(milliseconds(50)).RequestTimeout(milliseconds(30000)));
  auto busy = Occupy(*publisher, node);
  // The first lingers and leaves; the second, published while the sender
  // waits for nothing else, must still leave after its own linger.
  auto first = publisher->Publish("t", Make("first"));
  ASSERT_TRUE(node.WaitForHeld(2, kWait));
  auto second = publisher->Publish("t", Make("second"));
  ASSERT_TRUE(node.WaitForHeld(3, kWait));
  node.HoldAnswers(false);
  EXPECT_TRUE(Get(first).ok());
  EXPECT_TRUE(Get(second).ok());
  EXPECT_EQ(Values(node.calls()[2]), (std::vector<std::string>{"second"}));
}

// A message that waited behind a PublishMany part of its key becomes
// eligible only when the part's answer is handled; a Flush that came before
// must still send it at once, not after the linger, although a batch of its
// topic is out.
TEST(Publisher, FlushSendsAMessageThatWaitedBehindAPart) {
  FakeNode node;
  auto publisher =
      Build(Options({&node}).Linger(kLong).RequestTimeout(milliseconds(30000)));
  auto busy = Occupy(*publisher, node);
  const std::vector<MessageView> part = {MessageView{.key = "k", .value = "part"}};
  auto many = publisher->PublishMany("t", part);
  ASSERT_TRUE(node.WaitForHeld(2, kWait));  // a part leaves as it is
  auto behind = publisher->Publish("t", Make("behind", "k"));
  auto flushed =
      std::async(std::launch::async, [&publisher] { return publisher->Flush(kWait); });
  // Not needed for the outcome: the sender has taken the Flush (and the
  // message) before the part's answer comes.
  std::this_thread::sleep_for(milliseconds(50));
  node.ReleaseLatest();  // the part's; the first call stays out
  ASSERT_EQ(many.wait_for(kWait), std::future_status::ready);
  EXPECT_TRUE(many.get().ok());
  EXPECT_TRUE(node.WaitForHeld(2, kWait)) << "the flushed message lingers";
  node.HoldAnswers(false);
  EXPECT_TRUE(Get(busy).ok());
  EXPECT_TRUE(Get(behind).ok());
  EXPECT_TRUE(flushed.get());
  ASSERT_EQ(node.calls().size(), 3u);
  EXPECT_EQ(Values(node.calls()[2]), std::vector<std::string>{"behind"});
}

TEST(Publisher, NoBatchExceedsMaxBatchBytes) {
  FakeNode node;
  auto publisher = Build(Options({&node}).MaxBatchBytes(300).Linger(kLong));
  std::vector<std::future<PublishResult>> futures;
  for (int i = 0; i < 5; ++i) {
    futures.push_back(publisher->Publish("t", Make(std::string(100, 'a' + i))));
  }
  ASSERT_TRUE(publisher->Flush(kWait));
  for (auto& future : futures) EXPECT_TRUE(Get(future).ok());
  std::size_t messages = 0;
  for (const auto& call : node.calls()) {
    std::size_t bytes = 0;
    for (const auto& message : call.messages()) bytes += message.ByteSizeLong();
    EXPECT_LE(bytes, 300u);
    EXPECT_LE(call.messages_size(), 2);
    messages += call.messages_size();
  }
  EXPECT_EQ(messages, 5u);
}

TEST(Publisher, RetriesOnlyTheFailedMessages) {
  FakeNode node;
  node.FailMessageOnce("m2", kUnavailable, /*retryable=*/true);
  auto publisher = Build(Options({&node}).MaxBatchMessages(4).Linger(kLong));
  auto busy = Occupy(*publisher, node);
  std::vector<std::future<PublishResult>> futures;
  for (const char* value : {"m1", "m2", "m3", "m4"}) {
    futures.push_back(publisher->Publish("t", Make(value)));
  }
  node.HoldAnswers(false);
  for (auto& future : futures) EXPECT_TRUE(Get(future).ok());
  auto calls = node.calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(Values(calls[1]), (std::vector<std::string>{"m1", "m2", "m3", "m4"}));
  EXPECT_EQ(Values(calls[2]), std::vector<std::string>{"m2"});
  EXPECT_EQ(calls[2].messages(0).id(), calls[1].messages(1).id());
}

TEST(Publisher, NonRetryableMessageFailureResolvesWithItsCodeAtOnce) {
  FakeNode node;
  node.FailMessageOnce("bad", kInvalidArgument, /*retryable=*/false, "message too large");
  auto publisher = Build(Options({&node}).MaxBatchMessages(3).Linger(kLong));
  auto busy = Occupy(*publisher, node);
  auto ok1 = publisher->Publish("t", Make("ok1"));
  auto bad = publisher->Publish("t", Make("bad"));
  auto ok2 = publisher->Publish("t", Make("ok2"));
  node.HoldAnswers(false);

  PublishResult result = Get(bad);
  EXPECT_EQ(result.code, kInvalidArgument);
  EXPECT_EQ(result.error, "message too large");
  EXPECT_FALSE(result.retryable);
  EXPECT_FALSE(result.id.empty());
  EXPECT_EQ(result.endpoint, node.address()) << "the node that refused it";
  EXPECT_TRUE(Get(ok1).ok());
  EXPECT_TRUE(Get(ok2).ok());
  ASSERT_TRUE(publisher->Flush(kWait));
  EXPECT_EQ(node.calls().size(), 2u);
}

TEST(Publisher, NonRetryableCallErrorFailsTheWholeBatchOnce) {
  FakeNode node;
  auto publisher = Build(Options({&node}).MaxBatchMessages(2).Linger(kLong));
  auto busy = Occupy(*publisher, node, "missing");
  node.FailCalls(1, grpc::StatusCode::NOT_FOUND);
  auto a = publisher->Publish("missing", Make("a"));
  auto b = publisher->Publish("missing", Make("b"));
  for (auto* future : {&a, &b}) {
    PublishResult result = Get(*future);
    EXPECT_EQ(result.code, kNotFound);
    EXPECT_NE(result.error.find("scripted call failure"), std::string::npos)
        << result.error;
    EXPECT_EQ(result.endpoint, node.address());
  }
  node.HoldAnswers(false);
  EXPECT_EQ(node.calls().size(), 2u);
}

TEST(Publisher, RetriesTheWholeBatchAfterUnavailableCalls) {
  FakeNode node;
  auto publisher = Build(Options({&node}).MaxBatchMessages(2).Linger(kLong));
  auto busy = Occupy(*publisher, node);
  node.FailCalls(2, grpc::StatusCode::UNAVAILABLE);
  auto a = publisher->Publish("t", Make("a"));
  auto b = publisher->Publish("t", Make("b"));
  ASSERT_TRUE(node.WaitForHeld(2, kWait));  // failed twice, the third is held
  node.HoldAnswers(false);
  EXPECT_TRUE(Get(a).ok());
  EXPECT_TRUE(Get(b).ok());
  auto calls = node.calls();
  ASSERT_EQ(calls.size(), 4u);
  for (size_t i = 1; i < calls.size(); ++i) {
    EXPECT_EQ(Values(calls[i]), (std::vector<std::string>{"a", "b"}));
  }
}

TEST(Publisher, BacksOffAndRetriesAfterResourceExhausted) {
  FakeNode node;
  node.FailCalls(1, grpc::StatusCode::RESOURCE_EXHAUSTED);
  auto publisher = Build(Options({&node}));
  auto future = publisher->Publish("t", Make("a"));
  EXPECT_TRUE(Get(future).ok());
  EXPECT_EQ(node.calls().size(), 2u);
}

// ABORTED is retryable in ferryd's table (src/api/retry.h), so a call that
// failed with it as a whole is sent again, like the Python SDK does.
TEST(Publisher, RetriesACallThatFailedAborted) {
  FakeNode node;
  node.FailCalls(1, grpc::StatusCode::ABORTED);
  auto publisher = Build(Options({&node}));
  auto future = publisher->Publish("t", Make("a"));
  EXPECT_TRUE(Get(future).ok());
  EXPECT_EQ(node.calls().size(), 2u);
}

TEST(Publisher, DoesNotRetryACallThatFailedInvalidArgument) {
  FakeNode node;
  node.FailCalls(1, grpc::StatusCode::INVALID_ARGUMENT);
  auto publisher = Build(Options({&node}));
  auto future = publisher->Publish("t", Make("a"));
  PublishResult result = Get(future);
  EXPECT_EQ(result.code, static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_FALSE(result.retryable);
  EXPECT_EQ(node.calls().size(), 1u);
}

TEST(Publisher, GivesUpAfterDeliveryTimeoutWithTheLastError) {
  FakeNode node;
  node.FailCalls(1'000'000, grpc::StatusCode::UNAVAILABLE);
  // Long enough for a second call on a loaded machine (100 ms once saw one).
  auto publisher = Build(Options({&node}).DeliveryTimeout(milliseconds(1000)));
  auto future = publisher->Publish("t", Make("a"));
  PublishResult result = Get(future);
  EXPECT_EQ(result.code, kUnavailable);
  EXPECT_TRUE(result.retryable);
  EXPECT_NE(result.error.find("scripted call failure"), std::string::npos)
      << result.error;
  EXPECT_GE(node.calls().size(), 2u);
}

// The endpoint of a failure is the node of the attempt that gave it, not of
// an earlier one.
TEST(Publisher, FailureAfterARetryOnAnotherNodeNamesThatNode) {
  FakeNode first;
  FakeNode refusing;
  auto publisher = RetriedElsewhereThenRefused(first, refusing, "bad");
  auto future = publisher->Publish("t", Make("bad"));
  PublishResult result = Get(future);
  EXPECT_EQ(result.code, kInvalidArgument);
  EXPECT_EQ(result.endpoint, refusing.address());
  EXPECT_EQ(first.calls().size(), 1u) << "tried there first";
  EXPECT_EQ(refusing.calls().size(), 1u);
}

TEST(Publisher, RetriedMessageThatTimesOutNamesTheNodeOfItsLastAttempt) {
  FakeNode first;
  FakeNode failing;
  auto publisher = TriedTwiceThenTimedOut(first, failing, "m");
  auto future = publisher->Publish("t", Make("m"));
  PublishResult result = Get(future);
  EXPECT_EQ(result.code, kUnavailable);
  EXPECT_NE(result.error.find("scripted call failure"), std::string::npos)
      << result.error;
  EXPECT_EQ(result.endpoint, failing.address());
  EXPECT_EQ(first.calls().size(), 1u);
  EXPECT_EQ(failing.calls().size(), 1u);
}

TEST(Publisher, FailsOverToTheNextEndpointWhenOneIsDown) {
  FakeNode down;
  FakeNode up;
  down.Shutdown();
  auto publisher = Build(Options({&down, &up}).MaxBatchMessages(5));
  std::vector<std::future<PublishResult>> futures;
  for (int i = 0; i < 50; ++i) {
    futures.push_back(
        publisher->Publish("t", Make(fmt::format("m{}", i), fmt::format("k{}", i % 5))));
  }
  std::set<std::string> ids;
  for (auto& future : futures) {
    PublishResult result = Get(future);
    EXPECT_TRUE(result.ok()) << result.error;
    ids.insert(result.id);
  }
  EXPECT_EQ(ids.size(), 50u);
  EXPECT_EQ(WrittenIds(up), ids);
  for (int k = 0; k < 5; ++k) {
    std::vector<std::string> expected;
    for (int i = k; i < 50; i += 5) expected.push_back(fmt::format("m{}", i));
    EXPECT_EQ(WrittenForKey(up, fmt::format("k{}", k)), expected);
  }
}

TEST(Publisher, FailsOverWhenANodeGoesDownWithCallsInFlight) {
  FakeNode dying;
  FakeNode healthy;
  dying.HoldAnswers(true);
  auto publisher = Build(Options({&dying, &healthy}).MaxBatchMessages(1));
  std::vector<std::future<PublishResult>> futures;
  for (int i = 0; i < 10; ++i) {
    futures.push_back(publisher->Publish("t", Make(fmt::format("m{}", i), "k")));
    futures.push_back(publisher->Publish("t", Make(fmt::format("u{}", i))));
  }
  ASSERT_TRUE(dying.WaitForHeld(1, kWait));
  // Held calls are answered UNAVAILABLE (their messages were written: the
  // retries elsewhere are the duplicates ids reveal).
  dying.Shutdown();
  std::set<std::string> ids;
  for (auto& future : futures) {
    PublishResult result = Get(future);
    EXPECT_TRUE(result.ok()) << result.error;
    ids.insert(result.id);
  }
  std::set<std::string> written = WrittenIds(healthy);
  for (const Accepted& accepted : dying.accepted()) written.insert(accepted.id);
  EXPECT_EQ(written, ids);
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) expected.push_back(fmt::format("m{}", i));
  // Key order holds on the node that survived, for what it wrote.
  std::vector<std::string> on_healthy = WrittenForKey(healthy, "k");
  EXPECT_TRUE(std::is_sorted(on_healthy.begin(), on_healthy.end())) << on_healthy.size();
}

TEST(Publisher, FailsOverWhenANodeAnswersUnavailable) {
  FakeNode sick;
  FakeNode healthy;
  sick.FailCalls(1'000'000, grpc::StatusCode::UNAVAILABLE);
  auto publisher = Build(Options({&sick, &healthy}).MaxBatchMessages(1));
  std::vector<std::future<PublishResult>> futures;
  for (int i = 0; i < 20; ++i) futures.push_back(publisher->Publish("t", Make("m")));
  std::set<std::string> ids;
  for (auto& future : futures) {
    PublishResult result = Get(future);
    EXPECT_TRUE(result.ok()) << result.error;
    ids.insert(result.id);
  }
  EXPECT_EQ(WrittenIds(healthy), ids);
  EXPECT_TRUE(sick.accepted().empty());
  EXPECT_FALSE(sick.calls().empty());
}

TEST(Publisher, FailsOverWhenANodeDoesNotAnswerInTime) {
  FakeNode hung;
  FakeNode healthy;
  hung.HoldAnswers(true);
  auto publisher = Build(
      Options({&hung, &healthy}).MaxBatchMessages(1).RequestTimeout(milliseconds(200)));
  std::vector<std::future<PublishResult>> futures;
  for (int i = 0; i < 6; ++i) futures.push_back(publisher->Publish("t", Make("m")));
  std::set<std::string> ids;
  for (auto& future : futures) {
    PublishResult result = Get(future);
    EXPECT_TRUE(result.ok()) << result.error;
    ids.insert(result.id);
  }
  // The hung node may have written some too (a duplicate the id reveals).
  EXPECT_EQ(WrittenIds(healthy), ids);
  hung.ReleaseAll();
}

TEST(Publisher, KeepsKeyOrderAcrossARetry) {
  FakeNode node;
  node.DelayAnswers(milliseconds(2));
  node.FailMessageOnce("K-3", kUnavailable, /*retryable=*/true);
  // One message per call, so that K's messages could overtake each other if
  // the publisher let a key into two calls at once.
  auto publisher = Build(Options({&node}).MaxBatchMessages(1).Linger(milliseconds(0)));
  std::vector<std::future<PublishResult>> futures;
  for (int i = 1; i <= 6; ++i) {
    futures.push_back(publisher->Publish("t", Make(fmt::format("K-{}", i), "K")));
    futures.push_back(publisher->Publish("t", Make(fmt::format("J-{}", i), "J")));
    futures.push_back(publisher->Publish("t", Make(fmt::format("U-{}", i))));
  }
  for (auto& future : futures) EXPECT_TRUE(Get(future).ok());

  EXPECT_EQ(WrittenForKey(node, "K"),
            (std::vector<std::string>{"K-1", "K-2", "K-3", "K-4", "K-5", "K-6"}));
  EXPECT_EQ(WrittenForKey(node, "J"),
            (std::vector<std::string>{"J-1", "J-2", "J-3", "J-4", "J-5", "J-6"}));
  EXPECT_EQ(node.key_overlaps(), 0);
  int k3_calls = 0;
  for (const auto& call : node.calls()) k3_calls += Values(call)[0] == "K-3" ? 1 : 0;
  EXPECT_EQ(k3_calls, 2);
}

TEST(Publisher, RetriedMessagesOfAKeyKeepTheirOrderInsideABatch) {
  FakeNode node;
  // The node also fails K-3 and K-4 (a later message of the key) with it.
  node.FailMessageOnce("K-2", kUnavailable, /*retryable=*/true);
  auto publisher = Build(Options({&node}).MaxBatchMessages(10).Linger(kLong));
  auto busy = Occupy(*publisher, node);
  std::vector<std::future<PublishResult>> futures;
  for (int i = 1; i <= 4; ++i) {
    futures.push_back(publisher->Publish("t", Make(fmt::format("K-{}", i), "K")));
  }
  node.HoldAnswers(false);  // the four leave together once the first call is back
  ASSERT_TRUE(publisher->Flush(kWait));
  for (auto& future : futures) EXPECT_TRUE(Get(future).ok());
  EXPECT_EQ(WrittenForKey(node, "K"),
            (std::vector<std::string>{"K-1", "K-2", "K-3", "K-4"}));
  auto calls = node.calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(Values(calls[1]), (std::vector<std::string>{"K-1", "K-2", "K-3", "K-4"}));
  EXPECT_EQ(Values(calls[2]), (std::vector<std::string>{"K-2", "K-3", "K-4"}));
}

TEST(Publisher, SendsManyBatchesAtOnceButAKeyInOneOnly) {
  FakeNode node;
  node.DelayAnswers(milliseconds(20));
  auto publisher = Build(Options({&node}).MaxBatchMessages(3).Linger(kLong));
  std::vector<std::future<PublishResult>> futures;
  for (int i = 0; i < 60; ++i) {
    std::string key = i % 2 == 0 ? "" : fmt::format("k{}", i % 3);
    futures.push_back(publisher->Publish("t", Make(fmt::format("m{}", i), key)));
  }
  ASSERT_TRUE(publisher->Flush(kWait));
  for (auto& future : futures) EXPECT_TRUE(Get(future).ok());
  EXPECT_GE(node.max_concurrent_calls(), 2);
  EXPECT_EQ(node.key_overlaps(), 0);
  for (int k = 0; k < 3; ++k) {
    std::vector<std::string> expected;
    for (int i = 0; i < 60; ++i) {
      if (i % 2 == 1 && i % 3 == k) expected.push_back(fmt::format("m{}", i));
    }
    EXPECT_EQ(WrittenForKey(node, fmt::format("k{}", k)), expected);
  }
}

TEST(Publisher, ManyThreadsPublishConcurrentlyAndKeepEachKeysOrder) {
  FakeNode node;
  auto publisher = Build(Options({&node}).MaxBatchMessages(7));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100;
  std::vector<std::vector<std::future<PublishResult>>> futures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        futures[t].push_back(publisher->Publish(
            "t", Make(fmt::format("{}-{}", t, i), fmt::format("key{}", t))));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    for (auto& future : futures[t]) EXPECT_TRUE(Get(future).ok());
    std::vector<std::string> expected;
    for (int i = 0; i < kPerThread; ++i) expected.push_back(fmt::format("{}-{}", t, i));
    EXPECT_EQ(WrittenForKey(node, fmt::format("key{}", t)), expected);
  }
  EXPECT_EQ(node.key_overlaps(), 0);
}

TEST(Publisher, FailsFastWithResourceExhaustedWhenOutstandingBytesAreUsedUp) {
  FakeNode node;
  node.HoldAnswers(true);
  auto publisher = Build(Options({&node}).MaxOutstandingBytes(100).BlockWhenFull(false));
  auto first = publisher->Publish("t", Make(std::string(60, 'a')));
  auto second = publisher->Publish("t", Make(std::string(60, 'b')));

  ASSERT_TRUE(IsReady(second));
  PublishResult rejected = second.get();
  EXPECT_EQ(rejected.code, kResourceExhausted);
  EXPECT_TRUE(rejected.retryable);
  EXPECT_FALSE(IsReady(first));

  node.HoldAnswers(false);
  EXPECT_TRUE(Get(first).ok());
  auto third = publisher->Publish("t", Make(std::string(60, 'c')));
  EXPECT_TRUE(Get(third).ok());
}

TEST(Publisher, BlocksWhenFullUntilEarlierMessagesComplete) {
  FakeNode node;
  node.HoldAnswers(true);
  auto publisher = Build(Options({&node}).MaxOutstandingBytes(100));
  auto first = publisher->Publish("t", Make(std::string(60, 'a')));
  ASSERT_TRUE(node.WaitForHeld(1, kWait));

  auto second_publish = std::async(std::launch::async, [&] {
    auto future = publisher->Publish("t", Make(std::string(60, 'b')));
    // Publish returned, so the first message's answer came. Its bytes are
    // released just before its future is set (so that a caller woken by the
    // future finds room), hence "within moments", not "already".
    bool first_was_done =
        first.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
    return std::make_pair(first_was_done, std::move(future));
  });
  EXPECT_EQ(second_publish.wait_for(milliseconds(50)), std::future_status::timeout);
  node.HoldAnswers(false);
  auto [first_was_done, second] = second_publish.get();
  EXPECT_TRUE(first_was_done);
  EXPECT_TRUE(Get(first).ok());
  EXPECT_TRUE(Get(second).ok());
}

TEST(Publisher, MessageLargerThanTheOutstandingCapFailsAtOnce) {
  FakeNode node;
  auto publisher = Build(Options({&node}).MaxOutstandingBytes(10));
  auto future = publisher->Publish("t", Make(std::string(11, 'x')));
  ASSERT_TRUE(IsReady(future));
  PublishResult result = future.get();
  EXPECT_EQ(result.code, kInvalidArgument);
  EXPECT_EQ(result.endpoint, "") << "no node was tried";
}

TEST(Publisher, FlushWaitsForEveryPublishedMessage) {
  FakeNode node;
  node.DelayAnswers(milliseconds(20));
  auto publisher = Build(Options({&node}).Linger(kLong));
  std::vector<std::future<PublishResult>> futures;
  for (int i = 0; i < 10; ++i) futures.push_back(publisher->Publish("t", Make("m")));
  ASSERT_TRUE(publisher->Flush(kWait));
  for (auto& future : futures) {
    ASSERT_TRUE(IsReady(future));
    EXPECT_TRUE(future.get().ok());
  }
}

// A Flush that nothing wakes cannot be joined (the async future's
// destructor would wait out its timeout, past ctest's): report it and end
// the test program at once.
void ExpectReturnsSoon(std::future<bool>& flushed) {
  if (flushed.wait_for(kWait) == std::future_status::ready) return;
  ADD_FAILURE() << "Flush still waits " << kWait.count()
                << " ms after the results arrived";
  std::fflush(stdout);
  std::_Exit(1);
}

// Flush's wait ends when the results arrive, not at its timeout: something
// must wake it (the publisher's lock re-checks no condition on unlock,
// plain_mutex.h). Nothing public shows that Flush has reached its wait, so
// the answers are released only after it has not returned for 200 ms; a
// thread not yet waiting by then (a heavily loaded machine) makes the round
// pass without testing the wake-up.
TEST(Publisher, FlushReturnsOnceTheResultsArriveNotAtItsTimeout) {
  FakeNode node;
  node.HoldAnswers(true);
  auto publisher = Build(Options({&node}));
  auto future = publisher->Publish("t", Make("m"));
  ASSERT_TRUE(node.WaitForHeld(1, kWait));
  for (const milliseconds timeout :
       {milliseconds(std::chrono::hours(1)), milliseconds::max()}) {
    auto flushed =
        std::async(std::launch::async, [&] { return publisher->Flush(timeout); });
    EXPECT_EQ(flushed.wait_for(milliseconds(200)), std::future_status::timeout);
    node.HoldAnswers(false);
    ExpectReturnsSoon(flushed);
    EXPECT_TRUE(flushed.get());
    node.HoldAnswers(true);
    future = publisher->Publish("t", Make("m"));
    ASSERT_TRUE(node.WaitForHeld(1, kWait));
  }
  node.HoldAnswers(false);
  EXPECT_TRUE(Get(future).ok());
}

TEST(Publisher, FlushReturnsFalseWhenItsTimeoutPasses) {
  FakeNode node;
  node.HoldAnswers(true);
  auto publisher = Build(Options({&node}));
  auto future = publisher->Publish("t", Make("m"));
  EXPECT_FALSE(publisher->Flush(milliseconds(50)));
  node.HoldAnswers(false);
  EXPECT_TRUE(publisher->Flush(kWait));
  EXPECT_TRUE(IsReady(future));
}

TEST(Publisher, DestructorFlushesQueuedMessages) {
  FakeNode node;
  auto publisher = Build(Options({&node}).Linger(kLong));
  auto future = publisher->Publish("t", Make("m"));
  publisher.reset();
  ASSERT_TRUE(IsReady(future));
  EXPECT_TRUE(future.get().ok());
}

TEST(Publisher, DestructorCompletesEveryFutureWithPublisherClosed) {
  FakeNode node;
  node.HoldAnswers(true);
  auto publisher =
      Build(Options({&node}).MaxBatchMessages(1).CloseTimeout(milliseconds(50)));
  // k1 is in flight (held); k2 and k3 wait behind it.
  std::vector<std::future<PublishResult>> futures;
  for (const char* value : {"k1", "k2", "k3"}) {
    futures.push_back(publisher->Publish("t", Make(value, "k")));
  }
  ASSERT_TRUE(node.WaitForHeld(1, kWait));
  publisher.reset();
  for (auto& future : futures) {
    ASSERT_TRUE(IsReady(future));
    PublishResult result = future.get();
    EXPECT_EQ(result.code, kUnavailable);
    EXPECT_EQ(result.error, "publisher closed");
    EXPECT_EQ(result.endpoint, "");
  }
  node.ReleaseAll();
}

// Results of the callback form, collected from the publisher's thread.
class CallbackResults {
 public:
  Publisher::Callback Expect(std::string tag) {
    return [this, tag = std::move(tag)](PublishResult result) {
      std::lock_guard<std::mutex> lock(mu_);
      results_.emplace_back(tag, std::move(result));
      done_.notify_all();
    };
  }
  // In completion order; a failed test if fewer than `count` arrive in kWait.
  std::vector<std::pair<std::string, PublishResult>> WaitFor(std::size_t count) {
    std::unique_lock<std::mutex> lock(mu_);
    EXPECT_TRUE(done_.wait_for(lock, kWait, [&] { return results_.size() >= count; }))
        << results_.size() << " of " << count << " results";
    return results_;
  }

 private:
  std::mutex mu_;
  std::condition_variable done_;
  std::vector<std::pair<std::string, PublishResult>> results_;
};

TEST(Publisher, CallbackFormAnswersEachMessageOnceAndEachKeyInPublishOrder) {
  FakeNode node("cluster-a");
  auto publisher = Build(Options({&node}).MaxBatchMessages(7));
  CallbackResults results;
  constexpr int kMessages = 200;
  for (int i = 0; i < kMessages; ++i) {
    const std::string key = fmt::format("k{}", i % 5);
    publisher->Publish("t", Make(fmt::format("{}", i), key),
                       results.Expect(fmt::format("{}/{}", key, i)));
  }
  ASSERT_TRUE(publisher->Flush(kWait));
  auto answered = results.WaitFor(kMessages);

  ASSERT_EQ(answered.size(), static_cast<std::size_t>(kMessages));
  std::set<std::string> tags;
  std::map<std::string, int> last_of_key;
  std::map<std::string, int64_t> last_offset_of_key;
  for (const auto& [tag, result] : answered) {
    ASSERT_TRUE(result.ok()) << result.error;
    EXPECT_EQ(result.cluster, "cluster-a");
    EXPECT_TRUE(tags.insert(tag).second) << tag << " answered twice";
    const std::string key = tag.substr(0, tag.find('/'));
    const int index = std::stoi(tag.substr(tag.find('/') + 1));
    if (last_of_key.contains(key)) {
      EXPECT_GT(index, last_of_key[key]) << "key " << key << " answered out of order";
      EXPECT_GT(result.offset, last_offset_of_key[key]);
    }
    last_of_key[key] = index;
    last_offset_of_key[key] = result.offset;
  }
  EXPECT_EQ(node.accepted().size(), static_cast<std::size_t>(kMessages));
}

TEST(Publisher, CallbackFormFailsAtOnceOnTheCallingThread) {
  FakeNode node;
  auto publisher = Build(Options({&node}).MaxOutstandingBytes(10));
  std::thread::id ran_on;
  int code = -1;
  publisher->Publish("t", Make(std::string(11, 'x')), [&](PublishResult result) {
    ran_on = std::this_thread::get_id();
    code = result.code;
  });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(code, kInvalidArgument);
}

TEST(Publisher, CallbackMayPublishAgainWithoutBlockWhenFull) {
  FakeNode node;
  auto publisher = Build(Options({&node}).BlockWhenFull(false));
  CallbackResults results;
  // Each result publishes the next message from the publisher's own thread.
  std::function<void(int)> publish_from = [&](int i) {
    publisher->Publish("t", Make(fmt::format("{}", i)), [&, i](PublishResult result) {
      results.Expect(fmt::format("{}", i))(std::move(result));
      if (i < 20) publish_from(i + 1);
    });
  };
  publish_from(0);
  auto answered = results.WaitFor(21);
  ASSERT_EQ(answered.size(), 21u);
  for (const auto& [tag, result] : answered) EXPECT_TRUE(result.ok()) << result.error;
}

TEST(Publisher, DestructorAnswersEveryCallbackWithPublisherClosed) {
  FakeNode node;
  node.HoldAnswers(true);
  auto publisher =
      Build(Options({&node}).MaxBatchMessages(1).CloseTimeout(milliseconds(50)));
  CallbackResults results;
  for (const char* value : {"k1", "k2", "k3"}) {
    publisher->Publish("t", Make(value, "k"), results.Expect(value));
  }
  ASSERT_TRUE(node.WaitForHeld(1, kWait));
  publisher.reset();
  auto answered = results.WaitFor(3);
  ASSERT_EQ(answered.size(), 3u);
  for (const auto& [tag, result] : answered) {
    EXPECT_EQ(result.code, kUnavailable) << tag;
    EXPECT_EQ(result.error, "publisher closed") << tag;
  }
  node.ReleaseAll();
}

TEST(Publisher, GeneratesUniqueIdsAndKeepsGivenOnes) {
  FakeNode node;
  auto publisher = Build(Options({&node}));
  std::vector<std::future<PublishResult>> futures;
  for (int i = 0; i < 200; ++i) futures.push_back(publisher->Publish("t", Make("m")));
  Message mine = Make("mine");
  mine.id = "my-id";
  auto given = publisher->Publish("t", std::move(mine));

  std::set<std::string> ids;
  for (auto& future : futures) {
    PublishResult result = Get(future);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result.id.size(), 32u);
    EXPECT_EQ(result.id.find_first_not_of("0123456789abcdef"), std::string::npos);
    ids.insert(result.id);
  }
  EXPECT_EQ(ids.size(), 200u);
  EXPECT_EQ(Get(given).id, "my-id");
  ids.insert("my-id");
  EXPECT_EQ(WrittenIds(node), ids);
}

// gRPC 1.51 tore its shared callback queue down with the last channel that
// used it and made it again for the next; in that cycle its thread could
// free the queue twice (about once in 100 publishers; an ASan double free,
// a glibc abort without ASan). The SDK pins the queue (grpc_channel.h). A
// probabilistic guard: on the old code under ASan most runs of this abort.
TEST(PublisherBuilder, ManyShortLivedPublishersComeAndGo) {
  for (int i = 0; i < 100; ++i) {
    std::string error;
    auto publisher = Publisher::Builder().Endpoints({"dns:///ferry:7400"}).Build(&error);
    ASSERT_NE(publisher, nullptr) << error;
  }
}

TEST(PublisherBuilder, RejectsBadOptionsWithOneLineNamingTheOption) {
  auto error_of = [](const Publisher::Builder& builder) {
    std::string error;
    EXPECT_EQ(builder.Build(&error), nullptr);
    return error;
  };
  EXPECT_NE(error_of(Publisher::Builder()).find("Endpoints"), std::string::npos);
  EXPECT_NE(error_of(Publisher::Builder().Endpoints({"no-port"})).find("no-port"),
            std::string::npos);
  EXPECT_NE(error_of(Publisher::Builder().Endpoints({"h:0"})).find("Endpoints"),
            std::string::npos);
  EXPECT_NE(error_of(Publisher::Builder().Endpoints({"h:1"}).MaxBatchMessages(0))
                .find("MaxBatchMessages"),
            std::string::npos);
  EXPECT_NE(error_of(Publisher::Builder().Endpoints({"h:1"}).Linger(milliseconds(-1)))
                .find("Linger"),
            std::string::npos);
  EXPECT_NE(error_of(Publisher::Builder().Endpoints({"h:1"}).RetryBackoff(
                         milliseconds(100), milliseconds(10)))
                .find("RetryBackoff"),
            std::string::npos);
  std::string error;
  EXPECT_NE(Publisher::Builder().Endpoints({"dns:///ferry:7400"}).Build(&error), nullptr)
      << error;
}

// FERRY_STAGE_TRACE (common/stage_trace.h): a row per acknowledged message,
// keyed by the id of its call's first message, its stamps in stage order,
// and whether it waited behind an earlier message of its key.
std::filesystem::path NewTraceDir() {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    fmt::format("publisher_stage_trace.{}", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// A publisher that writes its trace to `dir`.
std::unique_ptr<Publisher> BuildTraced(const Publisher::Builder& builder,
                                       const std::filesystem::path& dir) {
  setenv("FERRY_STAGE_TRACE", dir.c_str(), 1);
  auto publisher = Build(builder);
  unsetenv("FERRY_STAGE_TRACE");
  return publisher;
}

// The rows of the trace files in `dir` (split at tabs), which it removes.
std::vector<std::vector<std::string>> TakeTraceRows(const std::filesystem::path& dir) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path());
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line.rfind("batch\tmessages\tpublished_ns", 0), 0u) << line;
    while (std::getline(in, line)) {
      std::vector<std::string> fields;
      std::istringstream split(line);
      for (std::string field; std::getline(split, field, '\t');) fields.push_back(field);
      rows.push_back(fields);
    }
  }
  std::filesystem::remove_all(dir);
  return rows;
}

TEST(Publisher, StageTraceWritesARowPerAcknowledgedMessage) {
  const std::filesystem::path dir = NewTraceDir();
  FakeNode node;
  {
    auto publisher = BuildTraced(Options({&node}), dir);
    // k's first message in flight (held by the node): its next three wait
    // behind it, j's message does not.
    node.HoldAnswers(true);
    std::vector<std::future<PublishResult>> futures;
    futures.push_back(publisher->Publish("t", Make("v0", "k")));
    ASSERT_TRUE(node.WaitForHeld(1, kWait));
    for (int i = 1; i < 4; ++i) {
      futures.push_back(publisher->Publish("t", Make(fmt::format("v{}", i), "k")));
    }
    futures.push_back(publisher->Publish("t", Make("v4", "j")));
    // j's call held too: the sender thread took k's three (published
    // before j) while k's first was still in flight.
    ASSERT_TRUE(node.WaitForHeld(2, kWait));
    node.HoldAnswers(false);
    node.ReleaseAll();
    for (auto& future : futures) ASSERT_TRUE(Get(future).ok());
  }  // The trace is written out when the publisher closes.
  std::set<std::string> call_firsts;
  for (const ferry::v1::PublishRequest& call : node.calls()) {
    call_firsts.insert(call.messages(0).id());
  }
  const std::vector<std::vector<std::string>> rows = TakeTraceRows(dir);
  ASSERT_EQ(rows.size(), 5u);
  int behind_key = 0;
  for (const std::vector<std::string>& row : rows) {
    ASSERT_EQ(row.size(), 9u);
    EXPECT_TRUE(call_firsts.contains(row[0])) << row[0];
    EXPECT_EQ(row[1], "1");
    for (int stage = 2; stage < 6; ++stage) {
      EXPECT_LE(std::stoll(row[stage]), std::stoll(row[stage + 1])) << stage;
    }
    EXPECT_GT(std::stoll(row[2]), 0);
    EXPECT_EQ(row[7], "0");  // attempts before the one that was answered
    behind_key += row[8] == "1" ? 1 : 0;
  }
  EXPECT_EQ(behind_key, 3);
}

// The sender sleeps through the second message of key k (its topic's call
// is out, an earlier message lingers long) and takes it in the same turn as
// the first's answer: it still waited behind its key.
TEST(Publisher, StageTraceMarksAMessageTakenWithItsKeysAnswer) {
  const std::filesystem::path dir = NewTraceDir();
  FakeNode node;
  {
    auto publisher = BuildTraced(
        Options({&node}).Linger(kLong).RequestTimeout(milliseconds(30000)), dir);
    node.HoldAnswers(true);
    auto first = publisher->Publish("t", Make("first", "k"));
    ASSERT_TRUE(node.WaitForHeld(1, kWait));
    auto lingers = publisher->Publish("t", Make("lingers"));
    std::this_thread::sleep_for(milliseconds(50));  // lets the sender fall asleep
    auto second = publisher->Publish("t", Make("second", "k"));
    std::this_thread::sleep_for(milliseconds(50));  // it stays asleep
    node.HoldAnswers(false);
    ASSERT_TRUE(Get(first).ok());
    ASSERT_TRUE(Get(lingers).ok());
    ASSERT_TRUE(Get(second).ok());
  }
  const std::vector<std::vector<std::string>> rows = TakeTraceRows(dir);
  ASSERT_EQ(rows.size(), 3u);
  std::vector<std::string> behind_key;
  for (const std::vector<std::string>& row : rows) {
    ASSERT_EQ(row.size(), 9u);
    behind_key.push_back(row[8]);
  }
  std::sort(behind_key.begin(), behind_key.end());
  EXPECT_EQ(behind_key, (std::vector<std::string>{"0", "0", "1"}));
}

}  // namespace
}  // namespace ferry::client
