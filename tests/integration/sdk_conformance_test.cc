// The C++ SDK's runner of the shared SDK conformance scenarios
// (sdk/conformance/*.yaml, schema and runner steps in its README), against
// real ferryd nodes on every backend: Kafka and the embedded store.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <future>
#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "ferry/client/publisher.h"
#include "ferry/client/subscriber.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;

struct Nack {
  int message = 0;
  std::set<int> attempts = {};
  absl::Duration delay = absl::ZeroDuration();
};

struct Scenario {
  std::string name;
  int nodes = 1;
  bool create_topic = true;
  std::optional<std::string> topic_name;
  int partitions = 3;
  int messages = 0;
  int keys = 0;
  bool publish_to_all = true;
  bool subscribe = false;
  std::string ordering = "none";
  absl::Duration ack_deadline = absl::Seconds(10);
  int max_outstanding = 1000;
  bool subscribe_to_all = true;
  std::vector<Nack> nacks;
  absl::Duration timeout = absl::Seconds(60);
  absl::Duration linger = absl::Seconds(1);
  std::string publish_error;
  bool all_acked_once = false;
  bool per_key_order = false;
  bool per_partition_order = false;
  std::map<int, int> deliveries;
};

absl::Duration Duration(const YAML::Node& node, absl::Duration fallback) {
  if (!node) return fallback;
  absl::Duration d;
  if (!absl::ParseDuration(node.as<std::string>(), &d)) {
    ADD_FAILURE() << "bad duration " << node.as<std::string>();
    return fallback;
  }
  return d;
}

Scenario Load(const std::filesystem::path& path) {
  YAML::Node y = YAML::LoadFile(path.string());
  Scenario s;
  s.name = y["name"].as<std::string>();
  if (y["nodes"]) s.nodes = y["nodes"].as<int>();
  if (auto t = y["topic"]) {
    if (t["create"]) s.create_topic = t["create"].as<bool>();
    if (t["name"] && !t["name"].IsNull()) s.topic_name = t["name"].as<std::string>();
    if (t["partitions"]) s.partitions = t["partitions"].as<int>();
  }
  auto p = y["publish"];
  s.messages = p["messages"].as<int>();
  if (p["keys"]) s.keys = p["keys"].as<int>();
  if (p["endpoints"]) s.publish_to_all = p["endpoints"].as<std::string>() == "all";
  if (auto sub = y["subscribe"]) {
    s.subscribe = true;
    if (sub["ordering"]) s.ordering = sub["ordering"].as<std::string>();
    s.ack_deadline = Duration(sub["ack_deadline"], s.ack_deadline);
    if (sub["max_outstanding_messages"]) {
      s.max_outstanding = sub["max_outstanding_messages"].as<int>();
    }
    if (sub["endpoints"])
      s.subscribe_to_all = sub["endpoints"].as<std::string>() == "all";
    for (const auto& n : sub["nack"]) {
      Nack nack{.message = n["message"].as<int>()};
      for (const auto& a : n["attempts"]) nack.attempts.insert(a.as<int>());
      nack.delay = Duration(n["delay"], absl::ZeroDuration());
      s.nacks.push_back(nack);
    }
    s.timeout = Duration(sub["timeout"], s.timeout);
    s.linger = Duration(sub["linger"], s.linger);
  }
  if (auto e = y["expect"]) {
    if (e["publish_error"] && !e["publish_error"].IsNull()) {
      s.publish_error = e["publish_error"].as<std::string>();
    }
    if (e["all_acked_once"]) s.all_acked_once = e["all_acked_once"].as<bool>();
    if (e["per_key_order"]) s.per_key_order = e["per_key_order"].as<bool>();
    if (e["per_partition_order"]) {
      s.per_partition_order = e["per_partition_order"].as<bool>();
    }
    for (const auto& d : e["deliveries"]) {
      s.deliveries[d.first.as<int>()] = d.second.as<int>();
    }
  }
  return s;
}

int CodeNumber(const std::string& name) {
  static const std::map<std::string, int> codes = {
      {"INVALID_ARGUMENT", 3},   {"DEADLINE_EXCEEDED", 4},   {"NOT_FOUND", 5},
      {"RESOURCE_EXHAUSTED", 8}, {"FAILED_PRECONDITION", 9}, {"UNAVAILABLE", 14}};
  auto it = codes.find(name);
  return it == codes.end() ? -1 : it->second;
}

enum class Backend { kKafka, kEmbedded };

struct Param {
  std::filesystem::path file;
  Backend backend;
};

std::vector<Param> Params() {
  std::vector<std::filesystem::path> files;
  for (const auto& entry :
       std::filesystem::directory_iterator(FERRY_SOURCE_DIR "/sdk/conformance")) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<Param> params;
  for (const auto& f : files) {
    params.push_back({f, Backend::kKafka});
    params.push_back({f, Backend::kEmbedded});
  }
  return params;
}

std::string ParamName(const ::testing::TestParamInfo<Param>& info) {
  std::string name = info.param.file.stem().string();
  std::replace(name.begin(), name.end(), '-', '_');
  return name + (info.param.backend == Backend::kKafka ? "_kafka" : "_embedded");
}

class SdkConformanceTest : public ::testing::TestWithParam<Param> {
 protected:
  // One ferryd node on the parameter's backend.
  std::unique_ptr<FerrydProcess> StartNode() {
    std::string yaml;
    if (GetParam().backend == Backend::kKafka) {
      testing::KafkaBroker* broker = testing::SharedBroker();
      if (broker == nullptr) return nullptr;
      yaml = testing::MainClusterYaml(broker->bootstrap());
    } else {
      const std::string dir = testing::WriteTempFile("embedded-store", "") + ".d";
      yaml = absl::StrCat("clusters:\n  main: { type: embedded, path: \"", dir, "\" }\n");
    }
    auto node = FerrydProcess::Start(yaml + "subscribe:\n  commit_interval: 100ms\n");
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? *std::move(node) : nullptr;
  }

  static void CreateTopic(const FerrydProcess& node, const std::string& topic,
                          int partitions) {
    auto admin = v1::Admin::NewStub(
        grpc::CreateChannel(node.grpc_address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::CreateTopicRequest request;
    request.set_name(topic);
    request.set_partitions(partitions);
    v1::Topic created;
    grpc::Status status = admin->CreateTopic(&context, request, &created);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
};

TEST_P(SdkConformanceTest, Scenario) {
  const Scenario s = Load(GetParam().file);
  if (GetParam().backend == Backend::kEmbedded && s.nodes > 1) {
    GTEST_SKIP() << "known difference: an embedded store belongs to one node; "
                    "several nodes need a shared broker";
  }
  std::vector<std::unique_ptr<FerrydProcess>> nodes;
  for (int i = 0; i < s.nodes; ++i) {
    nodes.push_back(StartNode());
    ASSERT_NE(nodes.back(), nullptr);
  }
  auto endpoints = [&](bool all) {
    std::vector<std::string> out;
    for (const auto& n : nodes) {
      out.push_back(n->grpc_address());
      if (!all) break;
    }
    return out;
  };
  std::mt19937_64 random(std::random_device{}());
  const std::string topic = s.topic_name.value_or(
      absl::StrCat("conformance.", s.name, ".", std::to_string(random() % 1000000)));
  if (s.create_topic) {
    ASSERT_NO_FATAL_FAILURE(CreateTopic(*nodes[0], topic, s.partitions));
  }

  // Publish every message and wait for every result.
  std::string error;
  auto publisher = client::Publisher::Builder()
                       .Endpoints(endpoints(s.publish_to_all))
                       .DeliveryTimeout(std::chrono::seconds(30))
                       .Build(&error);
  ASSERT_NE(publisher, nullptr) << error;
  std::vector<std::future<client::PublishResult>> results;
  for (int i = 0; i < s.messages; ++i) {
    client::Message m{.key = s.keys > 0 ? absl::StrCat("k-", i % s.keys) : "",
                      .value = absl::StrCat("m-", i),
                      .headers = {{.key = "n", .value = std::to_string(i)}}};
    results.push_back(publisher->Publish(topic, std::move(m)));
  }
  for (int i = 0; i < s.messages; ++i) {
    client::PublishResult r = results[i].get();
    if (!s.publish_error.empty()) {
      EXPECT_EQ(r.code, CodeNumber(s.publish_error))
          << "message " << i << ": " << r.error;
    } else {
      ASSERT_TRUE(r.ok()) << "message " << i << ": " << r.error;
    }
  }
  if (!s.publish_error.empty() || !s.subscribe) return;

  // Subscribe with a fresh group; nack what the scenario says, ack the rest.
  const client::Ordering ordering = s.ordering == "key" ? client::Ordering::kKey
                                    : s.ordering == "partition"
                                        ? client::Ordering::kPartition
                                        : client::Ordering::kNone;
  auto subscriber = client::Subscriber::Builder()
                        .Endpoints(endpoints(s.subscribe_to_all))
                        .Group(absl::StrCat("conformance-", random()))
                        .Topics({topic})
                        .Ordering(ordering)
                        .AckDeadline(absl::ToChronoMilliseconds(s.ack_deadline))
                        .FlowControl(s.max_outstanding, 64 << 20)
                        .StartAt(client::StartPosition::Earliest())
                        .AckBatch(100, std::chrono::milliseconds(5))
                        .Build(&error);
  ASSERT_NE(subscriber, nullptr) << error;
  struct Delivery {
    int message;
    int attempt;
    std::string key;
    int32_t partition;
    int64_t offset;
    bool acked;
  };
  std::vector<Delivery> deliveries;
  std::set<int> acked;
  std::map<int, int> delivery_count;
  const absl::Time until = absl::Now() + s.timeout;
  absl::Time last_ack = absl::InfiniteFuture();
  while (absl::Now() < until) {
    if (static_cast<int>(acked.size()) == s.messages &&
        absl::Now() - last_ack >= s.linger) {
      break;
    }
    auto pulled = subscriber->Next(std::chrono::milliseconds(100));
    if (!pulled) {
      ASSERT_FALSE(subscriber->Failure().has_value()) << subscriber->Failure()->error;
      continue;
    }
    const client::ReceivedMessage& m = pulled->message();
    const int n = std::stoi(m.value.substr(2));
    const int attempt = ++delivery_count[n];
    bool nack = false;
    absl::Duration delay;
    for (const Nack& x : s.nacks) {
      if (x.message == n && x.attempts.contains(attempt)) {
        nack = true;
        delay = x.delay;
      }
    }
    deliveries.push_back({n, attempt, m.key, m.partition, m.offset, !nack});
    if (nack) {
      pulled->Nack(absl::ToChronoMilliseconds(delay));
    } else {
      pulled->Ack();
      acked.insert(n);
      last_ack = absl::Now();
    }
  }
  subscriber->Close(std::chrono::seconds(10));
  ASSERT_EQ(static_cast<int>(acked.size()), s.messages) << "not every message was acked";

  if (s.all_acked_once) {
    std::map<int, int> acks;
    for (const auto& d : deliveries) acks[d.message] += d.acked ? 1 : 0;
    for (const auto& [n, count] : acks) EXPECT_EQ(count, 1) << "message " << n;
  }
  // Per key in publish order (message number), per partition in offset order
  // (the publisher orders only each key, so a partition's offsets may
  // interleave its keys differently from the message numbers): the acked
  // sequence follows that order, and no delivery goes back before the last
  // acked one.
  auto check_order = [&](auto group_of, auto position_of) {
    std::map<std::string, int64_t> last_acked;
    for (const auto& d : deliveries) {
      const std::string group = group_of(d);
      if (group.empty()) continue;
      auto it = last_acked.find(group);
      if (it != last_acked.end()) {
        EXPECT_GT(position_of(d), it->second) << "group " << group << " went back";
      }
      if (d.acked) last_acked[group] = position_of(d);
    }
  };
  if (s.per_key_order) {
    check_order([](const Delivery& d) { return d.key; },
                [](const Delivery& d) { return int64_t{d.message}; });
  }
  if (s.per_partition_order) {
    check_order([](const Delivery& d) { return std::to_string(d.partition); },
                [](const Delivery& d) { return d.offset; });
  }
  for (const auto& [n, expected] : s.deliveries) {
    EXPECT_EQ(delivery_count[n], expected) << "deliveries of message " << n;
  }
}

INSTANTIATE_TEST_SUITE_P(Scenarios, SdkConformanceTest, ::testing::ValuesIn(Params()),
                         ParamName);

}  // namespace
}  // namespace ferry
