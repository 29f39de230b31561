// Server-side filters through a real subscription on ferryd's embedded store
// (docs/filters.md): only matching messages cross the wire, the others are
// committed past, never block a key, and a filter that matches nothing reads
// a deep backlog to its end without waiting for credit.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "ferry/v1/publisher.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/subscriber_stream.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::MakeOpen;
using ::ferry::testing::SubscriberStream;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::OutgoingMessage Message(
    std::string key, std::string value,
    std::vector<std::pair<std::string, std::string>> headers = {}) {
  v1::OutgoingMessage m;
  m.set_key(std::move(key));
  m.set_value(std::move(value));
  for (auto& [name, v] : headers) {
    v1::Header& h = *m.add_headers();
    h.set_key(name);
    h.set_value(v);
  }
  return m;
}

class SubscribeFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto node = FerrydProcess::Start("subscribe:\n  commit_interval: 100ms\n");
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = *std::move(node);
    channel_ =
        grpc::CreateChannel(node_->grpc_address(), grpc::InsecureChannelCredentials());
  }

  void Publish(const std::string& topic,
               const std::vector<v1::OutgoingMessage>& messages) {
    auto publisher = v1::Publisher::NewStub(channel_);
    for (size_t at = 0; at < messages.size(); at += 1000) {
      v1::PublishRequest request;
      request.set_topic(topic);
      for (size_t i = at; i < std::min(messages.size(), at + 1000); ++i) {
        *request.add_messages() = messages[i];
      }
      v1::PublishResponse response;
      grpc::ClientContext context;
      ASSERT_TRUE(publisher->Publish(&context, request, &response).ok());
      for (const auto& result : response.results()) {
        ASSERT_EQ(result.status().code(), 0) << result.status().message();
      }
    }
  }

  v1::SubscriptionOpen Open(const std::string& group, const std::string& topic,
                            const std::string& filter,
                            v1::Ordering ordering = v1::ORDERING_NONE) {
    v1::SubscriptionOpen open = MakeOpen(group, {topic}, ordering);
    open.set_filter(filter);
    return open;
  }

  // Values of the messages `open` delivers: `expected` of them, plus any that
  // follow within 300 ms.
  std::vector<std::string> Consume(const v1::SubscriptionOpen& open, size_t expected) {
    SubscriberStream stream(node_->grpc_address(), open);
    EXPECT_TRUE(stream.WaitOpened().has_value()) << stream.WaitEnded().error_message();
    std::vector<std::string> values;
    for (const auto& m : stream.Take(expected, absl::Seconds(10))) {
      values.push_back(m.value());
    }
    while (auto extra = stream.Next(absl::Milliseconds(300))) {
      values.push_back(extra->value());
    }
    return values;
  }

  absl::StatusOr<v1::Group> Describe(const std::string& group) {
    auto admin = v1::Admin::NewStub(channel_);
    v1::DescribeGroupRequest request;
    request.set_group(group);
    v1::Group out;
    grpc::ClientContext context;
    grpc::Status status = admin->DescribeGroup(&context, request, &out);
    if (!status.ok()) return absl::UnknownError(status.error_message());
    return out;
  }

  std::unique_ptr<FerrydProcess> node_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(SubscribeFilterTest, KeyHeaderAndJsonFiltersDeliverOnlyMatchingMessages) {
  std::vector<v1::OutgoingMessage> messages;
  for (int i = 0; i < 12; ++i) {
    messages.push_back(Message(absl::StrCat("user-", i % 3),
                               absl::StrCat(R"({"n": )", i, R"(, "tier": ")",
                                            i % 4 == 0 ? "gold" : "silver", R"("})"),
                               {{"type", i % 2 == 0 ? "order" : "refund"}}));
  }
  Publish("filtered", messages);
  auto n_of = [](const std::vector<std::string>& values) {
    std::vector<int> n;
    for (const std::string& v : values) n.push_back(std::stoi(v.substr(6)));
    return n;
  };
  EXPECT_THAT(n_of(Consume(Open("by-key", "filtered", "key = 'user-1'"), 4)),
              ElementsAre(1, 4, 7, 10));
  EXPECT_THAT(n_of(Consume(Open("by-header", "filtered",
                                "headers.type = 'refund' AND NOT key IN ('user-0')"),
                           4)),
              ElementsAre(1, 5, 7, 11));
  EXPECT_THAT(
      n_of(Consume(Open("by-json", "filtered", "json.tier = 'gold' AND json.n >= 4"), 2)),
      ElementsAre(4, 8));
}

TEST_F(SubscribeFilterTest, MalformedFilterFailsTheOpenNamingItsColumn) {
  SubscriberStream stream(node_->grpc_address(),
                          Open("bad", "filtered", "key IN (\"a\", \"b\""));
  grpc::Status status = stream.WaitEnded();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "open.filter: column 17: expected ',' or ')' in IN list, got end of input");

  auto admin = v1::Admin::NewStub(channel_);
  v1::SetGroupFilterRequest request;
  request.set_group("bad");
  request.set_filter("json.a == 1");
  v1::SetGroupFilterResponse response;
  grpc::ClientContext context;
  status = admin->SetGroupFilter(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "filter: column 8: unknown operator '==' (use =)");
}

TEST_F(SubscribeFilterTest, FilterMatchingNothingCommitsToTheEndOfADeepBacklog) {
  constexpr int kBacklog = 20000;
  std::vector<v1::OutgoingMessage> messages;
  for (int i = 0; i < kBacklog; ++i) {
    messages.push_back(Message(absl::StrCat("k", i), absl::StrCat("v", i)));
  }
  Publish("backlog", messages);

  v1::SubscriptionOpen open = Open("sparse", "backlog", "key = 'absent'");
  open.mutable_flow()->set_max_outstanding_messages(1);  // credit is not what limits
  SubscriberStream stream(node_->grpc_address(), open);
  ASSERT_TRUE(stream.WaitOpened().has_value()) << stream.WaitEnded().error_message();
  int64_t committed = 0, high = -1;
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (absl::Now() < until && committed != high) {
    absl::SleepFor(absl::Milliseconds(200));
    auto group = Describe("sparse");
    ASSERT_TRUE(group.ok()) << group.status();
    committed = 0, high = 0;
    for (const auto& p : group->partitions()) {
      committed += p.committed_offset();
      high += p.high_watermark();
    }
  }
  EXPECT_EQ(high, kBacklog);
  EXPECT_EQ(committed, kBacklog);
  EXPECT_FALSE(stream.Next(absl::Milliseconds(200)).has_value());
  EXPECT_THAT(node_->HttpGet("/metrics").second,
              HasSubstr(absl::StrCat(
                  "ferry_subscribe_filtered_total{group=\"sparse\",topic=\"backlog\"} ",
                  kBacklog)));
}

TEST_F(SubscribeFilterTest, KeyOrderHoldsWhenTheFilterSkipsEveryOtherMessage) {
  std::vector<v1::OutgoingMessage> messages;
  for (int i = 0; i < 100; ++i) {
    messages.push_back(Message("user-1", absl::StrCat(i), {{"keep", i % 2 ? "y" : "n"}}));
  }
  Publish("ordered", messages);
  SubscriberStream stream(
      node_->grpc_address(),
      Open("ordered", "ordered", "headers.keep = 'y'", v1::ORDERING_KEY));
  ASSERT_TRUE(stream.WaitOpened().has_value()) << stream.WaitEnded().error_message();
  std::vector<int> received;
  while (auto m = stream.Next(absl::Seconds(5))) {
    received.push_back(std::stoi(m->value()));
    EXPECT_FALSE(stream.Next(absl::Milliseconds(20)).has_value())
        << "a second message of the key before the first was acked";
    stream.Ack({m->receipt()});
    if (received.size() == 50) break;
  }
  std::vector<int> odd;
  for (int i = 1; i < 100; i += 2) odd.push_back(i);
  EXPECT_EQ(received, odd);
}

TEST_F(SubscribeFilterTest, CliConsumePrintsOnlyMatchingMessages) {
  Publish("cli",
          {Message("a", "first"), Message("b", R"({"x": 1})"), Message("a", "third")});
  auto result = testing::RunFerryCli(
      {"--server", node_->grpc_address(), "consume", "--group", "cli", "--topic", "cli",
       "--from", "earliest", "--count", "2", "--filter", "key = 'a'"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->err;
  EXPECT_EQ(result->out, "first\nthird\n");

  result = testing::RunFerryCli({"--server", node_->grpc_address(), "consume", "--group",
                                 "cli2", "--topic", "cli", "--filter", "key ="});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_THAT(result->err, HasSubstr("open.filter: column 6"));
}

}  // namespace
}  // namespace ferry
