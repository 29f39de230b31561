// Publish semantics on every backend: what is acknowledged reads back byte for
// byte, keys keep their partition and order, a bad message fails alone, bad
// input gets the same statuses, topics are administered through Ferry.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fmt/format.h"
#include "testing/java_partitioner.h"
#include "tests/conformance/conformance_test.h"

namespace ferry::conformance {
namespace {

using ::ferry::testing::JavaPartition;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::pair<std::string, std::string>> Headers(const v1::ReceivedMessage& m) {
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& h : m.headers()) headers.emplace_back(h.key(), h.value());
  return headers;
}

TEST_P(Conformance, PublishRoundTripIsByteForByte) {
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 3);

  v1::PublishRequest request;
  request.set_topic(topic);
  const std::string key("k\0\xff", 3);
  const std::string value("v\0\x01\x80", 4);
  v1::OutgoingMessage* m = AddMessage(request, key, value);
  m->set_id("id-1");
  m->mutable_timestamp()->set_seconds(1700000000);
  m->mutable_timestamp()->set_nanos(123'000'000);
  auto* h = m->add_headers();
  h->set_key("trace");
  h->set_value(std::string("\0x", 2));
  h = m->add_headers();
  h->set_key("trace");  // repeated keys keep their order
  h->set_value("second");
  AddMessage(request, "", "");  // no key, empty value, node's clock
  const absl::Time before = absl::Now();
  v1::PublishResponse response = PublishOk(*node, request);
  ASSERT_EQ(response.results_size(), 2);
  EXPECT_EQ(response.results(0).id(), "id-1");
  EXPECT_EQ(response.results(0).cluster(), "main");
  EXPECT_EQ(response.results(0).partition(), JavaPartition(key, 3));

  std::vector<v1::ReceivedMessage> got = ReadBack(*node, topic, Name(), 2);
  ASSERT_EQ(got.size(), 2u);
  const v1::ReceivedMessage* keyed = nullptr;
  const v1::ReceivedMessage* keyless = nullptr;
  for (const auto& r : got) (r.key().empty() ? keyless : keyed) = &r;
  ASSERT_TRUE(keyed != nullptr && keyless != nullptr);
  EXPECT_EQ(keyed->topic(), topic);
  EXPECT_EQ(keyed->cluster(), "main");
  EXPECT_EQ(keyed->key(), key);
  EXPECT_EQ(keyed->value(), value);
  EXPECT_EQ(keyed->id(), "id-1");
  EXPECT_THAT(Headers(*keyed),
              ElementsAre(std::pair{"trace", std::string("\0x", 2)},
                          std::pair{"trace", "second"}, std::pair{"ferry.id", "id-1"}));
  EXPECT_EQ(keyed->publish_time().seconds(), 1700000000);
  EXPECT_EQ(keyed->publish_time().nanos(), 123'000'000);
  EXPECT_EQ(keyed->partition(), response.results(0).partition());
  EXPECT_EQ(keyed->offset(), response.results(0).offset());
  EXPECT_EQ(keyed->delivery_attempt(), 1);

  EXPECT_EQ(keyless->value(), "");
  EXPECT_TRUE(Headers(*keyless).empty()) << ::testing::PrintToString(Headers(*keyless));
  EXPECT_EQ(keyless->partition(), response.results(1).partition());
  EXPECT_EQ(keyless->offset(), response.results(1).offset());
  const int64_t stamped = keyless->publish_time().seconds();
  EXPECT_GE(stamped, absl::ToUnixSeconds(before) - 1) << "node's clock expected";
  EXPECT_LE(stamped, absl::ToUnixSeconds(absl::Now()) + 1) << "node's clock expected";
}

TEST_P(Conformance, PublishResultCarriesTheRecordTimestamp) {
  REQUIRE_CAPABILITY(Capability::kResultTimestamp);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 1);
  v1::PublishRequest request;
  request.set_topic(topic);
  v1::OutgoingMessage* m = AddMessage(request, "k", "stamped");
  m->mutable_timestamp()->set_seconds(1700000000);
  m->mutable_timestamp()->set_nanos(123'000'000);
  AddMessage(request, "k", "node clock");
  const absl::Time before = absl::Now();
  v1::PublishResponse response = PublishOk(*node, request);
  ASSERT_EQ(response.results_size(), 2);
  EXPECT_EQ(response.results(0).timestamp().seconds(), 1700000000);
  EXPECT_EQ(response.results(0).timestamp().nanos(), 123'000'000);
  const int64_t stamped = response.results(1).timestamp().seconds();
  EXPECT_GE(stamped, absl::ToUnixSeconds(before) - 1);
  EXPECT_LE(stamped, absl::ToUnixSeconds(absl::Now()) + 1);
}

TEST_P(Conformance, SameKeyKeepsItsPartitionAndPublishOrder) {
  constexpr int kPartitions = 4, kKeys = 12, kBatches = 3, kPerBatch = 60;
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, kPartitions);

  std::map<std::string, std::vector<std::string>> published;  // key -> values
  std::map<std::string, int32_t> partition_of;
  std::map<std::string, int64_t> last_offset;
  for (int b = 0; b < kBatches; ++b) {
    v1::PublishRequest request;
    request.set_topic(topic);
    for (int i = 0; i < kPerBatch; ++i) {
      const std::string key = fmt::format("key-{}", i % kKeys);
      AddMessage(request, key, fmt::format("{}/{}", b, i));
    }
    v1::PublishResponse response = PublishOk(*node, request);
    ASSERT_EQ(response.results_size(), kPerBatch);
    for (int i = 0; i < kPerBatch; ++i) {
      const std::string& key = request.messages(i).key();
      const auto& r = response.results(i);
      published[key].push_back(request.messages(i).value());
      EXPECT_EQ(r.partition(), JavaPartition(key, kPartitions)) << key;
      auto [it, fresh] = partition_of.emplace(key, r.partition());
      EXPECT_EQ(it->second, r.partition()) << key << " moved partition";
      EXPECT_GT(r.offset(), fresh ? -1 : last_offset[key]) << key << " out of order";
      last_offset[key] = r.offset();
    }
  }

  // Read back through Ferry: per key, the values come in publish order.
  std::vector<v1::ReceivedMessage> got =
      ReadBack(*node, topic, Name(), kBatches * kPerBatch);
  std::sort(got.begin(), got.end(), [](const auto& a, const auto& b) {
    return std::pair(a.partition(), a.offset()) < std::pair(b.partition(), b.offset());
  });
  std::map<std::string, std::vector<std::string>> read;
  for (const auto& m : got) {
    read[m.key()].push_back(m.value());
    EXPECT_EQ(m.partition(), partition_of[m.key()]) << m.key();
  }
  EXPECT_EQ(read, published);
}

TEST_P(Conformance, OversizeMessageFailsAloneInItsBatch) {
  auto node = Node({.publish = "  max_message_bytes: 1024\n"});
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 1);
  v1::PublishRequest request;
  request.set_topic(topic);
  AddMessage(request, "", "first");
  AddMessage(request, "", std::string(2000, 'x'));
  AddMessage(request, "", "last");
  v1::PublishResponse response;
  grpc::Status status = Publish(*node, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.results_size(), 3);
  EXPECT_EQ(response.results(0).status().code(), 0) << response.results(0).DebugString();
  EXPECT_EQ(response.results(1).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(response.results(1).status().message(),
              HasSubstr("message of 2000 bytes exceeds publish.max_message_bytes 1024"));
  EXPECT_FALSE(response.results(1).status().retryable());
  EXPECT_EQ(response.results(2).status().code(), 0) << response.results(2).DebugString();

  // Exactly the two good messages are stored, in order.
  std::vector<v1::ReceivedMessage> got = ReadBack(*node, topic, Name(), 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].value(), "first");
  EXPECT_EQ(got[1].value(), "last");
  EXPECT_EQ(got[1].offset(), got[0].offset() + 1);
}

TEST_P(Conformance, BadInputGetsTheSameStatusesOnEveryBackend) {
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const std::string topic = Topic(*node, 1);
  struct Case {
    std::string name;
    std::string topic;
    int messages;
    grpc::StatusCode code;
    std::string message;
  };
  const Case cases[] = {
      {"empty batch", topic, 0, grpc::StatusCode::INVALID_ARGUMENT,
       "batch has no messages"},
      {"no topic", "", 1, grpc::StatusCode::INVALID_ARGUMENT, "topic name is empty"},
      {"bad topic name", "a/b", 1, grpc::StatusCode::INVALID_ARGUMENT,
       "character '/' at position 1"},
  };
  for (const Case& c : cases) {
    v1::PublishRequest request;
    request.set_topic(c.topic);
    for (int i = 0; i < c.messages; ++i) AddMessage(request, "", "x");
    v1::PublishResponse response;
    grpc::Status status = Publish(*node, request, &response);
    EXPECT_EQ(status.error_code(), c.code) << c.name << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.message)) << c.name;
  }

  // Nothing of the rejected batches reached the topic: a good message
  // published afterwards is its first.
  v1::PublishRequest good;
  good.set_topic(topic);
  AddMessage(good, "", "good");
  PublishOk(*node, good);
  std::vector<v1::ReceivedMessage> got = ReadBack(*node, topic, Name(), 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value(), "good");
  EXPECT_EQ(got[0].offset(), 0);
}

TEST_P(Conformance, UnknownTopicIsNotFoundForPublishAndSubscribe) {
  REQUIRE_CAPABILITY(Capability::kUnknownTopicNotFound);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  // NOT_FOUND for the message, not retryable.
  v1::PublishRequest unknown;
  unknown.set_topic(Name() + ".never-created");
  AddMessage(unknown, "", "x");
  v1::PublishResponse response;
  grpc::Status status = Publish(*node, unknown, &response);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).status().code(), grpc::StatusCode::NOT_FOUND)
      << response.results(0).status().message();
  EXPECT_FALSE(response.results(0).status().retryable());

  // Subscribing to an unknown topic ends the stream NOT_FOUND.
  testing::SubscriberStream stream(node->grpc_address(),
                                   testing::MakeOpen(Name(), {unknown.topic()}));
  grpc::Status ended = stream.WaitEnded();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::NOT_FOUND) << ended.error_message();
  EXPECT_THAT(ended.error_message(), HasSubstr(unknown.topic()));
}

TEST_P(Conformance, TopicsAreAdministeredThroughFerry) {
  REQUIRE_CAPABILITY(Capability::kAdminCreateTopic);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  auto admin = Admin(*node);
  const std::string topic = Topic(*node, 3);

  v1::DescribeTopicRequest describe;
  describe.set_name(topic);
  v1::Topic described;
  grpc::ClientContext describe_context;
  grpc::Status status =
      admin->DescribeTopic(WithDeadline(describe_context), describe, &described);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(described.cluster(), "main");
  ASSERT_EQ(described.partitions_size(), 3);
  for (const auto& p : described.partitions()) {
    EXPECT_EQ(p.low_watermark(), 0);
    EXPECT_EQ(p.high_watermark(), 0);
  }

  v1::CreateTopicRequest again;
  again.set_name(topic);
  again.set_partitions(3);
  v1::Topic ignored;
  grpc::ClientContext again_context;
  status = admin->CreateTopic(WithDeadline(again_context), again, &ignored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS)
      << status.error_message();

  v1::CreateTopicRequest bad;
  bad.set_name("bad name");
  bad.set_partitions(1);
  grpc::ClientContext bad_context;
  status = admin->CreateTopic(WithDeadline(bad_context), bad, &ignored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << status.error_message();

  describe.set_name(Name() + ".missing");
  grpc::ClientContext missing_context;
  status = admin->DescribeTopic(WithDeadline(missing_context), describe, &described);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
}

// PublishStream's ordering contract (the PublishStream comment in
// proto/ferry/v1/publisher.proto): a stream's batches are written in the order
// they were sent, so each key keeps its order across pipelined batches, also
// while the first batches of a topic wait for its route to create it.
TEST_P(Conformance, PublishStreamKeepsEachKeysOrderAcrossPipelinedBatches) {
  REQUIRE_CAPABILITY(Capability::kAdminCreateTopic);  // the route creates a topic
  const std::string created = Name() + ".auto";
  auto node = Node({.routes = fmt::format("  - {{ topic: \"{}\", write: [main], "
                                          "auto_create_topics: true }}\n"
                                          "  - {{ topic: \"*\", write: [main] }}\n",
                                          created)});
  ASSERT_NE(node, nullptr);
  const std::string existing = Topic(*node, 3);
  constexpr int kBatches = 250;  // per topic
  constexpr int kPerBatch = 40;
  constexpr int kKeys = 4;
  const std::string* topics[] = {&created, &existing};

  // Given one stream with batches of the same few keys for a topic its route
  // creates and for one that exists, written back to back,
  auto stub = v1::Publisher::NewStub(
      grpc::CreateChannel(node->grpc_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  auto stream = stub->PublishStream(WithDeadline(context, absl::Seconds(60)));
  // Answers are read while writing: the node stops reading a stream whose
  // answers pile up.
  std::vector<v1::PublishResponse> answers;
  std::thread reader([&] {
    v1::PublishResponse response;
    while (stream->Read(&response)) answers.push_back(response);
  });
  bool written = true;
  for (int b = 0; b < kBatches && written; ++b) {
    for (int t = 0; t < 2 && written; ++t) {
      v1::PublishRequest request;
      request.set_request_id(b * 2 + t);
      request.set_topic(*topics[t]);
      for (int i = 0; i < kPerBatch; ++i) {
        // The value is the message's place in its topic's sequence.
        AddMessage(request, fmt::format("k{}", i % kKeys),
                   std::to_string(b * kPerBatch + i));
      }
      written = stream->Write(request);
    }
  }
  EXPECT_TRUE(written) << "the stream broke while writing";
  stream->WritesDone();
  reader.join();
  grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  ASSERT_EQ(answers.size(), 2u * kBatches);
  int failed = 0;
  for (const auto& answer : answers) {
    EXPECT_EQ(answer.error().code(), 0) << answer.error().message();
    for (const auto& result : answer.results()) {
      if (result.status().code() != 0 && ++failed <= 3) {
        ADD_FAILURE() << "batch " << answer.request_id() << ": "
                      << result.status().message();
      }
    }
  }
  ASSERT_EQ(failed, 0);

  // then each topic holds every key's messages in the order they were sent.
  for (const std::string* topic : topics) {
    const size_t count = static_cast<size_t>(kBatches) * kPerBatch;
    v1::SubscriptionOpen open = testing::MakeOpen(Name() + ".check", {*topic});
    open.mutable_flow()->set_max_outstanding_messages(static_cast<int64_t>(count));
    testing::SubscriberStream subscriber(node->grpc_address(), open);
    std::vector<v1::ReceivedMessage> got = subscriber.Take(count, kWait);
    ASSERT_EQ(got.size(), count) << *topic << "\n" << LogTail(*node);
    std::map<std::string, std::vector<std::pair<int64_t, int>>> by_key;  // offset, seq
    for (const auto& m : got)
      by_key[m.key()].emplace_back(m.offset(), std::stoi(m.value()));
    ASSERT_EQ(by_key.size(), static_cast<size_t>(kKeys));
    for (auto& [key, written_as] : by_key) {
      std::sort(written_as.begin(), written_as.end());
      for (size_t i = 1; i < written_as.size(); ++i) {
        ASSERT_LT(written_as[i - 1].second, written_as[i].second)
            << *topic << " key " << key << ": message " << written_as[i].second
            << " (batch " << written_as[i].second / kPerBatch << ") at offset "
            << written_as[i].first << " is behind message " << written_as[i - 1].second
            << " (batch " << written_as[i - 1].second / kPerBatch << ") at offset "
            << written_as[i - 1].first;
      }
    }
    subscriber.Ack(Receipts(got));
    subscriber.Sync(absl::Seconds(10));
    subscriber.Close();
  }
}

}  // namespace
}  // namespace ferry::conformance
