// When a dispatcher asks for its next Tick(), on a fake cluster with a fake
// clock: only for what is due (commit rounds, ack deadlines, delays, the idle
// timeout), never for a group with nothing to do.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backend/fake_cluster.h"
#include "subscribe/group_dispatcher.h"

namespace ferry::subscribe {
namespace {

const backend::TopicPartition kP0{"orders", 0};

// Keeps the receipts of what the dispatcher sends.
class ReceiptSink final : public StreamSink {
 public:
  void Send(SerializedResponse serialized) override {
    v1::SubscribeResponse response;
    ASSERT_TRUE(response.ParseFromArray(serialized.view().data(),
                                        static_cast<int>(serialized.size())));
    absl::MutexLock lock(&mu);
    for (const auto& m : response.messages().messages()) *receipts.Add() = m.receipt();
  }
  google::protobuf::RepeatedPtrField<std::string> Take() {
    absl::MutexLock lock(&mu);
    return std::exchange(receipts, {});
  }

  absl::Mutex mu;
  google::protobuf::RepeatedPtrField<std::string> receipts ABSL_GUARDED_BY(mu);
};

class DispatcherTickRequestTest : public ::testing::Test {
 protected:
  DispatcherTickRequestTest() {
    // Far apart, so each request below can only come from one cause.
    config_.commit_interval = absl::Hours(1);
    config_.group_idle_timeout = absl::Hours(2);
    cluster_.AddTopic(kP0.topic, 1);
    dispatcher_ = std::make_shared<GroupDispatcher>(
        GroupOptions{.group = "g"}, std::vector<backend::Cluster*>{&cluster_}, config_,
        &registry_, nullptr, [this] { return now_; });
    dispatcher_->SetTickRequest([this](absl::Time at) { requests_.push_back(at); });
    EXPECT_TRUE(dispatcher_->Start({kP0.topic}).ok());
    member_ = cluster_.members("g").back();
    EXPECT_TRUE(dispatcher_->Attach(
        1, {.topics = {kP0.topic}, .ack_deadline = absl::Seconds(10)}, sink_));
  }
  ~DispatcherTickRequestTest() override { dispatcher_->Stop(); }

  // The requests since the last call.
  std::vector<absl::Time> Requests() { return std::exchange(requests_, {}); }

  void Deliver(int64_t offset) {
    member_->Deliver({backend::Owned(
        {.topic = kP0.topic, .partition = 0, .offset = offset, .value = "v"})});
  }

  config::SubscribeConfig config_;
  metrics::Registry registry_;
  backend::FakeCluster cluster_;
  absl::Time now_ = absl::FromUnixSeconds(1'000'000);
  std::shared_ptr<ReceiptSink> sink_ = std::make_shared<ReceiptSink>();
  std::shared_ptr<GroupDispatcher> dispatcher_;
  backend::FakeGroupMember* member_ = nullptr;
  std::vector<absl::Time> requests_;
};

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST_F(DispatcherTickRequestTest, AGroupWithNothingDueAsksForNoTick) {
  // A stream attached and no partition owned: nothing can fall due.
  dispatcher_->Tick(now_);
  EXPECT_THAT(Requests(), ElementsAre(now_ + config_.group_idle_timeout))
      << "only the idle timeout of the group's first moments (no stream yet)";
  now_ += absl::Seconds(1);
  dispatcher_->Tick(now_);
  EXPECT_THAT(Requests(), IsEmpty());
}

TEST_F(DispatcherTickRequestTest, OwnedPartitionsAskForEachCommitRound) {
  Requests();
  member_->Assign({{.partition = kP0, .next_offset = 0}});
  EXPECT_THAT(Requests(), ElementsAre(absl::InfinitePast()))
      << "the first commit round, at once";
  dispatcher_->Tick(now_);
  EXPECT_THAT(Requests(), ElementsAre(now_ + config_.commit_interval));
}

TEST_F(DispatcherTickRequestTest, ADeliveryAsksForItsAckDeadlineWhichRedelivers) {
  member_->Assign({{.partition = kP0, .next_offset = 0}});
  dispatcher_->Tick(now_);
  Requests();
  Deliver(0);
  ASSERT_THAT(sink_->Take(), SizeIs(1));
  const absl::Time deadline = now_ + absl::Seconds(10);
  EXPECT_THAT(Requests(), ElementsAre(now_ + GroupDispatcher::kBorrowedBytesHold))
      << "the record's bytes to copy come first; the deadline is later";
  now_ += 2 * GroupDispatcher::kBorrowedBytesHold;
  dispatcher_->Tick(now_);
  EXPECT_THAT(Requests(), ElementsAre(deadline));

  now_ = deadline;
  dispatcher_->Tick(now_);
  EXPECT_THAT(sink_->Take(), SizeIs(1)) << "redelivered at the deadline asked for";
  EXPECT_THAT(Requests(), ElementsAre(now_ + absl::Seconds(10)))
      << "the redelivery's own deadline, earlier than the next commit round";
}

TEST_F(DispatcherTickRequestTest, DeliveringOutsideATickAsksForTheAckDeadline) {
  dispatcher_->SetPaused(true);
  member_->Assign({{.partition = kP0, .next_offset = 0}});
  Deliver(0);
  Requests();
  now_ += absl::Seconds(2);
  dispatcher_->Tick(now_);
  EXPECT_THAT(Requests(), ElementsAre(now_ + config_.commit_interval))
      << "buffered and paused: only the commit round";
  ASSERT_THAT(sink_->Take(), IsEmpty());

  now_ += absl::Seconds(1);
  dispatcher_->SetPaused(false);
  ASSERT_THAT(sink_->Take(), SizeIs(1));
  EXPECT_THAT(Requests(), ElementsAre(now_ + absl::Seconds(10)));
}

TEST_F(DispatcherTickRequestTest, ADelayedNackAsksForItsDelay) {
  member_->Assign({{.partition = kP0, .next_offset = 0}});
  Deliver(0);
  now_ += absl::Seconds(2);  // past the borrowed-bytes hold
  dispatcher_->Tick(now_);
  Requests();
  EXPECT_THAT(dispatcher_->Nack(1, sink_->Take(), absl::Seconds(3)), IsEmpty());
  EXPECT_THAT(Requests(), ElementsAre(now_ + absl::Seconds(3)));
  now_ += absl::Seconds(3);
  dispatcher_->Tick(now_);
  EXPECT_THAT(sink_->Take(), SizeIs(1));
}

TEST_F(DispatcherTickRequestTest, TheLastStreamLeavingAsksForTheIdleTimeout) {
  dispatcher_->Tick(now_);
  Requests();
  now_ += absl::Minutes(5);
  dispatcher_->Detach(1);
  EXPECT_THAT(Requests(), ElementsAre(now_ + config_.group_idle_timeout));
}

TEST_F(DispatcherTickRequestTest, NoRequestsAfterStop) {
  dispatcher_->Stop();
  Requests();
  dispatcher_->Tick(now_);
  EXPECT_THAT(Requests(), IsEmpty());
}

}  // namespace
}  // namespace ferry::subscribe
