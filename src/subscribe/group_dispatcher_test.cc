// The group dispatcher on a fake cluster whose publishes complete inline and
// a fake member driven by the test (standing in for the member thread), with
// a fake clock.
#include "subscribe/group_dispatcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "absl/synchronization/notification.h"
#include "backend/fake_cluster.h"
#include "backend/member_leave.h"
#include "subscribe/wire_receipt.h"

namespace ferry::subscribe {
namespace {

using backend::ConsumedRecord;
using backend::FakeCluster;
using backend::FakeGroupMember;
using backend::TopicPartition;
using ::testing::IsEmpty;
using ::testing::SizeIs;

const TopicPartition kP0{"orders", 0};

// Collects what the dispatcher sends; optionally calls back into it from
// Send, as a gRPC write that completes inline could.
class RecordingSink final : public StreamSink {
 public:
  void Send(SerializedResponse serialized) override {
    if (on_send) on_send();
    v1::SubscribeResponse response;
    EXPECT_TRUE(response.ParseFromArray(serialized.view().data(),
                                        static_cast<int>(serialized.size())));
    absl::MutexLock lock(&mu);
    if (response.has_messages()) ++responses;
    // Runs count from the first message not taken yet.
    for (auto& run : *response.mutable_messages()->mutable_runs()) {
      run.set_first_message(run.first_message() + messages.size());
      runs.push_back(std::move(run));
    }
    for (auto& m : *response.mutable_messages()->mutable_messages()) {
      messages.push_back(std::move(m));
    }
  }
  std::vector<v1::ReceivedMessage> Take() {
    absl::MutexLock lock(&mu);
    runs.clear();
    return std::exchange(messages, {});
  }
  // The runs of the messages Take() would return next.
  std::vector<v1::ReceiptRun> Runs() {
    absl::MutexLock lock(&mu);
    return runs;
  }

  std::function<void()> on_send;
  absl::Mutex mu;
  std::vector<v1::ReceivedMessage> messages ABSL_GUARDED_BY(mu);
  std::vector<v1::ReceiptRun> runs ABSL_GUARDED_BY(mu);
  int responses ABSL_GUARDED_BY(mu) = 0;
};

google::protobuf::RepeatedPtrField<std::string> Receipts(
    const std::vector<v1::ReceivedMessage>& messages) {
  google::protobuf::RepeatedPtrField<std::string> receipts;
  for (const auto& m : messages) *receipts.Add() = m.receipt();
  return receipts;
}

// Messages [first, first + count) of `run`.
google::protobuf::RepeatedPtrField<v1::ReceiptSpan> Span(const v1::ReceiptRun& run,
                                                         uint32_t first, uint32_t count) {
  google::protobuf::RepeatedPtrField<v1::ReceiptSpan> spans;
  v1::ReceiptSpan& span = *spans.Add();
  span.set_run(run.run());
  span.set_first(first);
  span.set_count(count);
  return spans;
}

std::vector<ConsumedRecord> Records(int64_t first, int count) {
  std::vector<ConsumedRecord> records;
  for (int64_t o = first; o < first + count; ++o) {
    records.push_back(backend::Owned({.topic = kP0.topic,
                                      .partition = 0,
                                      .offset = o,
                                      .key = "k" + std::to_string(o),
                                      .value = "v" + std::to_string(o)}));
  }
  return records;
}

class GroupDispatcherTest : public ::testing::Test {
 protected:
  void SetUpDispatcher(GroupOptions options, StreamOptions stream = {}) {
    options.group = "g";
    cluster_.AddTopic(kP0.topic, 1);
    dispatcher_ = std::make_shared<GroupDispatcher>(
        options, std::vector<backend::Cluster*>{&cluster_}, config_, &registry_, nullptr,
        [this] { return now_; });
    ASSERT_TRUE(dispatcher_->Start({kP0.topic}).ok());
    member_ = cluster_.members("g").back();
    member_->Assign({{.partition = kP0, .next_offset = 0}});
    stream.topics = {kP0.topic};
    ASSERT_TRUE(dispatcher_->Attach(1, std::move(stream), sink_));
  }

  void TearDown() override {
    if (dispatcher_) dispatcher_->Stop();
  }

  int64_t CommitOffset() {
    return dispatcher_->Snapshot().partitions.at(0).commit_offset;
  }

  config::SubscribeConfig config_;
  metrics::Registry registry_;
  FakeCluster cluster_;
  absl::Time now_ = absl::FromUnixSeconds(1'000'000);
  std::shared_ptr<RecordingSink> sink_ = std::make_shared<RecordingSink>();
  std::shared_ptr<GroupDispatcher> dispatcher_;
  FakeGroupMember* member_ = nullptr;
};

// Fault 1 of issue 24: the dead-letter write completed inline (a publish
// librdkafka refuses at once) and its callback took the dispatcher's lock
// on the thread that held it: the group, then the node, hung.
TEST_F(GroupDispatcherTest, DeadLetterWriteThatFailsInlineIsRetriedWithBackoff) {
  SetUpDispatcher({.max_delivery_attempts = 1});
  cluster_.SetPublishStatus(absl::NotFoundError("UNKNOWN_TOPIC_OR_PART"));
  member_->Deliver(Records(0, 1));
  auto first = sink_->Take();
  ASSERT_THAT(first, SizeIs(1));

  // The nack exhausts the attempts: the write fails inline, without a hang.
  EXPECT_THAT(dispatcher_->Nack(1, Receipts(first), absl::ZeroDuration()), IsEmpty());
  EXPECT_THAT(cluster_.published(), IsEmpty());
  EXPECT_THAT(sink_->Take(), IsEmpty()) << "a dead letter is never handed to a client";

  // Retried after 1 s, then 2 s (backoff), never spinning.
  now_ += absl::Milliseconds(999);
  dispatcher_->Tick(now_);
  const auto failures = [&] {
    const std::string text = registry_.Render();
    const std::string series =
        "ferry_subscribe_dead_letter_failures_total{group=\"g\",topic=\"orders\"} ";
    const size_t at = text.find(series);
    return at == std::string::npos ? -1 : std::stoi(text.substr(at + series.size()));
  };
  EXPECT_EQ(failures(), 1);
  now_ += absl::Milliseconds(1);
  dispatcher_->Tick(now_);
  EXPECT_EQ(failures(), 2);
  now_ += absl::Milliseconds(1999);
  dispatcher_->Tick(now_);
  EXPECT_EQ(failures(), 2);

  // The topic appears: the next try succeeds and the group commits past it.
  cluster_.SetPublishStatus(absl::OkStatus());
  now_ += absl::Milliseconds(1);
  dispatcher_->Tick(now_);
  ASSERT_THAT(cluster_.published(), SizeIs(1));
  const backend::Record dead = cluster_.published()[0];
  EXPECT_EQ(dead.topic, "orders.dlq");
  EXPECT_EQ(dead.value, "v0");
  EXPECT_EQ(dispatcher_->Snapshot().partitions.at(0).commit_offset, 1);
  EXPECT_THAT(sink_->Take(), IsEmpty());
}

TEST_F(GroupDispatcherTest, DeadLetterWriteThatSucceedsInlineAcksTheMessage) {
  SetUpDispatcher({.max_delivery_attempts = 1, .dead_letter_topic = "parked"});
  member_->Deliver(Records(0, 2));
  auto first = sink_->Take();
  ASSERT_THAT(first, SizeIs(2));
  EXPECT_THAT(dispatcher_->Nack(1, Receipts({first[0]}), absl::ZeroDuration()),
              IsEmpty());
  ASSERT_THAT(cluster_.published(), SizeIs(1));
  EXPECT_EQ(cluster_.published()[0].topic, "parked");
  EXPECT_THAT(dispatcher_->Ack(1, Receipts({first[1]})), IsEmpty());
  EXPECT_EQ(dispatcher_->Snapshot().partitions.at(0).commit_offset, 2);
}

// A sink whose Send calls back into the dispatcher (a write completing
// inline) must not find the dispatcher's lock held.
TEST_F(GroupDispatcherTest, SinkMayCallBackIntoTheDispatcher) {
  int calls = 0;
  sink_->on_send = [&] {
    ++calls;
    dispatcher_->Snapshot();
    dispatcher_->UpdateFlow(1, 0, 0);
  };
  SetUpDispatcher({});
  member_->Deliver(Records(0, 3));
  EXPECT_GE(calls, 1);
  auto messages = sink_->Take();
  ASSERT_THAT(messages, SizeIs(3));
  EXPECT_THAT(dispatcher_->Ack(1, Receipts(messages)), IsEmpty());
}

// Fault 3 of issue 24: an offset counted as committed when the commit was
// sent; a failed commit then left the broker's offset behind for good on an
// idle partition.
TEST_F(GroupDispatcherTest, FailedCommitIsSentAgainUntilTheBrokerConfirmsIt) {
  SetUpDispatcher({});
  member_->Deliver(Records(0, 2));
  EXPECT_THAT(dispatcher_->Ack(1, Receipts(sink_->Take())), IsEmpty());
  dispatcher_->Tick(now_);
  ASSERT_THAT(member_->commits(), SizeIs(1));
  EXPECT_EQ(member_->commits().back().at(kP0), 2);
  member_->AnswerCommits(absl::UnavailableError("coordinator not available"));
  EXPECT_EQ(dispatcher_->Snapshot().partitions.at(0).committed, 0);

  now_ += config_.commit_interval;
  dispatcher_->Tick(now_);
  ASSERT_THAT(member_->commits(), SizeIs(2)) << "the failed commit was not sent again";
  EXPECT_EQ(member_->commits().back().at(kP0), 2);
  member_->AnswerCommits(absl::OkStatus());
  EXPECT_EQ(dispatcher_->Snapshot().partitions.at(0).committed, 2);

  now_ += config_.commit_interval;
  dispatcher_->Tick(now_);
  EXPECT_THAT(member_->commits(), SizeIs(2)) << "committed again what was confirmed";
}

TEST_F(GroupDispatcherTest, CommitAwaitingItsAnswerIsNotSentTwice) {
  SetUpDispatcher({});
  member_->Deliver(Records(0, 1));
  EXPECT_THAT(dispatcher_->Ack(1, Receipts(sink_->Take())), IsEmpty());
  dispatcher_->Tick(now_);
  now_ += config_.commit_interval;
  dispatcher_->Tick(now_);
  EXPECT_THAT(member_->commits(), SizeIs(1));
}

TEST_F(GroupDispatcherTest, StreamCreditLimitsWhatIsOutstanding) {
  SetUpDispatcher({});
  dispatcher_->UpdateFlow(1, 2, 0);
  member_->Deliver(Records(0, 5));
  auto first = sink_->Take();
  ASSERT_THAT(first, SizeIs(2));
  EXPECT_THAT(dispatcher_->Ack(1, Receipts({first[0]})), IsEmpty());
  auto next = sink_->Take();
  ASSERT_THAT(next, SizeIs(1));
  EXPECT_EQ(next[0].offset(), 2);
}

TEST_F(GroupDispatcherTest, ResponsesAreCutAtOneMebibyte) {
  SetUpDispatcher({});
  std::vector<ConsumedRecord> records;
  for (int64_t offset = 0; offset < 6; ++offset) {
    records.push_back(backend::Owned({.topic = kP0.topic,
                                      .partition = 0,
                                      .offset = offset,
                                      .value = std::string(400 << 10, 'v')}));
  }
  member_->Deliver(std::move(records));
  EXPECT_THAT(sink_->Take(), SizeIs(6));
  absl::MutexLock lock(&sink_->mu);
  // Cut once a response reached 1 MiB: 3 messages (1.2 MiB), then 3.
  EXPECT_EQ(sink_->responses, 2);
}

TEST_F(GroupDispatcherTest, ExpiredDeadlineRedeliversWithTheFakeClock) {
  SetUpDispatcher({});
  member_->Deliver(Records(0, 1));
  ASSERT_THAT(sink_->Take(), SizeIs(1));
  now_ += absl::Seconds(30);  // the default ack deadline
  dispatcher_->Tick(now_);
  auto again = sink_->Take();
  ASSERT_THAT(again, SizeIs(1));
  EXPECT_EQ(again[0].delivery_attempt(), 2);
}

StreamOptions Filtered(std::string text, int64_t max_messages = 1000) {
  return {.max_outstanding_messages = max_messages,
          .filter = *filter::Filter::Parse(text),
          .filter_text = std::move(text)};
}

std::vector<int64_t> Offsets(const std::vector<v1::ReceivedMessage>& messages) {
  std::vector<int64_t> offsets;
  for (const auto& m : messages) offsets.push_back(m.offset());
  return offsets;
}

TEST_F(GroupDispatcherTest, FilteredRecordsTakeNoCreditAndAreCommittedPast) {
  SetUpDispatcher({}, Filtered("key = 'k900'", /*max_messages=*/1));
  member_->Deliver(Records(0, 1000));
  auto delivered = sink_->Take();
  ASSERT_THAT(Offsets(delivered), ::testing::ElementsAre(900));
  EXPECT_EQ(CommitOffset(), 900);
  EXPECT_EQ(dispatcher_->Snapshot().partitions.at(0).buffered, 1);
  EXPECT_THAT(dispatcher_->Ack(1, Receipts(delivered)), IsEmpty());
  EXPECT_EQ(CommitOffset(), 1000);
  EXPECT_THAT(registry_.Render(),
              ::testing::HasSubstr(
                  "ferry_subscribe_filtered_total{group=\"g\",topic=\"orders\"} 999"));
}

TEST_F(GroupDispatcherTest, SkippedMessagesNeverBlockTheirKey) {
  SetUpDispatcher({.ordering = OrderingMode::kKey}, Filtered("headers.keep = 'y'"));
  std::vector<ConsumedRecord> records;
  for (int64_t o = 0; o < 6; ++o) {
    records.push_back({.topic = kP0.topic,
                       .offset = o,
                       .key = "user-1",
                       .headers = {{"keep", o % 2 == 1 ? "y" : "n"}}});
  }
  member_->Deliver(records);
  for (int64_t expected : {1, 3, 5}) {
    auto delivered = sink_->Take();
    ASSERT_THAT(Offsets(delivered), ::testing::ElementsAre(expected))
        << "one message of the key at a time, the skipped ones in between not waited for";
    EXPECT_THAT(dispatcher_->Ack(1, Receipts(delivered)), IsEmpty());
  }
  EXPECT_EQ(CommitOffset(), 6);
}

TEST_F(GroupDispatcherTest, StreamsWithDifferentFiltersGetWhatTheirFilterMatches) {
  SetUpDispatcher({}, Filtered("key IN ('k1', 'k3')"));
  auto other = std::make_shared<RecordingSink>();
  ASSERT_TRUE(dispatcher_->Attach(2,
                                  {.topics = {kP0.topic},
                                   .filter = *filter::Filter::Parse("key = 'k2'"),
                                   .filter_text = "key = 'k2'"},
                                  other));
  member_->Deliver(Records(0, 5));
  EXPECT_THAT(Offsets(sink_->Take()), ::testing::ElementsAre(1, 3));
  EXPECT_THAT(Offsets(other->Take()), ::testing::ElementsAre(2));
  EXPECT_EQ(CommitOffset(), 1) << "0 and 4 matched no stream";
}

TEST_F(GroupDispatcherTest, WhatOnlyADetachedStreamWantedIsSkipped) {
  SetUpDispatcher({}, Filtered("key = 'k1'", /*max_messages=*/1));
  auto other = std::make_shared<RecordingSink>();
  ASSERT_TRUE(dispatcher_->Attach(2,
                                  {.topics = {kP0.topic},
                                   .max_outstanding_messages = 1,
                                   .filter = *filter::Filter::Parse("key != 'k1'"),
                                   .filter_text = "key != 'k1'"},
                                  other));
  member_->Deliver(Records(0, 4));
  EXPECT_THAT(Offsets(sink_->Take()), ::testing::ElementsAre(1));
  EXPECT_THAT(Offsets(other->Take()), ::testing::ElementsAre(0));
  dispatcher_->Detach(2);  // 0 is released; nothing left wants 0, 2 or 3
  EXPECT_EQ(CommitOffset(), 1);
  EXPECT_EQ(dispatcher_->Snapshot().partitions.at(0).buffered, 1);
}

TEST_F(GroupDispatcherTest, RecordsBufferedWithoutStreamsAreFilteredWhenOneAttaches) {
  SetUpDispatcher({}, Filtered("key = 'k1'"));
  dispatcher_->Detach(1);
  member_->Deliver(Records(0, 3));
  EXPECT_EQ(CommitOffset(), 0) << "no stream: nothing decided yet";
  ASSERT_TRUE(dispatcher_->Attach(3,
                                  {.topics = {kP0.topic},
                                   .filter = *filter::Filter::Parse("key = 'k2'"),
                                   .filter_text = "key = 'k2'"},
                                  sink_));
  EXPECT_THAT(Offsets(sink_->Take()), ::testing::ElementsAre(2));
  EXPECT_EQ(CommitOffset(), 2);
}

TEST_F(GroupDispatcherTest, AGroupFilterChangeSkipsWaitingRecordsButNotInFlightOnes) {
  SetUpDispatcher({}, Filtered("", /*max_messages=*/1));
  member_->Deliver(Records(0, 3));
  auto first = sink_->Take();
  ASSERT_THAT(Offsets(first), ::testing::ElementsAre(0));
  dispatcher_->SetGroupFilter(*filter::Filter::Parse("key = 'k2'"), "key = 'k2'");
  EXPECT_EQ(dispatcher_->Snapshot().group_filter, "key = 'k2'");
  EXPECT_THAT(dispatcher_->Ack(1, Receipts(first)), IsEmpty())
      << "in flight: still valid";
  EXPECT_THAT(Offsets(sink_->Take()), ::testing::ElementsAre(2));
  member_->Deliver(Records(3, 3));
  EXPECT_THAT(sink_->Take(), IsEmpty());
  EXPECT_EQ(CommitOffset(), 2);

  dispatcher_->SetGroupFilter({}, "");
  member_->Deliver(Records(6, 1));
  EXPECT_THAT(Offsets(sink_->Take()), IsEmpty()) << "credit 1: 2 is still out";
}

// Dual consume: one dispatcher over two clusters that hold the same topic.
// Compact acks (v1::ReceiptSpan): the same results as the receipts they
// stand for.
TEST_F(GroupDispatcherTest, SpansAckARunInPiecesAndADuplicateFailsPerReceipt) {
  SetUpDispatcher({});
  member_->Deliver(Records(0, 5));
  const std::vector<v1::ReceiptRun> runs = sink_->Runs();
  const auto messages = sink_->Take();
  ASSERT_THAT(messages, SizeIs(5));
  ASSERT_THAT(runs, SizeIs(1));
  ASSERT_EQ(runs[0].count(), 5u);

  // Given a hole at offset 2, the commit stops there.
  EXPECT_THAT(dispatcher_->Ack(1, {}, Span(runs[0], 0, 2)), IsEmpty());
  EXPECT_THAT(dispatcher_->Ack(1, {}, Span(runs[0], 3, 2)), IsEmpty());
  dispatcher_->Tick(now_ += config_.commit_interval);
  EXPECT_EQ(CommitOffset(), 2);

  // A span over acked messages fails for exactly those, with their receipts.
  const auto failures = dispatcher_->Ack(1, {}, Span(runs[0], 1, 3));
  ASSERT_THAT(failures, SizeIs(2));
  EXPECT_EQ(failures[0].receipt(), messages[1].receipt());
  EXPECT_EQ(failures[1].receipt(), messages[3].receipt());
  EXPECT_EQ(failures[0].status().code(),
            static_cast<int>(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(failures[1].status().message(), "receipt expired");
  EXPECT_FALSE(failures[0].has_span());
  EXPECT_EQ(CommitOffset(), 5) << "the hole was acked by the span";
}

TEST_F(GroupDispatcherTest, SpansThatCannotBeReadFailWholeAndSettleNothing) {
  SetUpDispatcher({});
  member_->Deliver(Records(0, 3));
  const v1::ReceiptRun run = sink_->Runs().at(0);
  const auto messages = sink_->Take();
  v1::ReceiptRun garbage;
  garbage.set_run("not a run");
  v1::ReceiptRun receipt_as_run;
  receipt_as_run.set_run(messages[0].receipt());
  std::optional<WireRun> foreign = DecodeRun(run.run());
  ASSERT_TRUE(foreign.has_value());
  foreign->first.stream = 2;
  v1::ReceiptRun other_stream;
  AppendRun(*foreign, *other_stream.mutable_run());

  const struct {
    google::protobuf::RepeatedPtrField<v1::ReceiptSpan> span;
    absl::StatusCode code;
    std::string message;
  } cases[] = {
      {Span(garbage, 0, 1), absl::StatusCode::kInvalidArgument, "malformed receipt run"},
      {Span(receipt_as_run, 0, 1), absl::StatusCode::kInvalidArgument,
       "malformed receipt run"},
      {Span(run, 0, 0), absl::StatusCode::kInvalidArgument,
       "span of 0 messages from 0 is outside its run of 3 messages"},
      {Span(run, 2, 2), absl::StatusCode::kInvalidArgument,
       "span of 2 messages from 2 is outside its run of 3 messages"},
      {Span(run, 3, 1), absl::StatusCode::kInvalidArgument,
       "span of 1 messages from 3 is outside its run of 3 messages"},
      {Span(other_stream, 0, 3), absl::StatusCode::kFailedPrecondition,
       "receipt run was issued on another stream"},
  };
  for (const auto& c : cases) {
    const auto failures = dispatcher_->Ack(1, {}, c.span);
    ASSERT_THAT(failures, SizeIs(1)) << c.message;
    EXPECT_EQ(failures[0].status().code(), static_cast<int>(c.code)) << c.message;
    EXPECT_EQ(failures[0].status().message(), c.message);
    EXPECT_EQ(failures[0].span().SerializeAsString(), c.span[0].SerializeAsString());
    EXPECT_TRUE(failures[0].receipt().empty());
  }
  dispatcher_->Tick(now_ += config_.commit_interval);
  EXPECT_EQ(CommitOffset(), 0) << "nothing was settled";
  EXPECT_THAT(dispatcher_->Ack(1, Receipts(messages)), IsEmpty());
}

TEST_F(GroupDispatcherTest, ASpanFromBeforeASeekExpiresAndTheNewRunSettles) {
  SetUpDispatcher({});
  member_->Deliver(Records(0, 3));
  const v1::ReceiptRun before = sink_->Runs().at(0);
  const auto old_messages = sink_->Take();
  ASSERT_EQ(dispatcher_->Seek("", {{kP0, 0}}), std::set<TopicPartition>{kP0});
  member_->CompleteSeeks();
  member_->Deliver(Records(0, 3));
  const v1::ReceiptRun after = sink_->Runs().at(0);
  ASSERT_THAT(sink_->Take(), SizeIs(3)) << "delivered again, in a new generation";

  const auto failures = dispatcher_->Ack(1, {}, Span(before, 0, 3));
  ASSERT_THAT(failures, SizeIs(3));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(failures[i].receipt(), old_messages[i].receipt());
    EXPECT_EQ(failures[i].status().message(), "receipt expired");
  }
  dispatcher_->Tick(now_ += config_.commit_interval);
  EXPECT_EQ(CommitOffset(), 0);
  EXPECT_THAT(dispatcher_->Ack(1, {}, Span(after, 0, 3)), IsEmpty());
  EXPECT_EQ(CommitOffset(), 3);
}

// A second seek before the first was confirmed: the first confirmation
// ended the seek, and records the member still read from the first position
// were delivered (and their offset committed) before the second move.
TEST_F(GroupDispatcherTest, TheConfirmationOfAnOvertakenSeekDoesNotEndTheLaterOne) {
  SetUpDispatcher({});
  ASSERT_EQ(dispatcher_->Seek("", {{kP0, 0}}), std::set<TopicPartition>{kP0});
  ASSERT_EQ(dispatcher_->Seek("", {{kP0, 5}}), std::set<TopicPartition>{kP0});
  ASSERT_THAT(member_->CompleteSeeks(1), SizeIs(1));
  member_->Deliver(Records(0, 3));
  EXPECT_THAT(sink_->Take(), IsEmpty()) << "read from the overtaken position";

  ASSERT_THAT(member_->CompleteSeeks(), SizeIs(1));
  member_->Deliver(Records(5, 2));
  const auto messages = sink_->Take();
  ASSERT_THAT(messages, SizeIs(2));
  EXPECT_THAT(dispatcher_->Ack(1, Receipts(messages)), IsEmpty());
  dispatcher_->Tick(now_ += config_.commit_interval);
  EXPECT_EQ(CommitOffset(), 7);
}

TEST_F(GroupDispatcherTest, ASpanOfALeftPartitionExpiresMessageByMessage) {
  SetUpDispatcher({});
  member_->Deliver(Records(0, 2));
  const v1::ReceiptRun run = sink_->Runs().at(0);
  const auto messages = sink_->Take();
  dispatcher_->SetClusters({});
  const auto failures = dispatcher_->Ack(1, {}, Span(run, 0, 2));
  ASSERT_THAT(failures, SizeIs(2));
  EXPECT_EQ(failures[0].receipt(), messages[0].receipt());
  EXPECT_EQ(failures[1].receipt(), messages[1].receipt());
  EXPECT_EQ(failures[1].status().message(), "receipt expired");
}

TEST_F(GroupDispatcherTest, ASpanReturnsFlowCreditAndNextMessagesFollow) {
  SetUpDispatcher({}, {.max_outstanding_messages = 3});
  member_->Deliver(Records(0, 6));
  const v1::ReceiptRun run = sink_->Runs().at(0);
  ASSERT_THAT(sink_->Take(), SizeIs(3));
  EXPECT_THAT(dispatcher_->Ack(1, {}, Span(run, 0, 2)), IsEmpty());
  const auto next = sink_->Take();
  ASSERT_THAT(next, SizeIs(2)) << "two messages' credit came back";
  EXPECT_EQ(next[0].offset(), 3);
}

class DualClusterDispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override { SetUpDispatcher({}); }

  void SetUpDispatcher(GroupOptions options) {
    if (dispatcher_) dispatcher_->Stop();
    options.group = "g";
    main_.AddTopic(kP0.topic, 1);
    standby_.AddTopic(kP0.topic, 1);
    dispatcher_ = std::make_shared<GroupDispatcher>(
        options, std::vector<backend::Cluster*>{&main_, &standby_}, config_, &registry_,
        nullptr, [this] { return now_; });
    ASSERT_TRUE(dispatcher_->Start({kP0.topic}).ok());
    main_member_ = main_.members("g").back();
    standby_member_ = standby_.members("g").back();
    for (FakeGroupMember* member : {main_member_, standby_member_}) {
      member->Assign({{.partition = kP0, .next_offset = 0}});
    }
    ASSERT_TRUE(dispatcher_->Attach(1, {.topics = {kP0.topic}}, sink_));
  }

  void TearDown() override {
    // A member held leaving waits on release_: freed before a failed
    // assertion's test ends, and waited for before the clusters go.
    if (!release_.HasBeenNotified()) release_.Notify();
    dispatcher_->Stop();
    ASSERT_TRUE(backend::AwaitNoMembersLeaving(absl::Seconds(10)));
  }

  static std::vector<v1::ReceivedMessage> From(
      const std::vector<v1::ReceivedMessage>& messages, const std::string& cluster) {
    std::vector<v1::ReceivedMessage> out;
    for (const auto& m : messages) {
      if (m.cluster() == cluster) out.push_back(m);
    }
    return out;
  }

  absl::Notification release_;
  config::SubscribeConfig config_;
  metrics::Registry registry_;
  FakeCluster main_{"main"};
  FakeCluster standby_{"standby"};
  absl::Time now_ = absl::FromUnixSeconds(1'000'000);
  std::shared_ptr<RecordingSink> sink_ = std::make_shared<RecordingSink>();
  std::shared_ptr<GroupDispatcher> dispatcher_;
  FakeGroupMember* main_member_ = nullptr;
  FakeGroupMember* standby_member_ = nullptr;
};

TEST_F(DualClusterDispatcherTest, OneStreamGetsBothClustersEachMessageNamingItsCluster) {
  main_member_->Deliver(Records(0, 2));
  standby_member_->Deliver(Records(0, 3));
  auto messages = sink_->Take();
  ASSERT_THAT(messages, SizeIs(5));
  EXPECT_THAT(From(messages, "main"), SizeIs(2));
  EXPECT_THAT(From(messages, "standby"), SizeIs(3));
  const auto snapshot = dispatcher_->Snapshot();
  ASSERT_THAT(snapshot.partitions, SizeIs(2));
  EXPECT_EQ(snapshot.partitions[0].cluster, "main");
  EXPECT_EQ(snapshot.partitions[1].cluster, "standby");
}

// Both clusters hold offset 0 of orders/0: only the receipt's cluster tells
// which one an ack settles, and each cluster's member commits its own.
TEST_F(DualClusterDispatcherTest, AcksSettleAndCommitOnTheClusterTheMessageCameFrom) {
  main_member_->Deliver(Records(0, 2));
  standby_member_->Deliver(Records(0, 2));
  auto messages = sink_->Take();
  ASSERT_THAT(messages, SizeIs(4));
  EXPECT_THAT(dispatcher_->Ack(1, Receipts(From(messages, "standby"))), IsEmpty());
  dispatcher_->Tick(now_);
  EXPECT_THAT(main_member_->commits(), IsEmpty()) << "nothing of main was acked";
  ASSERT_THAT(standby_member_->commits(), SizeIs(1));
  EXPECT_EQ(standby_member_->commits()[0].at(kP0), 2);

  EXPECT_THAT(dispatcher_->Ack(1, Receipts({From(messages, "main")[0]})), IsEmpty());
  now_ += config_.commit_interval;
  dispatcher_->Tick(now_);
  ASSERT_THAT(main_member_->commits(), SizeIs(1));
  EXPECT_EQ(main_member_->commits()[0].at(kP0), 1);
  EXPECT_THAT(standby_member_->commits(), SizeIs(1)) << "standby committed twice";

  // Acked twice: expired on the cluster it was settled on, nothing else moves.
  auto again = dispatcher_->Ack(1, Receipts({From(messages, "main")[0]}));
  ASSERT_THAT(again, SizeIs(1));
  EXPECT_EQ(again[0].status().code(),
            static_cast<int>(absl::StatusCode::kFailedPrecondition));
}

TEST_F(DualClusterDispatcherTest, StreamCreditIsOneBudgetAcrossClusters) {
  dispatcher_->UpdateFlow(1, 3, 0);
  main_member_->Deliver(Records(0, 5));
  standby_member_->Deliver(Records(0, 5));
  auto first = sink_->Take();
  ASSERT_THAT(first, SizeIs(3)) << "the stream's limit counts both clusters together";
  EXPECT_THAT(dispatcher_->Ack(1, Receipts({first[0]})), IsEmpty());
  EXPECT_THAT(sink_->Take(), SizeIs(1));
  EXPECT_EQ(dispatcher_->Snapshot().streams.at(0).outstanding_messages, 3);
}

TEST_F(DualClusterDispatcherTest, DeadLettersGoToTheClusterTheMessageCameFrom) {
  SetUpDispatcher({.max_delivery_attempts = 1});
  standby_member_->Deliver(Records(0, 1));
  auto messages = sink_->Take();
  ASSERT_THAT(messages, SizeIs(1));
  EXPECT_THAT(dispatcher_->Nack(1, Receipts(messages), absl::ZeroDuration()), IsEmpty());
  EXPECT_THAT(main_.published(), IsEmpty());
  ASSERT_THAT(standby_.published(), SizeIs(1));
  EXPECT_EQ(standby_.published()[0].topic, "orders.dlq");
}

TEST_F(DualClusterDispatcherTest, SeekMovesTheNamedClusterOrEveryCluster) {
  EXPECT_EQ(dispatcher_->Seek("standby", {{kP0, 0}}), std::set<TopicPartition>{kP0});
  main_member_->Deliver(Records(0, 1));
  standby_member_->Deliver(Records(0, 1));
  auto messages = sink_->Take();
  ASSERT_THAT(messages, SizeIs(1)) << "standby is moving: nothing of it is delivered";
  EXPECT_EQ(messages[0].cluster(), "main");
  EXPECT_THAT(dispatcher_->Ack(1, Receipts(messages)), IsEmpty());

  EXPECT_EQ(dispatcher_->Seek("", {{kP0, 0}}), std::set<TopicPartition>{kP0});
  main_member_->Deliver(Records(1, 1));
  EXPECT_THAT(sink_->Take(), IsEmpty()) << "a seek without a cluster moves main too";
  EXPECT_THAT(dispatcher_->Seek("elsewhere", {{kP0, 0}}), IsEmpty());
}

TEST_F(DualClusterDispatcherTest, PauseStopsFetchingAndDeliveryOnEveryCluster) {
  dispatcher_->SetPaused(true);
  EXPECT_EQ(main_member_->paused(), std::set<TopicPartition>{kP0});
  EXPECT_EQ(standby_member_->paused(), std::set<TopicPartition>{kP0});
  main_member_->Deliver(Records(0, 1));
  standby_member_->Deliver(Records(0, 1));
  EXPECT_THAT(sink_->Take(), IsEmpty());
  dispatcher_->SetPaused(false);
  EXPECT_THAT(main_member_->paused(), IsEmpty());
  EXPECT_THAT(standby_member_->paused(), IsEmpty());
  EXPECT_THAT(sink_->Take(), SizeIs(2));
}

// A read cluster that is down has no partitions assigned yet: the other one
// delivers meanwhile, and the late one joins in when its member is assigned.
TEST_F(DualClusterDispatcherTest, AClusterAssignedLateJoinsWithoutStoppingTheOther) {
  auto late = std::make_shared<GroupDispatcher>(
      GroupOptions{.group = "late"}, std::vector<backend::Cluster*>{&main_, &standby_},
      config_, &registry_, nullptr, [this] { return now_; });
  ASSERT_TRUE(late->Start({kP0.topic}).ok());
  auto sink = std::make_shared<RecordingSink>();
  ASSERT_TRUE(late->Attach(1, {.topics = {kP0.topic}}, sink));
  main_.members("late").back()->Assign({{.partition = kP0, .next_offset = 0}});
  main_.members("late").back()->Deliver(Records(0, 2));
  EXPECT_THAT(sink->Take(), SizeIs(2)) << "main delivers while standby has nothing";
  standby_.members("late").back()->Assign({{.partition = kP0, .next_offset = 5}});
  standby_.members("late").back()->Deliver(Records(5, 1));
  auto from_standby = sink->Take();
  ASSERT_THAT(from_standby, SizeIs(1));
  EXPECT_EQ(from_standby[0].cluster(), "standby");
  late->Stop();
}

// Leaving a cluster that is down waits for timeouts; the other cluster's
// member leaves (and commits its acked prefix) meanwhile, whichever of the
// two is slow.
TEST_F(DualClusterDispatcherTest, AClusterSlowToLeaveDoesNotHoldUpTheOther) {
  for (auto [slow, other] : {std::pair{&main_, &standby_}, {&standby_, &main_}}) {
    SCOPED_TRACE(slow->name() + " slow to leave");
    SetUpDispatcher({});
    const size_t other_commits = other->leave_commits("g").size();
    absl::Notification release;
    slow->HoldLeaving(&release);
    std::thread stopper([this] { dispatcher_->Stop(); });
    // The other member revoked (its partition dropped) and committed while
    // the slow one is still held.
    EXPECT_TRUE(other->AwaitLeaveCommits("g", other_commits + 1, absl::Seconds(10)))
        << other->name() << " waited for the slow one";
    for (const auto& p : dispatcher_->Snapshot().partitions) {
      EXPECT_NE(p.cluster, other->name());
    }
    // Its leaving thread may start after the other one finished.
    EXPECT_TRUE(slow->AwaitLeaving(1, absl::Seconds(10)));
    release.Notify();
    stopper.join();
    slow->HoldLeaving(nullptr);
  }
}

// librdkafka's destroy can hang for good (a topic deleted under the group):
// the dispatcher stops waiting after subscribe.leave_timeout, counts the
// member as abandoned, and joins that cluster again later with a fresh
// listener. The abandoned member, once it gets unstuck, reaches nothing.
TEST_F(DualClusterDispatcherTest, AMemberStuckLeavingIsAbandonedAfterTheLeaveTimeout) {
  config_.leave_timeout = absl::Milliseconds(200);
  SetUpDispatcher({});
  const size_t joins = main_.members("g").size();
  const size_t leave_commits = main_.leave_commits("g").size();
  main_member_->Deliver(Records(0, 2));
  auto delivered = sink_->Take();
  ASSERT_THAT(delivered, SizeIs(2));
  EXPECT_THAT(dispatcher_->Ack(1, Receipts({delivered[0]})), IsEmpty());

  const int64_t abandoned_before =
      backend::ConsumersAbandoned(backend::ConsumerKind::kGroupMember, "main");
  main_.HoldLeaving(&release_);
  const absl::Time start = absl::Now();
  dispatcher_->SetClusters({&standby_});  // returns although main never left
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  // Its leaving thread may reach the hold after the wait gave up.
  EXPECT_TRUE(main_.AwaitLeaving(1, absl::Seconds(10)));
  EXPECT_EQ(backend::ConsumersAbandoned(backend::ConsumerKind::kGroupMember, "main"),
            abandoned_before + 1);
  main_.HoldLeaving(nullptr);

  // Read again: a new member with a listener of its own delivers.
  dispatcher_->SetClusters({&standby_, &main_});
  ASSERT_THAT(main_.members("g"), SizeIs(joins + 1));
  FakeGroupMember* rejoined = main_.members("g").back();
  rejoined->Assign({{.partition = kP0, .next_offset = 1}});
  rejoined->Deliver(Records(1, 1));
  auto again = sink_->Take();
  ASSERT_THAT(again, SizeIs(1));
  EXPECT_EQ(again[0].cluster(), "main");

  // The abandoned member revokes what it owned: its listener was cut, so
  // nothing is committed for it, and the new member's partition stays.
  release_.Notify();
  ASSERT_TRUE(backend::AwaitNoMembersLeaving(absl::Seconds(10)));
  ASSERT_THAT(main_.leave_commits("g"), SizeIs(leave_commits + 1));
  EXPECT_THAT(main_.leave_commits("g").back(), IsEmpty());
  EXPECT_THAT(dispatcher_->Snapshot().partitions, SizeIs(2));
}

// A route's read list changes while a stream is open: [main] -> [main,
// standby] -> [standby]. The stream stays attached throughout.
TEST_F(DualClusterDispatcherTest, ReadListChangesReachTheOpenStream) {
  auto moving = std::make_shared<GroupDispatcher>(
      GroupOptions{.group = "moving"}, std::vector<backend::Cluster*>{&main_}, config_,
      &registry_, nullptr, [this] { return now_; });
  ASSERT_TRUE(moving->Start({kP0.topic}).ok());
  auto sink = std::make_shared<RecordingSink>();
  ASSERT_TRUE(
      moving->Attach(1, {.topics = {kP0.topic}, .max_outstanding_messages = 3}, sink));
  main_.members("moving").back()->Assign({{.partition = kP0, .next_offset = 0}});
  main_.members("moving").back()->Deliver(Records(0, 5));
  auto from_main = sink->Take();  // offsets 0 1 2
  ASSERT_THAT(from_main, SizeIs(3));
  EXPECT_THAT(moving->Ack(1, Receipts({from_main[0]})), IsEmpty());
  auto third = sink->Take();  // offset 3; offset 4 stays buffered
  ASSERT_THAT(third, SizeIs(1));

  // Added: joined with the group's topics, from the earliest record when
  // the group has no offset there.
  moving->SetClusters({&main_, &standby_});
  ASSERT_THAT(standby_.members("moving"), SizeIs(1));
  FakeGroupMember* standby = standby_.members("moving").back();
  EXPECT_EQ(standby->options().topics, std::vector<std::string>{kP0.topic});
  EXPECT_EQ(standby->options().start.kind, backend::StartPosition::Kind::kEarliest);
  standby->Assign({{.partition = kP0, .next_offset = 0}});
  standby->Deliver(Records(0, 1));
  EXPECT_THAT(sink->Take(), IsEmpty()) << "the stream's credit is still taken by main";

  // Removed: main stops delivering at once, while its leave still waits for
  // the broker: the credit acks free goes to standby, never to main's
  // buffered offset 4.
  absl::Notification release;
  main_.HoldLeaving(&release);
  std::thread remover([&] { moving->SetClusters({&standby_}); });
  EXPECT_TRUE(main_.AwaitLeaving(1, absl::Seconds(10)));
  EXPECT_THAT(moving->Ack(1, Receipts({from_main[1], from_main[2]})), IsEmpty());
  auto from_standby = sink->Take();
  ASSERT_THAT(from_standby, SizeIs(1)) << "main delivered while it was being left";
  EXPECT_EQ(from_standby[0].cluster(), "standby");
  release.Notify();
  remover.join();
  main_.HoldLeaving(nullptr);

  // Left: main committed its acked prefix, its in-flight receipt expired.
  EXPECT_THAT(main_.leave_commits("moving"),
              ::testing::ElementsAre(std::map<TopicPartition, int64_t>{{kP0, 3}}));
  auto expired = moving->Ack(1, Receipts(third));
  ASSERT_THAT(expired, SizeIs(1));
  EXPECT_EQ(expired[0].status().code(),
            static_cast<int>(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(expired[0].status().message(), "receipt expired");
  EXPECT_THAT(moving->Ack(1, Receipts(from_standby)), IsEmpty());
  moving->Tick(now_);
  ASSERT_THAT(standby->commits(), SizeIs(1));
  EXPECT_EQ(standby->commits()[0].at(kP0), 1);
  EXPECT_THAT(moving->clusters(), ::testing::ElementsAre(&standby_));
  EXPECT_EQ(moving->stream_count(), 1u);
  moving->Stop();
}

}  // namespace
}  // namespace ferry::subscribe
