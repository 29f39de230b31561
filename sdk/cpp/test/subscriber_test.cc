// Behaviour of ferry::client::Subscriber against in-process fake nodes. Every
// wait is bounded (kWait) and waits for a condition, not for time to pass;
// the few checks that something does NOT happen wait a short, stated while.
#include "ferry/client/subscriber.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "fake_subscriber_node.h"

namespace ferry::client {
namespace {

using std::chrono::milliseconds;
using testing::FakeSubscriberNode;
using testing::StreamLog;
using Streams = FakeSubscriberNode::Streams;

constexpr milliseconds kWait(5000);
// An ack delay no test waits out: batches then leave by count or Close only.
constexpr std::chrono::hours kLong(1);

Subscriber::Builder Options(const std::vector<const FakeSubscriberNode*>& nodes) {
  std::vector<std::string> endpoints;
  for (const FakeSubscriberNode* node : nodes) endpoints.push_back(node->address());
  Subscriber::Builder builder;
  builder.Endpoints(std::move(endpoints))
      .Group("g")
      .Topics({"t"})
      .ReconnectBackoff(milliseconds(10), milliseconds(40))
      .CloseTimeout(milliseconds(2000));
  return builder;
}

std::unique_ptr<Subscriber> Build(const Subscriber::Builder& builder) {
  std::string error;
  std::unique_ptr<Subscriber> subscriber = builder.Build(&error);
  EXPECT_NE(subscriber, nullptr) << error;
  return subscriber;
}

ferry::v1::ReceivedMessage Msg(std::string value, std::string key = "",
                               int32_t partition = 0) {
  ferry::v1::ReceivedMessage message;
  message.set_topic("t");
  message.set_partition(partition);
  message.set_key(std::move(key));
  message.set_value(std::move(value));
  message.set_delivery_attempt(1);
  return message;
}

// Streams 0..count-1 were accepted by the node.
bool WaitOpened(const FakeSubscriberNode& node, std::size_t count) {
  return node.WaitFor(
      [count](const Streams& streams) {
        if (streams.size() < count) return false;
        for (std::size_t i = 0; i < count; ++i) {
          if (!streams[i].opened) return false;
        }
        return true;
      },
      kWait);
}

bool WaitAcked(const FakeSubscriberNode& node, std::size_t stream, std::size_t count) {
  return node.WaitFor(
      [stream, count](const Streams& streams) {
        return streams.size() > stream && streams[stream].Acked().size() >= count;
      },
      kWait);
}

PulledMessage Pull(Subscriber& subscriber) {
  std::optional<PulledMessage> message = subscriber.Next(kWait);
  if (!message.has_value()) {
    ADD_FAILURE() << "no message within " << kWait.count() << " ms";
    return PulledMessage(ReceivedMessage{}, AckHandle());
  }
  return std::move(*message);
}

// Collects OnError calls.
class Errors {
 public:
  Subscriber::ErrorHandler Handler() {
    return [this](const SubscriberError& error) {
      absl::MutexLock lock(&mu_);
      errors_.push_back(error);
    };
  }
  std::vector<SubscriberError> Get() {
    absl::MutexLock lock(&mu_);
    return errors_;
  }

 private:
  absl::Mutex mu_;
  std::vector<SubscriberError> errors_;
};

TEST(Subscriber, BuildRejectsBadOptions) {
  FakeSubscriberNode node;
  std::string error;
  EXPECT_EQ(Options({&node}).Group("").Build(&error), nullptr);
  EXPECT_EQ(error, "Group: required");
  EXPECT_EQ(Options({&node}).Topics({}).Build(&error), nullptr);
  EXPECT_EQ(Options({&node}).AckDeadline(milliseconds(10)).Build(&error), nullptr);
  EXPECT_EQ(error, "AckDeadline: must be 1 s to 10 min, got 10 ms");
  EXPECT_EQ(Options({&node}).Endpoints({"nowhere"}).Build(&error), nullptr);
  EXPECT_EQ(Options({&node}).HandlerThreads(0).Build(&error), nullptr);
}

TEST(Subscriber, OpensOneStreamPerEndpointWithTheSubscription) {
  FakeSubscriberNode first;
  FakeSubscriberNode second;
  auto subscriber = Build(Options({&first, &second})
                              .Topics({"a", "b"})
                              .Ordering(Ordering::kPartition)
                              .AckDeadline(milliseconds(20'000))
                              .FlowControl(7, 7000)
                              .StartAt(StartPosition::Earliest())
                              .Filter("key = 'x'")
                              .MaxDeliveryAttempts(5)
                              .DeadLetterTopic("dead")
                              .ClientId("me"));
  ASSERT_TRUE(WaitOpened(first, 1));
  ASSERT_TRUE(WaitOpened(second, 1));
  for (const FakeSubscriberNode* node : {&first, &second}) {
    const ferry::v1::SubscriptionOpen open = node->streams()[0].open;
    EXPECT_EQ(open.group(), "g");
    ASSERT_EQ(open.topics_size(), 2);
    EXPECT_EQ(open.topics(1), "b");
    EXPECT_EQ(open.ordering(), ferry::v1::ORDERING_PARTITION);
    EXPECT_EQ(open.ack_deadline().seconds(), 20);
    EXPECT_EQ(open.flow().max_outstanding_messages(), 7);
    EXPECT_EQ(open.flow().max_outstanding_bytes(), 7000);
    EXPECT_TRUE(open.start().earliest());
    EXPECT_EQ(open.filter(), "key = 'x'");
    EXPECT_EQ(open.max_delivery_attempts(), 5);
    EXPECT_EQ(open.dead_letter_topic(), "dead");
    EXPECT_EQ(open.client_id(), "me");
  }
}

TEST(Subscriber, PullReturnsMessagesWithAllTheirFields) {
  FakeSubscriberNode node;
  auto subscriber = Build(Options({&node}));
  ASSERT_TRUE(WaitOpened(node, 1));
  EXPECT_FALSE(subscriber->Next(milliseconds(20)).has_value());

  ferry::v1::ReceivedMessage sent = Msg("value", "key", 2);
  sent.set_offset(42);
  sent.set_cluster("c1");
  sent.set_id("id-1");
  sent.set_delivery_attempt(3);
  sent.mutable_publish_time()->set_seconds(1'700'000'000);
  sent.mutable_publish_time()->set_nanos(5'000'000);
  ferry::v1::Header* header = sent.add_headers();
  header->set_key("h");
  header->set_value(std::string("\xff\x00", 2));
  node.Deliver(0, {sent});

  PulledMessage pulled = Pull(*subscriber);
  const ReceivedMessage& message = pulled.message();
  EXPECT_EQ(message.topic, "t");
  EXPECT_EQ(message.partition, 2);
  EXPECT_EQ(message.offset, 42);
  EXPECT_EQ(message.key, "key");
  EXPECT_EQ(message.value, "value");
  ASSERT_EQ(message.headers.size(), 1u);
  EXPECT_EQ(message.headers[0].value, std::string("\xff\x00", 2));
  EXPECT_EQ(message.delivery_attempt, 3);
  EXPECT_EQ(message.cluster, "c1");
  EXPECT_EQ(message.id, "id-1");
  ASSERT_TRUE(message.publish_time.has_value());
  EXPECT_EQ(
      std::chrono::duration_cast<milliseconds>(message.publish_time->time_since_epoch())
          .count(),
      1'700'000'000'005);
  pulled.Ack();
  EXPECT_TRUE(WaitAcked(node, 0, 1));
  EXPECT_EQ(subscriber->Stats().received, 1);
}

// Nothing re-checks a waiter's condition on unlock (plain_mutex.h): a missed
// notify only makes a wait run to its timeout. These start a wait far longer
// than kWakeBound, give it kSettle to begin, wake it, and bound how late it
// returns (generous, for a loaded machine).
constexpr milliseconds kLongWait(60'000);
constexpr milliseconds kWakeBound(10'000);
constexpr milliseconds kSettle(200);

// Runs `wait` on another thread, then `wake` once `wait` has had kSettle to
// start waiting; returns how long after `wake` began `wait` returned.
template <typename Wait, typename Wake>
milliseconds WakeDelay(Wait wait, Wake wake) {
  std::future<void> waiting = std::async(std::launch::async, std::move(wait));
  std::this_thread::sleep_for(kSettle);
  const auto woken = std::chrono::steady_clock::now();
  wake();
  waiting.get();
  return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() -
                                                  woken);
}

TEST(Subscriber, AWaitingNextReturnsPromptlyWhenAMessageArrives) {
  FakeSubscriberNode node;
  auto subscriber = Build(Options({&node}));
  ASSERT_TRUE(WaitOpened(node, 1));
  std::optional<PulledMessage> pulled;
  const milliseconds delay = WakeDelay([&] { pulled = subscriber->Next(kLongWait); },
                                       [&] { node.Deliver(0, {Msg("v")}); });
  ASSERT_TRUE(pulled.has_value());
  EXPECT_EQ(pulled->message().value, "v");
  EXPECT_LT(delay, kWakeBound);
}

TEST(Subscriber, AWaitingNextBatchReturnsPromptlyWhenABatchArrives) {
  FakeSubscriberNode node;
  auto subscriber = Build(Options({&node}));
  ASSERT_TRUE(WaitOpened(node, 1));
  std::optional<MessageBatch> batch;
  const milliseconds delay = WakeDelay([&] { batch = subscriber->NextBatch(kLongWait); },
                                       [&] {
                                         node.Deliver(0, {Msg("a"), Msg("b")});
                                       });
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->size(), 2u);
  EXPECT_LT(delay, kWakeBound);
}

TEST(Subscriber, CloseWakesAWaitingNextPromptly) {
  FakeSubscriberNode node;
  auto subscriber = Build(Options({&node}));
  ASSERT_TRUE(WaitOpened(node, 1));
  std::optional<PulledMessage> pulled;
  bool closed = false;
  const milliseconds delay = WakeDelay([&] { pulled = subscriber->Next(kLongWait); },
                                       [&] { closed = subscriber->Close(kWait); });
  EXPECT_TRUE(closed);
  EXPECT_FALSE(pulled.has_value());
  EXPECT_LT(delay, kWakeBound);
}

TEST(Subscriber, AFatalStreamEndWakesAWaitingNextPromptly) {
  FakeSubscriberNode node;
  auto subscriber = Build(Options({&node}));
  ASSERT_TRUE(WaitOpened(node, 1));
  std::optional<PulledMessage> pulled;
  const milliseconds delay = WakeDelay(
      [&] { pulled = subscriber->Next(kLongWait); },
      [&] { node.Break(0, grpc::Status(grpc::StatusCode::NOT_FOUND, "no topic")); });
  EXPECT_FALSE(pulled.has_value());
  ASSERT_TRUE(subscriber->Failure().has_value());
  EXPECT_TRUE(subscriber->Failure()->fatal);
  EXPECT_LT(delay, kWakeBound);
}

TEST(Subscriber, AcksLeaveInBatchesOfMaxReceiptsAndTheRestOnClose) {
  FakeSubscriberNode node;
  auto subscriber = Build(Options({&node}).AckBatch(3, kLong));
  ASSERT_TRUE(WaitOpened(node, 1));
  std::vector<std::string> receipts = node.Deliver(
      0, {Msg("1"), Msg("2"), Msg("3"), Msg("4"), Msg("5"), Msg("6"), Msg("7")});
  for (int i = 0; i < 7; ++i) Pull(*subscriber).Ack();

  ASSERT_TRUE(WaitAcked(node, 0, 6));
  EXPECT_EQ(node.streams()[0].AckBatchSizes(), (std::vector<std::size_t>{3, 3}));

  EXPECT_TRUE(subscriber->Close(kWait));
  const StreamLog log = node.streams()[0];
  EXPECT_EQ(log.Acked(), receipts);
  EXPECT_EQ(log.AckBatchSizes(), (std::vector<std::size_t>{3, 3, 1}));
  EXPECT_TRUE(log.half_closed);
  EXPECT_EQ(subscriber->Stats().acks_sent, 7);
}

ferry::v1::ReceiptRun RunOf(std::string token, uint32_t first_message, uint32_t count) {
  ferry::v1::ReceiptRun run;
  run.set_run(std::move(token));
  run.set_first_message(first_message);
  run.set_count(count);
  return run;
}

// Acks of consecutive messages of a receipt run leave as one span; a lone
// message of a run, and one in no run, by its receipt.
TEST(Subscriber, ConsecutiveAcksOfARunLeaveAsSpans) {
  FakeSubscriberNode node;
  auto subscriber = Build(Options({&node}).AckBatch(1000, kLong));
  ASSERT_TRUE(WaitOpened(node, 1));
  std::vector<ferry::v1::ReceivedMessage> messages;
  for (int i = 0; i < 9; ++i) messages.push_back(Msg(std::to_string(i)));
  // Runs: messages 0-4 and 6-7; 5 and 8 in none. The overlapping third run
  // is ignored (its messages are acked by receipt).
  const std::vector<std::string> receipts = node.Deliver(
      0, messages, {RunOf("r0", 0, 5), RunOf("r1", 6, 2), RunOf("bad", 7, 2)});
  std::vector<PulledMessage> pulled;
  for (int i = 0; i < 9; ++i) pulled.push_back(Pull(*subscriber));
  // Out of order, with a hole at 2.
  for (int i : {4, 3, 1, 0, 5, 7, 6, 8}) pulled[i].Ack();
  pulled[2].Nack();

  EXPECT_TRUE(subscriber->Close(kWait));
  const StreamLog log = node.streams()[0];
  EXPECT_EQ(log.AckedSpans(), (std::vector<std::string>{"r0:0+2", "r0:3+2", "r1:0+2"}));
  EXPECT_EQ(log.Acked(), (std::vector<std::string>{receipts[5], receipts[8]}));
  ASSERT_EQ(log.Nacked().size(), 1u);
  EXPECT_EQ(log.Nacked()[0].receipt, receipts[2]);
  EXPECT_EQ(subscriber->Stats().acks_sent, 8);
}

TEST(Subscriber, PartialAckBatchLeavesAfterMaxDelay) {
  FakeSubscriberNode node;
  auto subscriber = Build(Options({&node}).AckBatch(1000, milliseconds(10)));
  ASSERT_TRUE(WaitOpened(node, 1));
  std::vector<std::string> receipts = node.Deliver(0, {Msg("1")});
  Pull(*subscriber).Ack();
  ASSERT_TRUE(WaitAcked(node, 0, 1));
  EXPECT_EQ(node.streams()[0].Acked(), receipts);
}

TEST(Subscriber, NackCarriesItsDelayAndAnUnsettledHandleNacksAtOnce) {
  FakeSubscriberNode node;
  auto subscriber = Build(Options({&node}).AckBatch(1000, milliseconds(1)));
  ASSERT_TRUE(WaitOpened(node, 1));
  std::vector<std::string> receipts = node.Deliver(0, {Msg("1"), Msg("2")});
  Pull(*subscriber).Nack(milliseconds(250));
  { PulledMessage dropped = Pull(*subscriber); }

  ASSERT_TRUE(node.WaitFor(
      [](const Streams& streams) { return streams[0].Nacked().size() == 2; }, kWait));
  std::map<std::string, milliseconds> delays;
  for (const StreamLog::Timed& nack : node.streams()[0].Nacked()) {
    delays[nack.receipt] = nack.duration;
  }
  EXPECT_EQ(delays[receipts[0]], milliseconds(250));
  EXPECT_EQ(delays[receipts[1]], milliseconds(0));
  EXPECT_TRUE(node.streams()[0].Acked().empty());
}

TEST(Subscriber, ExtendsTheDeadlineOfAMessageWhoseHandlerIsSlow) {
  FakeSubscriberNode node;
  std::atomic<bool> extension_seen = false;
  auto subscriber = Build(
      Options({&node})
          .AckDeadline(milliseconds(1000))
          .OnMessage([&node, &extension_seen](const ReceivedMessage&, AckHandle handle) {
            // Slow: still running when 2/3 of the deadline has passed.
            extension_seen = node.WaitFor(
                [](const Streams& streams) { return !streams[0].Extended().empty(); },
                kWait);
            handle.Ack();
          }));
  ASSERT_TRUE(WaitOpened(node, 1));
  const auto delivered = std::chrono::steady_clock::now();
  std::vector<std::string> receipts = node.Deliver(0, {Msg("slow")});
  ASSERT_TRUE(WaitAcked(node, 0, 1));
  EXPECT_TRUE(extension_seen);

  const std::vector<StreamLog::Timed> extended = node.streams()[0].Extended();
  ASSERT_FALSE(extended.empty());
  EXPECT_EQ(extended[0].receipt, receipts[0]);
  EXPECT_EQ(extended[0].duration, milliseconds(1000));
  // Not before about 2/3 of the deadline (667 ms; the margin absorbs clocks).
  EXPECT_GE(std::chrono::steady_clock::now() - delivered, milliseconds(600));
  EXPECT_GE(subscriber->Stats().extensions_sent, 1);
}

TEST(Subscriber, KeyOrderingRunsOneKeyAtATimeInOrderAndKeysInParallel) {
  FakeSubscriberNode node;
  absl::Mutex mu;
  std::map<std::string, int> running;
  std::map<std::string, std::vector<std::string>> order;
  int overlaps = 0;
  absl::Notification b_started;
  std::atomic<bool> a_saw_b_in_parallel = false;
  std::atomic<int> handled = 0;
  auto subscriber =
      Build(Options({&node})
                .Ordering(Ordering::kKey)
                .HandlerThreads(4)
                .OnMessage([&](const ReceivedMessage& message, AckHandle handle) {
                  {
                    absl::MutexLock lock(&mu);
                    if (running[message.key]++ > 0) ++overlaps;
                    order[message.key].push_back(message.value);
                  }
                  if (message.key == "b" && !b_started.HasBeenNotified())
                    b_started.Notify();
                  if (message.value == "a1") {
                    // Only possible if key b runs while key a is busy.
                    a_saw_b_in_parallel =
                        b_started.WaitForNotificationWithTimeout(absl::FromChrono(kWait));
                  }
                  // Widens the window in which a second handler of the key would
                  // overlap; correctness does not depend on it.
                  std::this_thread::sleep_for(milliseconds(2));
                  {
                    absl::MutexLock lock(&mu);
                    --running[message.key];
                  }
                  handle.Ack();
                  ++handled;
                }));
  ASSERT_TRUE(WaitOpened(node, 1));
  node.Deliver(0, {Msg("a1", "a"), Msg("a2", "a"), Msg("b1", "b"), Msg("a3", "a"),
                   Msg("b2", "b"), Msg("b3", "b")});
  ASSERT_TRUE(WaitAcked(node, 0, 6));

  EXPECT_TRUE(a_saw_b_in_parallel);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(overlaps, 0);
  EXPECT_EQ(order["a"], (std::vector<std::string>{"a1", "a2", "a3"}));
  EXPECT_EQ(order["b"], (std::vector<std::string>{"b1", "b2", "b3"}));
}

TEST(Subscriber, ReconnectsAfterAStreamBreaksAndDropsAcksForTheBrokenStream) {
  FakeSubscriberNode node;
  Errors errors;
  auto subscriber = Build(Options({&node}).OnError(errors.Handler()));
  ASSERT_TRUE(WaitOpened(node, 1));
  node.Deliver(0, {Msg("old")});
  PulledMessage old_message = Pull(*subscriber);

  node.Break(0, grpc::Status(grpc::StatusCode::UNAVAILABLE, "node going away"));
  ASSERT_TRUE(WaitOpened(node, 2));
  old_message.Ack();  // Its receipt means nothing on the new stream.
  std::vector<std::string> receipts = node.Deliver(1, {Msg("new")});
  PulledMessage new_message = Pull(*subscriber);
  EXPECT_EQ(new_message.message().value, "new");
  new_message.Ack();
  EXPECT_TRUE(subscriber->Close(kWait));

  const Streams streams = node.streams();
  EXPECT_TRUE(streams[0].Acked().empty());
  EXPECT_EQ(streams[1].Acked(), receipts);
  const SubscriberStats stats = subscriber->Stats();
  EXPECT_EQ(stats.dropped_settlements, 1);
  EXPECT_EQ(stats.reconnects, 1);
  ASSERT_EQ(errors.Get().size(), 1u);
  EXPECT_EQ(errors.Get()[0].code, static_cast<int>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_FALSE(errors.Get()[0].fatal);
  EXPECT_EQ(errors.Get()[0].endpoint, node.address());
}

// A response the generated parser would refuse too (a topic that is not
// UTF-8) ends the stream with INTERNAL naming the field; the subscriber
// reconnects and nothing of that response is handed out.
TEST(Subscriber, AMalformedResponseEndsTheStreamWithAPreciseErrorAndReconnects) {
  FakeSubscriberNode node;
  Errors errors;
  auto subscriber = Build(Options({&node}).OnError(errors.Handler()));
  ASSERT_TRUE(WaitOpened(node, 1));
  ferry::v1::ReceivedMessage bad = Msg("bad");
  bad.set_topic("\xff");
  node.Deliver(0, {Msg("good"), bad});

  ASSERT_TRUE(WaitOpened(node, 2));
  node.Deliver(1, {Msg("after")});
  EXPECT_EQ(Pull(*subscriber).message().value, "after");
  // OnError runs on the background thread, just after it reopened the stream.
  for (auto until = std::chrono::steady_clock::now() + kWait;
       errors.Get().empty() && std::chrono::steady_clock::now() < until;) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_EQ(errors.Get().size(), 1u);
  const SubscriberError error = errors.Get()[0];
  EXPECT_EQ(error.code, static_cast<int>(grpc::StatusCode::INTERNAL));
  EXPECT_NE(error.error.find(
                "malformed SubscribeResponse.messages.messages[1].topic: not UTF-8"),
            std::string::npos)
      << error.error;
  EXPECT_FALSE(error.fatal);
  EXPECT_EQ(subscriber->Stats().received, 1);
}

TEST(Subscriber, KeepsReconnectingWhileTheNodeIsUnavailable) {
  FakeSubscriberNode node;
  node.RejectOpens(grpc::StatusCode::UNAVAILABLE, "no cluster");
  auto subscriber = Build(Options({&node}));
  ASSERT_TRUE(
      node.WaitFor([](const Streams& streams) { return streams.size() >= 3; }, kWait));
  node.RejectOpens(grpc::StatusCode::OK);
  ASSERT_TRUE(node.WaitFor(
      [](const Streams& streams) { return !streams.empty() && streams.back().opened; },
      kWait));
  const std::size_t serving = node.streams().size() - 1;
  node.Deliver(serving, {Msg("finally")});
  EXPECT_EQ(Pull(*subscriber).message().value, "finally");
  EXPECT_FALSE(subscriber->Failure().has_value());
}

TEST(Subscriber, InvalidArgumentIsFatalAndSurfacesInNextAndOnError) {
  FakeSubscriberNode node;
  node.RejectOpens(grpc::StatusCode::INVALID_ARGUMENT, "filter: error at 3");
  Errors errors;
  auto subscriber = Build(Options({&node}).OnError(errors.Handler()));

  EXPECT_FALSE(subscriber->Next(kWait).has_value());
  std::optional<SubscriberError> failure = subscriber->Failure();
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->code, static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(failure->error, "filter: error at 3");
  EXPECT_TRUE(failure->fatal);
  // No reconnect loop: with a 10 ms backoff, 200 ms would see many.
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(node.streams().size(), 1u);
  ASSERT_EQ(errors.Get().size(), 1u);
  EXPECT_TRUE(errors.Get()[0].fatal);
}

TEST(Subscriber, NotFoundIsFatalInCallbackMode) {
  FakeSubscriberNode node;
  node.RejectOpens(grpc::StatusCode::NOT_FOUND, "unknown topic t");
  absl::Notification failed;
  auto subscriber = Build(Options({&node})
                              .OnMessage([](const ReceivedMessage&, AckHandle) {})
                              .OnError([&failed](const SubscriberError& error) {
                                if (error.fatal) failed.Notify();
                              }));
  ASSERT_TRUE(failed.WaitForNotificationWithTimeout(absl::FromChrono(kWait)));
  EXPECT_EQ(subscriber->Failure()->code, static_cast<int>(grpc::StatusCode::NOT_FOUND));
}

// Unordered handlers run a batch in runs whose acks reach the stream
// together: each message is still settled exactly once, whether its handle is
// acked or nacked inside the handler or kept and acked later on another
// thread.
TEST(Subscriber, UnorderedHandlersSettleEveryMessageOfABatchOnce) {
  FakeSubscriberNode node;
  absl::Mutex mu;
  std::vector<AckHandle> kept;
  int handled = 0;
  auto subscriber =
      Build(Options({&node})
                .HandlerThreads(3)
                .AckBatch(1000, kLong)
                .OnMessage([&](const ReceivedMessage& message, AckHandle handle) {
                  const int n = std::stoi(message.value);
                  absl::MutexLock lock(&mu);
                  if (n % 10 == 3) {
                    handle.Nack();
                  } else if (n % 10 == 7) {
                    kept.push_back(std::move(handle));
                  } else {
                    handle.Ack();
                  }
                  ++handled;
                }));
  ASSERT_TRUE(WaitOpened(node, 1));
  std::vector<ferry::v1::ReceivedMessage> batch;
  for (int i = 0; i < 100; ++i) batch.push_back(Msg(std::to_string(i)));
  const std::vector<std::string> receipts = node.Deliver(0, std::move(batch));
  {
    absl::MutexLock lock(&mu);
    auto all = [&handled]() { return handled == 100; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all), absl::FromChrono(kWait)));
    for (AckHandle& handle : kept) handle.Ack();
  }
  ASSERT_TRUE(subscriber->Close(kWait));

  std::vector<std::string> want_acked, want_nacked;
  for (int i = 0; i < 100; ++i) {
    (i % 10 == 3 ? want_nacked : want_acked).push_back(receipts[i]);
  }
  const StreamLog log = node.streams()[0];
  std::vector<std::string> acked = log.Acked();
  std::vector<std::string> nacked;
  for (const StreamLog::Timed& nack : log.Nacked()) nacked.push_back(nack.receipt);
  std::sort(acked.begin(), acked.end());
  std::sort(nacked.begin(), nacked.end());
  std::sort(want_acked.begin(), want_acked.end());
  std::sort(want_nacked.begin(), want_nacked.end());
  EXPECT_EQ(acked, want_acked);
  EXPECT_EQ(nacked, want_nacked);
  EXPECT_EQ(subscriber->Stats().dropped_settlements, 0);
}

TEST(Subscriber, CloseWaitsForRunningHandlersAndFlushesTheirAcks) {
  FakeSubscriberNode node;
  absl::Notification started;
  absl::Notification release;
  auto subscriber = Build(Options({&node})
                              .AckBatch(1000, kLong)
                              .OnMessage([&](const ReceivedMessage&, AckHandle handle) {
                                started.Notify();
                                release.WaitForNotification();
                                handle.Ack();
                              }));
  ASSERT_TRUE(WaitOpened(node, 1));
  std::vector<std::string> receipts = node.Deliver(0, {Msg("1")});
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::FromChrono(kWait)));

  std::future<bool> closed =
      std::async(std::launch::async, [&] { return subscriber->Close(kWait); });
  // Close must wait for the handler: a short look that it has not returned.
  EXPECT_EQ(closed.wait_for(milliseconds(100)), std::future_status::timeout);
  release.Notify();
  ASSERT_EQ(closed.wait_for(kWait), std::future_status::ready);
  EXPECT_TRUE(closed.get());

  const StreamLog log = node.streams()[0];
  EXPECT_EQ(log.Acked(), receipts);
  EXPECT_TRUE(log.half_closed);
  EXPECT_EQ(subscriber->Stats().dropped_settlements, 0);
}

// Unordered messages whose handler never ran when Close stopped the pool are
// nacked, as Close promises: here one handler thread holds the first run of
// a 40-message batch (runs of 16) while Close begins.
TEST(Subscriber, CloseNacksUnorderedMessagesWhoseHandlerNeverRan) {
  FakeSubscriberNode node;
  absl::Notification started;
  absl::Notification release;
  auto subscriber = Build(Options({&node})
                              .Ordering(Ordering::kNone)
                              .HandlerThreads(1)
                              .AckBatch(1000, kLong)
                              .OnMessage([&](const ReceivedMessage&, AckHandle handle) {
                                if (!started.HasBeenNotified()) started.Notify();
                                release.WaitForNotification();
                                handle.Ack();
                              }));
  ASSERT_TRUE(WaitOpened(node, 1));
  std::vector<ferry::v1::ReceivedMessage> batch;
  for (int i = 0; i < 40; ++i) batch.push_back(Msg(std::to_string(i)));
  const std::vector<std::string> receipts = node.Deliver(0, std::move(batch));
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::FromChrono(kWait)));

  std::future<bool> closed =
      std::async(std::launch::async, [&] { return subscriber->Close(kWait); });
  EXPECT_EQ(closed.wait_for(milliseconds(100)), std::future_status::timeout);
  release.Notify();
  ASSERT_EQ(closed.wait_for(kWait), std::future_status::ready);
  EXPECT_TRUE(closed.get());

  // The running handler finishes its run of 16; the other 24 were never
  // handed out.
  const StreamLog log = node.streams()[0];
  std::vector<std::string> settled = log.Acked();
  for (const StreamLog::Timed& nack : log.Nacked()) settled.push_back(nack.receipt);
  std::vector<std::string> want = receipts;
  std::sort(settled.begin(), settled.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(settled, want);
  EXPECT_EQ(log.Acked().size(), 16U);
  EXPECT_EQ(log.Nacked().size(), 24U);
}

TEST(Subscriber, CloseGivesUpOnAStuckHandlerAndDropsItsLateAck) {
  FakeSubscriberNode node;
  absl::Notification started;
  absl::Notification release;
  auto subscriber =
      Build(Options({&node}).OnMessage([&](const ReceivedMessage&, AckHandle handle) {
        started.Notify();
        release.WaitForNotification();
        handle.Ack();
      }));
  ASSERT_TRUE(WaitOpened(node, 1));
  node.Deliver(0, {Msg("1")});
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::FromChrono(kWait)));

  EXPECT_FALSE(subscriber->Close(milliseconds(50)));
  EXPECT_TRUE(node.streams()[0].half_closed);
  release.Notify();
  subscriber.reset();  // Waits for the handler.
  EXPECT_TRUE(node.streams()[0].Acked().empty());
}

TEST(Subscriber, ReceiptFailuresAreCountedAndReportedNotFatal) {
  FakeSubscriberNode node;
  absl::Mutex mu;
  std::vector<ReceiptFailure> failures;
  auto subscriber =
      Build(Options({&node}).OnReceiptFailure([&](const ReceiptFailure& failure) {
        absl::MutexLock lock(&mu);
        failures.push_back(failure);
      }));
  ASSERT_TRUE(WaitOpened(node, 1));
  std::vector<std::string> receipts = node.Deliver(0, {Msg("1")});
  Pull(*subscriber).Ack();
  ASSERT_TRUE(WaitAcked(node, 0, 1));
  node.SendReceiptFailure(0, receipts[0], 9, "receipt expired");

  {
    absl::MutexLock lock(&mu);
    auto reported = [&failures]() { return !failures.empty(); };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&reported), absl::FromChrono(kWait)));
    EXPECT_EQ(failures[0].code, 9);
    EXPECT_EQ(failures[0].error, "receipt expired");
    EXPECT_EQ(failures[0].endpoint, node.address());
  }
  EXPECT_EQ(subscriber->Stats().receipt_failures, 1);
  EXPECT_FALSE(subscriber->Failure().has_value());
}

TEST(Subscriber, AcksGoToTheNodeThatDeliveredTheMessage) {
  FakeSubscriberNode first;
  FakeSubscriberNode second;
  auto subscriber = Build(Options({&first, &second}));
  ASSERT_TRUE(WaitOpened(first, 1));
  ASSERT_TRUE(WaitOpened(second, 1));
  // Distinct receipts: both fakes would number theirs alike.
  ferry::v1::ReceivedMessage one = Msg("1");
  one.set_receipt("first");
  ferry::v1::ReceivedMessage two = Msg("2");
  two.set_receipt("second");
  std::vector<std::string> from_first = first.Deliver(0, {one});
  std::vector<std::string> from_second = second.Deliver(0, {two});
  Pull(*subscriber).Ack();
  Pull(*subscriber).Ack();
  ASSERT_TRUE(WaitAcked(first, 0, 1));
  ASSERT_TRUE(WaitAcked(second, 0, 1));
  EXPECT_EQ(first.streams()[0].Acked(), from_first);
  EXPECT_EQ(second.streams()[0].Acked(), from_second);
  // Each stream read `opened` before the message it delivered.
  EXPECT_EQ(subscriber->Stats().open_streams, 2);
}

TEST(Subscriber, AckAllAcksAPulledBatchFromSeveralNodesEachOnceAtItsNode) {
  FakeSubscriberNode first;
  FakeSubscriberNode second;
  auto subscriber = Build(Options({&first, &second}).AckBatch(1000, kLong));
  ASSERT_TRUE(WaitOpened(first, 1));
  ASSERT_TRUE(WaitOpened(second, 1));
  std::vector<ferry::v1::ReceivedMessage> to_first, to_second;
  for (int i = 0; i < 3; ++i) {
    to_first.push_back(Msg("f"));
    to_first.back().set_receipt("first-" + std::to_string(i));
    to_second.push_back(Msg("s"));
    to_second.back().set_receipt("second-" + std::to_string(i));
  }
  std::vector<std::string> from_first = first.Deliver(0, to_first);
  std::vector<PulledMessage> batch;
  for (int i = 0; i < 2; ++i) batch.push_back(Pull(*subscriber));
  std::vector<std::string> from_second = second.Deliver(0, to_second);
  for (int i = 0; i < 4; ++i) batch.push_back(Pull(*subscriber));
  // A message settled already is skipped; so is a batch acked twice.
  batch[1].Nack();
  AckAll(batch);
  AckAll(batch);

  EXPECT_TRUE(subscriber->Close(kWait));
  const StreamLog first_log = first.streams()[0];
  const StreamLog second_log = second.streams()[0];
  std::vector<std::string> first_acked = first_log.Acked();
  std::sort(first_acked.begin(), first_acked.end());
  EXPECT_EQ(first_acked, (std::vector<std::string>{from_first[0], from_first[2]}));
  ASSERT_EQ(first_log.Nacked().size(), 1u);
  EXPECT_EQ(first_log.Nacked()[0].receipt, from_first[1]);
  std::vector<std::string> second_acked = second_log.Acked();
  std::sort(second_acked.begin(), second_acked.end());
  EXPECT_EQ(second_acked, from_second);
  EXPECT_TRUE(second_log.Nacked().empty());
  EXPECT_EQ(subscriber->Stats().acks_sent, 5);
}

// NextBatch hands out the rest of a received response as views (after what
// Next took of it); each message is settled by index at its node, and the
// batch nacks what it did not settle when it goes.
TEST(Subscriber, NextBatchViewsTheRestOfAResponseAndSettlesByIndex) {
  FakeSubscriberNode node;
  auto subscriber = Build(Options({&node}).AckBatch(1000, kLong));
  ASSERT_TRUE(WaitOpened(node, 1));
  EXPECT_FALSE(subscriber->NextBatch(milliseconds(20)).has_value());
  std::vector<ferry::v1::ReceivedMessage> sent;
  for (int i = 0; i < 5; ++i) sent.push_back(Msg("v" + std::to_string(i), "k", 1));
  sent[1].set_offset(7);
  sent[1].set_cluster("c1");
  sent[1].set_id("id-1");
  sent[1].mutable_publish_time()->set_seconds(1'700'000'000);
  ferry::v1::Header* header = sent[1].add_headers();
  header->set_key("h");
  header->set_value(std::string("\xff\x00", 2));
  const std::vector<std::string> receipts = node.Deliver(0, sent);

  Pull(*subscriber).Ack();  // message 0, by Next
  std::optional<MessageBatch> batch = subscriber->NextBatch(kWait);
  ASSERT_TRUE(batch.has_value());
  ASSERT_EQ(batch->size(), 4u);
  const ReceivedView& view = (*batch)[0];
  EXPECT_EQ(view.value, "v1");
  EXPECT_EQ(view.key, "k");
  EXPECT_EQ(view.topic, "t");
  EXPECT_EQ(view.partition, 1);
  EXPECT_EQ(view.offset, 7);
  EXPECT_EQ(view.cluster, "c1");
  EXPECT_EQ(view.id, "id-1");
  ASSERT_EQ(view.headers.size(), 1u);
  EXPECT_EQ(view.headers[0].value, std::string("\xff\x00", 2));
  ASSERT_TRUE(view.publish_time.has_value());
  const ReceivedMessage copy = view.Copy();
  EXPECT_EQ(copy.value, "v1");
  EXPECT_EQ(copy.headers[0].key, "h");
  EXPECT_EQ(copy.publish_time, view.publish_time);
  EXPECT_TRUE((*batch)[3].headers.empty());

  batch->Ack(0);
  batch->Ack(0);  // only the first settlement counts
  batch->Nack(1, milliseconds(250));
  batch->Ack(1);
  batch.reset();  // nacks messages 3 and 4 at once

  EXPECT_TRUE(subscriber->Close(kWait));
  const StreamLog log = node.streams()[0];
  std::vector<std::string> acked = log.Acked();
  std::sort(acked.begin(), acked.end());
  EXPECT_EQ(acked, (std::vector<std::string>{receipts[0], receipts[1]}));
  std::map<std::string, milliseconds> nacked;
  for (const StreamLog::Timed& nack : log.Nacked()) nacked[nack.receipt] = nack.duration;
  EXPECT_EQ(nacked,
            (std::map<std::string, milliseconds>{{receipts[2], milliseconds(250)},
                                                 {receipts[3], milliseconds(0)},
                                                 {receipts[4], milliseconds(0)}}));
}

TEST(Subscriber, MessageBatchAckAllAcksWhatIsUnsettledOnceAndIgnoresWhatItDoesNotHold) {
  FakeSubscriberNode node;
  auto subscriber = Build(Options({&node}).AckBatch(1000, kLong));
  ASSERT_TRUE(WaitOpened(node, 1));
  const std::vector<std::string> receipts =
      node.Deliver(0, {Msg("1"), Msg("2"), Msg("3")});
  std::optional<MessageBatch> batch = subscriber->NextBatch(kWait);
  ASSERT_TRUE(batch.has_value());
  ASSERT_EQ(batch->size(), 3u);
  batch->Nack(2);
  batch->AckAll();
  batch->AckAll();
  batch->Ack(3);  // past the end: ignored
  batch->ExtendDeadline(3, milliseconds(500));
  MessageBatch moved = std::move(*batch);
  EXPECT_TRUE(batch->empty());  // moved from
  batch->Ack(0);                // a moved-from batch settles nothing
  batch->Nack(1);
  batch->ExtendDeadline(0, milliseconds(500));
  MessageBatch().AckAll();

  EXPECT_TRUE(subscriber->Close(kWait));
  const StreamLog log = node.streams()[0];
  std::vector<std::string> acked = log.Acked();
  std::sort(acked.begin(), acked.end());
  EXPECT_EQ(acked, (std::vector<std::string>{receipts[0], receipts[1]}));
  ASSERT_EQ(log.Nacked().size(), 1u);
  EXPECT_EQ(log.Nacked()[0].receipt, receipts[2]);
  EXPECT_TRUE(log.Extended().empty());
  EXPECT_EQ(subscriber->Stats().acks_sent, 2);
}

// A batch that arrives once Close has stopped delivering is neither handed
// out nor nacked (a nack would count a delivery attempt): the node
// redelivers it when the stream ends. The background thread is held in
// OnError (a first node's stream broke) so that the second node's stream is
// still open when the batch arrives.
TEST(Subscriber, ABatchArrivingAfterCloseBeganIsLeftUnsettledNotNacked) {
  FakeSubscriberNode first;
  FakeSubscriberNode second;
  absl::Notification in_on_error;
  absl::Notification release;
  auto subscriber = Build(Options({&first, &second}).OnError([&](const SubscriberError&) {
    if (in_on_error.HasBeenNotified()) return;
    in_on_error.Notify();
    release.WaitForNotificationWithTimeout(absl::FromChrono(kWait));
  }));
  ASSERT_TRUE(WaitOpened(first, 1));
  ASSERT_TRUE(WaitOpened(second, 1));
  first.Break(0, grpc::Status(grpc::StatusCode::UNAVAILABLE, "node going away"));
  ASSERT_TRUE(in_on_error.WaitForNotificationWithTimeout(absl::FromChrono(kWait)));

  std::future<bool> closing =
      std::async(std::launch::async, [&] { return subscriber->Close(kWait); });
  // Next returns empty-handed as soon as Close has stopped delivering.
  EXPECT_FALSE(subscriber->Next(kWait).has_value());
  second.Deliver(0, {Msg("late"), Msg("later")});
  for (auto until = std::chrono::steady_clock::now() + kWait;
       subscriber->Stats().received < 2 && std::chrono::steady_clock::now() < until;) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_EQ(subscriber->Stats().received, 2);
  // The gRPC thread is done with the batch a moment after counting it.
  std::this_thread::sleep_for(milliseconds(100));
  release.Notify();
  EXPECT_TRUE(closing.get());

  const StreamLog log = second.streams()[0];
  EXPECT_TRUE(log.half_closed);
  EXPECT_TRUE(log.Nacked().empty());
  EXPECT_TRUE(log.Acked().empty());
  EXPECT_EQ(subscriber->Stats().nacks_sent, 0);
}

// The views are the batch's, not the subscriber's: they stay readable after
// the subscriber is gone, and settling then does nothing.
TEST(Subscriber, AMessageBatchOutlivesItsSubscriber) {
  FakeSubscriberNode node;
  auto subscriber = Build(Options({&node}));
  ASSERT_TRUE(WaitOpened(node, 1));
  node.Deliver(0, {Msg(std::string(4096, 'x'), "key")});
  std::optional<MessageBatch> batch = subscriber->NextBatch(kWait);
  ASSERT_TRUE(batch.has_value());
  subscriber.reset();
  ASSERT_EQ(batch->size(), 1u);
  EXPECT_EQ((*batch)[0].value, std::string(4096, 'x'));
  EXPECT_EQ((*batch)[0].key, "key");
  batch->AckAll();
}

}  // namespace
}  // namespace ferry::client
