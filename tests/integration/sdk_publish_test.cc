// The C++ SDK publisher against real ferryd nodes and a real Kafka broker:
// per-key order under concurrency, and nothing lost when a node is killed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "ferry/client/publisher.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/kafka_client.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::SharedBroker;

std::unique_ptr<client::Publisher> NewPublisher(std::vector<std::string> endpoints) {
  std::string error;
  auto publisher = client::Publisher::Builder()
                       .Endpoints(std::move(endpoints))
                       .RequestTimeout(std::chrono::seconds(5))
                       .DeliveryTimeout(std::chrono::seconds(60))
                       .Build(&error);
  EXPECT_NE(publisher, nullptr) << error;
  return publisher;
}

std::vector<int32_t> Partitions(int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(i);
  return out;
}

TEST(SdkPublish, PerKeyOrderHoldsAcrossConcurrentPublishers) {
  auto* broker = SharedBroker();
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->CreateTopic("sdk.order", 8).ok());
  auto node = FerrydProcess::Start(testing::MainClusterYaml(broker->bootstrap()));
  ASSERT_TRUE(node.ok()) << node.status();

  // 4 publishers, each owning 50 of the 200 keys: per key, one writer, so
  // "publish order" is well defined. 20k messages in all.
  constexpr int kPublishers = 4, kKeysEach = 50, kPerKey = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int p = 0; p < kPublishers; ++p) {
    threads.emplace_back([&, p] {
      auto publisher = NewPublisher({(*node)->grpc_address()});
      if (publisher == nullptr) return;
      std::vector<std::pair<std::string, std::future<client::PublishResult>>> results;
      for (int seq = 0; seq < kPerKey; ++seq) {
        for (int k = 0; k < kKeysEach; ++k) {
          client::Message m;
          m.key = absl::StrCat("key-", p * kKeysEach + k);
          m.value = std::to_string(seq);
          std::string key = m.key;
          results.emplace_back(key, publisher->Publish("sdk.order", std::move(m)));
        }
      }
      std::map<std::string, std::pair<int32_t, int64_t>> last;
      for (auto& [key, future] : results) {
        client::PublishResult r = future.get();
        if (!r.ok()) {
          ++failures;
          continue;
        }
        auto it = last.find(key);
        if (it != last.end()) {
          EXPECT_EQ(r.partition, it->second.first) << key;
          EXPECT_GT(r.offset, it->second.second) << key << " reordered";
        }
        last[key] = {r.partition, r.offset};
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);

  // What a plain consumer reads agrees: per key, values 0..24 in order.
  auto records = testing::ConsumeRecords(broker->bootstrap(), "sdk.order", Partitions(8),
                                         kPublishers * kKeysEach * kPerKey);
  ASSERT_TRUE(records.ok()) << records.status();
  std::map<std::string, int> next;
  for (const auto& r : *records) {
    EXPECT_EQ(r.value, std::to_string(next[r.key]++)) << r.key;
  }
}

TEST(SdkPublish, PublishManyLandsEveryMessageOnceInPerKeyOrderBesidePublish) {
  auto* broker = SharedBroker();
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->CreateTopic("sdk.many", 6).ok());
  auto node = FerrydProcess::Start(testing::MainClusterYaml(broker->bootstrap()));
  ASSERT_TRUE(node.ok()) << node.status();
  auto publisher = NewPublisher({(*node)->grpc_address()});
  ASSERT_NE(publisher, nullptr);

  // 40 calls of 700 messages (two requests each) over 100 keys, and a Publish
  // of one of those keys after each call: per key, values 0, 1, 2, ... in
  // publish order across both APIs.
  constexpr int kKeys = 100, kCalls = 40, kPerCall = 700;
  std::mt19937 random(42);
  std::map<std::string, int> next_value;
  std::vector<std::future<client::PublishManyResult>> calls;
  std::vector<std::future<client::PublishResult>> singles;
  for (int c = 0; c < kCalls; ++c) {
    std::vector<std::string> keys, values;
    for (int i = 0; i < kPerCall; ++i) {
      keys.push_back(absl::StrCat("key-", random() % kKeys));
      values.push_back(std::to_string(next_value[keys.back()]++));
    }
    std::vector<client::MessageView> views;
    for (int i = 0; i < kPerCall; ++i) {
      views.push_back(client::MessageView{.key = keys[i], .value = values[i]});
    }
    calls.push_back(publisher->PublishMany("sdk.many", views));
    client::Message single;
    single.key = absl::StrCat("key-", c % kKeys);
    single.value = std::to_string(next_value[single.key]++);
    singles.push_back(publisher->Publish("sdk.many", std::move(single)));
  }
  std::set<std::string> acknowledged_ids;
  for (auto& call : calls) {
    client::PublishManyResult result = call.get();
    EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.Get(0).error);
    for (std::size_t i = 0; i < result.size(); ++i) {
      acknowledged_ids.insert(std::string(result.id(i)));
    }
  }
  for (auto& single : singles) {
    client::PublishResult result = single.get();
    EXPECT_TRUE(result.ok()) << result.error;
    acknowledged_ids.insert(result.id);
  }
  constexpr int kTotal = kCalls * (kPerCall + 1);
  ASSERT_EQ(acknowledged_ids.size(), static_cast<std::size_t>(kTotal));

  auto everything = testing::ConsumeToEnd(broker->bootstrap(), "sdk.many", Partitions(6));
  ASSERT_TRUE(everything.ok()) << everything.status();
  EXPECT_EQ(everything->size(), static_cast<std::size_t>(kTotal)) << "each exactly once";
  std::map<std::string, int> expected;
  std::set<std::string> stored_ids;
  for (const auto& r : *everything) {
    EXPECT_EQ(r.value, std::to_string(expected[r.key]++)) << r.key;
    for (const auto& [k, v] : r.headers) {
      if (k == "ferry.id") stored_ids.insert(v);
    }
  }
  EXPECT_EQ(stored_ids, acknowledged_ids);
}

// A node that refuses a message: the failure names that node (Publish and
// PublishMany), so an operator knows which one to look at.
TEST(SdkPublish, ARefusedMessageNamesTheNodeThatRefusedIt) {
  auto* broker = SharedBroker();
  ASSERT_NE(broker, nullptr);
  auto node = FerrydProcess::Start(testing::MainClusterYaml(broker->bootstrap()));
  ASSERT_TRUE(node.ok()) << node.status();
  auto publisher = NewPublisher({(*node)->grpc_address()});
  ASSERT_NE(publisher, nullptr);

  constexpr int kInvalidArgument = 3;  // gRPC's code (the SDK's API has no gRPC types)
  const std::string invalid_topic = "no spaces allowed";
  client::PublishResult one =
      publisher->Publish(invalid_topic, client::Message{.value = "v"}).get();
  EXPECT_EQ(one.code, kInvalidArgument) << one.error;
  EXPECT_EQ(one.endpoint, (*node)->grpc_address());

  const std::vector<client::MessageView> views = {{.value = "a"}, {.value = "b"}};
  const client::PublishManyResult result =
      publisher->PublishMany(invalid_topic, views).get();
  ASSERT_EQ(result.failed, 2u);
  for (std::size_t i = 0; i < result.size(); ++i) {
    EXPECT_EQ(result.Get(i).code, kInvalidArgument);
    EXPECT_EQ(result.Get(i).endpoint, (*node)->grpc_address()) << i;
  }
}

TEST(SdkPublish, KillingANodeLosesNoAcknowledgedMessage) {
  auto* broker = SharedBroker();
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->CreateTopic("sdk.failover", 4).ok());
  auto first = FerrydProcess::Start(testing::MainClusterYaml(broker->bootstrap()));
  auto second = FerrydProcess::Start(testing::MainClusterYaml(broker->bootstrap()));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  auto publisher = NewPublisher({(*first)->grpc_address(), (*second)->grpc_address()});
  ASSERT_NE(publisher, nullptr);

  constexpr int kMessages = 50000;
  std::vector<std::future<client::PublishResult>> results;
  results.reserve(kMessages);
  for (int i = 0; i < kMessages; ++i) {
    client::Message m;
    m.key = absl::StrCat("k", i % 100);
    m.value = absl::StrCat("m", i);
    results.push_back(publisher->Publish("sdk.failover", std::move(m)));
    if (i == kMessages / 3) (*first)->process().Signal(SIGKILL);
  }
  std::set<std::string> acknowledged_ids;
  int failed = 0;
  for (auto& f : results) {
    client::PublishResult r = f.get();
    if (r.ok()) {
      acknowledged_ids.insert(r.id);
    } else {
      ++failed;
      ADD_FAILURE() << "message failed although a node was left: " << r.code << " "
                    << r.error;
      if (failed > 5) break;
    }
  }
  ASSERT_EQ(failed, 0);

  // Everything the topic holds: every acknowledged id, maybe duplicates (a
  // batch the killed node wrote but could not answer is sent again).
  auto everything =
      testing::ConsumeToEnd(broker->bootstrap(), "sdk.failover", Partitions(4));
  ASSERT_TRUE(everything.ok()) << everything.status();
  std::map<std::string, int> seen;
  for (const auto& r : *everything) {
    for (const auto& [k, v] : r.headers) {
      if (k == "ferry.id") ++seen[v];
    }
  }
  size_t missing = 0, duplicates = 0;
  for (const std::string& id : acknowledged_ids) {
    auto it = seen.find(id);
    if (it == seen.end()) {
      ++missing;
    } else if (it->second > 1) {
      duplicates += it->second - 1;
    }
  }
  EXPECT_EQ(missing, 0u) << "acknowledged messages missing from Kafka";
  std::cout << "[ failover ] " << acknowledged_ids.size() << " acknowledged, " << missing
            << " missing, " << duplicates << " duplicates\n";
}

}  // namespace
}  // namespace ferry
