// Server-side filters on every backend (docs/filters.md): a stream's filter
// and the group filter from the control topic, which survives a restart.
#include <gmock/gmock.h>

#include <map>
#include <set>

#include "fmt/format.h"
#include "tests/conformance/conformance_test.h"

namespace ferry::conformance {
namespace {

using ::ferry::testing::MakeOpen;
using ::ferry::testing::SubscriberStream;

// Publishes `count` messages with key "k<i % 4>", header "type" a / b by
// parity and JSON value {"n": i}; returns each partition's end offset.
std::map<int32_t, int64_t> PublishTyped(const testing::FerrydProcess& node,
                                        const std::string& topic, int from, int count) {
  v1::PublishRequest request;
  request.set_topic(topic);
  for (int i = from; i < from + count; ++i) {
    v1::OutgoingMessage* m =
        AddMessage(request, fmt::format("k{}", i % 4), fmt::format(R"({{"n": {}}})", i));
    v1::Header* type = m->add_headers();
    type->set_key("type");
    type->set_value(i % 2 == 0 ? "a" : "b");
  }
  std::map<int32_t, int64_t> ends;
  const v1::PublishResponse response = Conformance::PublishOk(node, request);
  for (const auto& r : response.results()) {
    ends[r.partition()] = std::max(ends[r.partition()], r.offset() + 1);
  }
  return ends;
}

// The `n` of the first `count` messages delivered and of any that follow
// within 500 ms, acking them all.
std::set<int> TakeNumbers(SubscriberStream& stream, size_t count) {
  std::vector<v1::ReceivedMessage> got = stream.Take(count, kWait);
  while (auto extra = stream.Next(absl::Milliseconds(500))) got.push_back(*extra);
  std::set<int> numbers;
  for (const auto& m : got) numbers.insert(std::stoi(m.value().substr(6)));
  EXPECT_TRUE(stream.Ack(Receipts(got)));
  return numbers;
}

TEST_P(Conformance, StreamFilterDeliversMatchingMessagesAndCommitsPastTheRest) {
  REQUIRE_CAPABILITY(Capability::kSubscribe);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 2);
  std::map<int32_t, int64_t> ends = PublishTyped(*node, topic, 0, 40);
  v1::SubscriptionOpen open = MakeOpen(Name(), {topic});
  open.set_filter("headers.type = 'a' AND json.n >= 30 AND NOT key = 'k0'");
  SubscriberStream stream(node->grpc_address(), open);
  EXPECT_EQ(TakeNumbers(stream, 3), (std::set<int>{30, 34, 38}))
      << stream.WaitEnded(absl::ZeroDuration()).error_message();
  ASSERT_TRUE(stream.Sync());
  WaitCommitted(*node, Name(), topic, ends);
}

// The group filter lives in the control topic, like pause flags.
TEST_P(Conformance, GroupFilterNarrowsALiveStreamAndSurvivesARestart) {
  REQUIRE_CAPABILITY(Capability::kPauseResume);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 1);
  v1::SubscriptionOpen open = MakeOpen(Name(), {topic});
  open.set_filter("headers.type = 'a'");
  {
    SubscriberStream stream(node->grpc_address(), open);
    ASSERT_TRUE(stream.WaitOpened().has_value()) << stream.WaitEnded().error_message();
    v1::SetGroupFilterRequest request;
    request.set_group(Name());
    request.set_filter("json.n < 4 OR json.n >= 12");
    v1::SetGroupFilterResponse response;
    grpc::ClientContext context;
    grpc::Status status =
        Admin(*node)->SetGroupFilter(WithDeadline(context), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    PublishTyped(*node, topic, 0, 8);
    EXPECT_EQ(TakeNumbers(stream, 2), (std::set<int>{0, 2}));
    ASSERT_TRUE(stream.Sync());
  }
  StopNode(node);
  node = Node();
  ASSERT_NE(node, nullptr);
  PublishTyped(*node, topic, 8, 8);
  SubscriberStream stream(node->grpc_address(), open);
  EXPECT_EQ(TakeNumbers(stream, 2), (std::set<int>{12, 14}));
  WaitCommitted(*node, Name(), topic, {{0, 16}});
}

}  // namespace
}  // namespace ferry::conformance
