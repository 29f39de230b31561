// SubscribeStream against an in-process fake node, with a listener that acks
// every message inline, on the gRPC thread that delivers it (or keeps the
// sequence numbers for the test to settle), and counts the wake-ups the
// stream asks of the subscriber's background thread.
#include "subscribe_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "fake_subscriber_node.h"

namespace ferry::client::internal {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FakeSubscriberNode;
using Streams = FakeSubscriberNode::Streams;

constexpr milliseconds kWait(5000);

class InlineAcker final : public StreamListener {
 public:
  void OnMessages(std::shared_ptr<const ReceivedBatch> batch) override {
    std::vector<uint64_t> seqs(batch->decoded.messages.size());
    std::iota(seqs.begin(), seqs.end(), batch->first_seq);
    if (ack_inline_) {
      batch->stream->AckAll(seqs);
    } else {
      absl::MutexLock lock(&mu_);
      kept_.insert(kept_.end(), seqs.begin(), seqs.end());
    }
    delivered_ += static_cast<int>(seqs.size());
  }
  void OnReceiptFailures(SubscribeStream* /*stream*/,
                         std::vector<ReceiptFailure> /*failures*/) override {}
  void OnStreamDone(SubscribeStream* /*stream*/, grpc::Status /*status*/) override {
    done_.Notify();
  }
  // Under the stream's lock: counts only.
  void Wake() override { ++wakes_; }

  // Keep the messages' sequence numbers instead of acking them.
  void KeepUnsettled() { ack_inline_ = false; }
  std::vector<uint64_t> kept() const {
    absl::MutexLock lock(&mu_);
    return kept_;
  }
  int wakes() const { return wakes_.load(); }
  int delivered() const { return delivered_.load(); }
  bool WaitDone() { return done_.WaitForNotificationWithTimeout(absl::Seconds(5)); }

 private:
  std::atomic<bool> ack_inline_{true};
  mutable absl::Mutex mu_;
  std::vector<uint64_t> kept_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> wakes_{0};
  std::atomic<int> delivered_{0};
  absl::Notification done_;
};

std::vector<ferry::v1::ReceivedMessage> Messages(int count) {
  std::vector<ferry::v1::ReceivedMessage> messages(count);
  for (ferry::v1::ReceivedMessage& message : messages) {
    message.set_topic("t");
    message.set_value("v");
  }
  return messages;
}

class SubscribeStreamTest : public ::testing::Test {
 protected:
  void Open(StreamConfig config) {
    stub_ = std::make_unique<SubscribeStream::Stub>(
        grpc::CreateChannel(node_.address(), grpc::InsecureChannelCredentials()));
    stream_ = std::make_shared<SubscribeStream>(0, node_.address(), config, &listener_,
                                                std::make_shared<Counters>());
    ferry::v1::SubscribeRequest open;
    open.mutable_open()->set_group("g");
    open.mutable_open()->add_topics("t");
    stream_->Start(stub_.get(), open);
    ASSERT_TRUE(node_.WaitFor(
        [](const Streams& streams) { return !streams.empty() && streams[0].opened; },
        kWait));
  }

  // Delivers `count` messages and waits until the listener has acked them.
  void DeliverAndAck(int count) {
    const int before = listener_.delivered();
    node_.Deliver(0, Messages(count));
    for (int i = 0; i < 500 && listener_.delivered() < before + count; ++i) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    ASSERT_EQ(listener_.delivered(), before + count);
  }

  // A stream whose listener keeps what it delivers unsettled; acks leave
  // in batches of `max_ack_batch` (nothing else is due for an hour).
  void OpenKeeping(int max_ack_batch) {
    listener_.KeepUnsettled();
    Open({.ack_deadline = hours(3),
          .max_ack_batch = max_ack_batch,
          .max_ack_delay = hours(1)});
  }

  // Delivers `batches` batches of `size` messages that the listener keeps
  // unsettled (KeepUnsettled); returns their receipts and sets *seqs to
  // their sequence numbers once all are kept.
  std::vector<std::string> DeliverKept(int batches, int size,
                                       std::vector<uint64_t>* seqs) {
    std::vector<std::string> receipts;
    for (int i = 0; i < batches; ++i) {
      const std::vector<std::string> batch = node_.Deliver(0, Messages(size));
      receipts.insert(receipts.end(), batch.begin(), batch.end());
    }
    for (int i = 0; i < 500 && listener_.kept().size() < receipts.size(); ++i) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    *seqs = listener_.kept();
    return receipts;
  }

  // Closes the stream; what the node saw once the stream half-closed.
  testing::StreamLog CloseAndLog() {
    stream_->Close();
    EXPECT_TRUE(node_.WaitFor(
        [](const Streams& streams) { return streams[0].half_closed; }, kWait));
    return node_.streams()[0];
  }

  std::vector<std::size_t> AckBatches() { return node_.streams()[0].AckBatchSizes(); }

  void TearDown() override {
    if (stream_ == nullptr) return;
    stream_->Close();
    EXPECT_TRUE(listener_.WaitDone());
  }

  FakeSubscriberNode node_;
  InlineAcker listener_;
  std::unique_ptr<SubscribeStream::Stub> stub_;
  std::shared_ptr<SubscribeStream> stream_;
};

TEST_F(SubscribeStreamTest, AckBatchesWakeTheTickerOnlyWhenDueBeforeItsNextTick) {
  // Extensions due in 2 h, a partial ack batch in 1 h: nothing here is due,
  // so batches leave by count only.
  Open({.ack_deadline = hours(3), .max_ack_batch = 3, .max_ack_delay = hours(1)});
  // The first messages plan the extension (one wake). Their acks fill a
  // batch, which leaves at once: nothing is left pending, so no wake-up
  // for the batch delay.
  DeliverAndAck(3);
  EXPECT_EQ(listener_.wakes(), 1);
  // Nor for the batches that follow, each full when its AckAll returns.
  for (int i = 0; i < 5; ++i) DeliverAndAck(3);
  EXPECT_EQ(listener_.wakes(), 1);
  // Four acks: a full batch leaves, one ack stays pending, due an hour
  // before the planned tick: one wake.
  DeliverAndAck(4);
  EXPECT_EQ(listener_.wakes(), 2);
  // Later batches are due after the tick already planned: no wake-up,
  // however many batches follow.
  for (int i = 0; i < 5; ++i) DeliverAndAck(3);
  EXPECT_EQ(listener_.wakes(), 2);
  ASSERT_TRUE(node_.WaitFor(
      [](const Streams& streams) { return streams[0].Acked().size() == 36; }, kWait));
  EXPECT_EQ(AckBatches(), std::vector<std::size_t>(12, 3));
}

TEST_F(SubscribeStreamTest, AckBatchAfterATickThatFoundNothingPendingWakesAgain) {
  // A delay no loaded machine sleeps through between the ack and the first
  // Tick below (20 ms once did), so only the ticks given here make it due.
  constexpr auto kDelay = seconds(10);
  Open({.ack_deadline = hours(3), .max_ack_batch = 1000, .max_ack_delay = kDelay});
  DeliverAndAck(2);
  EXPECT_EQ(listener_.wakes(), 2);
  // Not due yet: the tick plans the batch's delay.
  const Clock::time_point planned = stream_->Tick(Clock::now());
  EXPECT_LE(planned, Clock::now() + kDelay);
  // Due: sent; nothing pending, so the next tick is the extensions' (2 h).
  EXPECT_GT(stream_->Tick(planned), Clock::now() + hours(1));
  ASSERT_TRUE(node_.WaitFor(
      [](const Streams& streams) { return streams[0].Acked().size() == 2; }, kWait));
  // A new batch is due long before that tick: the ticker must be woken.
  DeliverAndAck(1);
  EXPECT_EQ(listener_.wakes(), 3);
  stream_->Tick(Clock::now() + kDelay);
  ASSERT_TRUE(node_.WaitFor(
      [](const Streams& streams) { return streams[0].Acked().size() == 3; }, kWait));
  EXPECT_EQ(AckBatches(), (std::vector<std::size_t>{2, 1}));
}

TEST_F(SubscribeStreamTest, SettlementsAcrossBlocksSettleEachMessageOnce) {
  OpenKeeping(1000);
  std::vector<uint64_t> seqs;
  const std::vector<std::string> receipts = DeliverKept(3, 4, &seqs);
  ASSERT_EQ(seqs.size(), 12U);
  // Out of order and across the three blocks; the second ack of a message,
  // a nack after its ack and sequence numbers never delivered are ignored.
  const std::vector<uint64_t> acks = {seqs[11], seqs[0], seqs[5], seqs[0]};
  stream_->AckAll(acks);
  stream_->Nack(seqs[5], milliseconds(7));
  stream_->Nack(seqs[6], milliseconds(7));
  stream_->Ack(seqs[6]);
  stream_->Extend(seqs[7], seconds(60));
  stream_->Ack(seqs[7]);
  stream_->Extend(seqs[7], seconds(60));
  stream_->Ack(seqs[11] + 1);
  stream_->Ack(seqs[11] + 1000);
  // Every message of the first block settled; their acks wait in the
  // pending batch, so the block stays, and a nack finds its lease settled.
  const std::vector<uint64_t> rest = {seqs[1], seqs[2], seqs[3]};
  stream_->AckAll(rest);
  stream_->Nack(seqs[1], milliseconds(7));
  const testing::StreamLog log = CloseAndLog();
  std::vector<std::string> acked = log.Acked();
  std::sort(acked.begin(), acked.end());
  std::vector<std::string> expected = {receipts[0], receipts[1], receipts[2], receipts[3],
                                       receipts[5], receipts[7], receipts[11]};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(acked, expected);
  ASSERT_EQ(log.Nacked().size(), 1U);
  EXPECT_EQ(log.Nacked()[0].receipt, receipts[6]);
  ASSERT_EQ(log.Extended().size(), 1U);
  EXPECT_EQ(log.Extended()[0].receipt, receipts[7]);
  EXPECT_TRUE(log.AckedSpans().empty());
}

// Settlements of messages whose block was freed (its acks left in a full
// batch) find nothing and touch no freed memory; the next block is unaffected.
TEST_F(SubscribeStreamTest, SettlementsOfAFreedBlockAreIgnored) {
  OpenKeeping(4);
  std::vector<uint64_t> seqs;
  const std::vector<std::string> receipts = DeliverKept(2, 4, &seqs);
  ASSERT_EQ(seqs.size(), 8U);
  // A full batch: sent at once, and the first block freed with it.
  stream_->AckAll(std::span(seqs).first(4));
  stream_->Ack(seqs[0]);
  stream_->Nack(seqs[1], milliseconds(7));
  stream_->Extend(seqs[2], seconds(60));
  const std::vector<uint64_t> again = {seqs[3], seqs[0]};
  stream_->AckAll(again);
  stream_->AckAll(std::span(seqs).last(4));
  const testing::StreamLog log = CloseAndLog();
  EXPECT_EQ(log.Acked(), receipts);
  EXPECT_EQ(log.AckBatchSizes(), (std::vector<std::size_t>{4, 4}));
  EXPECT_TRUE(log.Nacked().empty());
  EXPECT_TRUE(log.Extended().empty());
}

}  // namespace
}  // namespace ferry::client::internal
