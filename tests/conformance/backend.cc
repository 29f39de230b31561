#include "tests/conformance/backend.h"

#include <stdlib.h>

#include <filesystem>
#include <system_error>

#include "fmt/format.h"
#include "testing/kafka_broker.h"
#include "testing/mock_cluster.h"

namespace ferry::conformance {

std::string_view BackendName(BackendKind kind) {
  switch (kind) {
    case BackendKind::kKafka:
      return "Kafka";
    case BackendKind::kEmbedded:
      return "Embedded";
    case BackendKind::kKafkaMock:
      return "KafkaMock";
  }
  return "Unknown";
}

absl::Status Backend::ProvisionTopic(const std::string& topic, int) {
  return absl::UnimplementedError(fmt::format(
      "{}: topics are created through Admin.CreateTopic, not {}", name(), topic));
}

void Backend::SetBrokerDown(bool) {}

namespace {

Support Yes() { return {.supported = true}; }
Support No(std::string reason) {
  return {.supported = false, .reason = std::move(reason)};
}

// The binary's shared single-node KRaft broker (testing/kafka_broker.h).
class KafkaBackend : public Backend {
 public:
  BackendKind kind() const override { return BackendKind::kKafka; }
  absl::Status SetUp() override {
    broker_ = testing::SharedBroker();
    if (broker_ == nullptr) return absl::UnavailableError("no shared Kafka broker");
    return absl::OkStatus();
  }
  std::string ClustersYaml() const override {
    return fmt::format("clusters:\n  main: {{ type: kafka, bootstrap: \"{}\" }}\n",
                       broker_->bootstrap());
  }
  Support Supports(Capability capability) const override {
    if (capability == Capability::kBrokerFaults) {
      return No(
          "the shared broker serves every test of the binary; broker loss on real Kafka "
          "is covered by PublishBrokerDown in tests/integration/publish_test.cc");
    }
    return Yes();
  }

 private:
  testing::KafkaBroker* broker_ = nullptr;
};

// ferryd's RocksDB store in a fresh directory per test.
class EmbeddedBackend : public Backend {
 public:
  ~EmbeddedBackend() override {
    if (dir_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  BackendKind kind() const override { return BackendKind::kEmbedded; }
  absl::Status SetUp() override {
    std::string pattern = std::filesystem::temp_directory_path() / "ferry-conf-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError("mkdtemp for the embedded store failed");
    }
    dir_ = pattern;
    return absl::OkStatus();
  }
  std::string ClustersYaml() const override {
    return fmt::format("clusters:\n  main: {{ type: embedded, path: \"{}/store\" }}\n",
                       dir_);
  }
  Support Supports(Capability capability) const override {
    if (capability == Capability::kBrokerFaults) {
      return No("the embedded store lives inside ferryd: there is no broker to lose");
    }
    return Yes();
  }

 private:
  std::string dir_;
};

// librdkafka 2.0.2's in-process mock cluster, fresh per test, one broker.
class KafkaMockBackend : public Backend {
 public:
  BackendKind kind() const override { return BackendKind::kKafkaMock; }
  absl::Status SetUp() override {
    auto cluster = testing::MockKafkaCluster::Start(1);
    if (!cluster.ok()) return cluster.status();
    cluster_ = *std::move(cluster);
    // ferryd creates its control topic through CreateTopics, which the mock
    // does not serve; until the topic exists every group stays paused.
    return cluster_->CreateTopic("__ferry_control", 1);
  }
  // The control topic is named: the mock is fresh per test, and the one it
  // was given is the only one ferryd can use.
  std::string ClustersYaml() const override {
    return fmt::format(
        "clusters:\n  main: {{ type: kafka, bootstrap: \"{}\" }}\n"
        "control: {{ topic: __ferry_control }}\n",
        cluster_->bootstrap());
  }
  Support Supports(Capability capability) const override {
    switch (capability) {
      case Capability::kAdminCreateTopic:
        return No(
            "librdkafka 2.0.2's mock cluster serves no CreateTopics (Admin.CreateTopic "
            "times out 'waiting for controller'); the fixture provisions topics with "
            "rd_kafka_mock_topic_create instead");
      case Capability::kUnknownTopicNotFound:
        return No(
            "the mock auto-creates any topic named in a Metadata request (ferryd's "
            "allow.auto.create.topics=false does not stop it), so publishing to an "
            "unknown topic succeeds and a subscription to one waits");
      case Capability::kResultTimestamp:
        return No(
            "the mock answers every produce with LogAppendTime 1234 ms (hard-coded in "
            "rdkafka_mock_handlers.c), which librdkafka reports as the record's "
            "timestamp; the stored record keeps the right one");
      case Capability::kSeekToTimestamp:
        return No(
            "the mock's ListOffsets does not look up timestamps (a FIXME in "
            "rdkafka_mock_handlers.c: it answers offset -1), so the group moves to "
            "the end");
      default:
        return Yes();
    }
  }
  absl::Status ProvisionTopic(const std::string& topic, int partitions) override {
    return cluster_->CreateTopic(topic, partitions);
  }
  void SetBrokerDown(bool down) override { cluster_->SetBrokerDown(1, down); }

 private:
  std::unique_ptr<testing::MockKafkaCluster> cluster_;
};

}  // namespace

std::unique_ptr<Backend> Backend::Create(BackendKind kind) {
  switch (kind) {
    case BackendKind::kKafka:
      return std::make_unique<KafkaBackend>();
    case BackendKind::kEmbedded:
      return std::make_unique<EmbeddedBackend>();
    case BackendKind::kKafkaMock:
      return std::make_unique<KafkaMockBackend>();
  }
  return nullptr;
}

}  // namespace ferry::conformance
