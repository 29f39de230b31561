// ferryd against a Kafka broker that speaks only SASL_SSL with SCRAM-SHA-512
// to it, as managed Kafka services do: the cluster `properties` carry the
// librdkafka settings, the password comes from ${file:...} or ${env:...},
// and the password never shows in the node's log or admin answers.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/test_certificates.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::KafkaBroker;
using ::ferry::testing::ProcessResult;
using ::ferry::testing::RunFerryCliOn;
using ::ferry::testing::TestCertificates;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kUser[] = "ferry-node";

// A cluster `main` reached over SASL_SSL whose password is `password_value`
// (a ${file:...} or ${env:...} reference, or a literal).
std::string SecureClusterYaml(const KafkaBroker& broker, const std::string& ca,
                              const std::string& password_value) {
  return absl::StrCat(
      "cluster_probe: { interval: 300ms, timeout: 2s }\n"
      "publish: { timeout: 3s }\n"
      "clusters:\n"
      "  main:\n"
      "    type: kafka\n"
      "    bootstrap: \"",
      broker.sasl_ssl_bootstrap(),
      "\"\n"
      "    properties:\n"
      "      security.protocol: SASL_SSL\n"
      "      sasl.mechanisms: SCRAM-SHA-512\n"
      "      sasl.username: ",
      kUser,
      "\n"
      "      sasl.password: \"",
      password_value,
      "\"\n"
      "      ssl.ca.location: \"",
      ca, "\"\n");
}

class BrokerSaslTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // ferryd links the same librdkafka: without these it could not connect.
    char features[512];
    size_t size = sizeof(features);
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_get(conf, "builtin.features", features, &size);
    rd_kafka_conf_destroy(conf);
    ASSERT_THAT(features, AllOf(HasSubstr("ssl"), HasSubstr("sasl_scram")))
        << "librdkafka " << rd_kafka_version_str() << " lacks SSL or SASL/SCRAM";
    auto pki = TestCertificates::Create("kafka test CA");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = pki->release();
    auto server = pki_->IssueServer("kafka");
    ASSERT_TRUE(server.ok()) << server.status();
    // Random per run, so finding it in a log cannot be a coincidence.
    password_ = new std::string(absl::StrCat("scram-", absl::ToUnixNanos(absl::Now())));
    auto broker =
        KafkaBroker::Start("sasl", testing::SaslSslListener{.cert = server->cert,
                                                            .key = server->key,
                                                            .user = kUser,
                                                            .password = *password_});
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    for (const char* topic : {"secure.file", "secure.env", "secure.wrong"}) {
      ASSERT_TRUE(broker_->CreateTopic(topic, 2).ok()) << topic;
    }
  }
  static void TearDownTestSuite() {
    delete broker_;
    delete pki_;
    delete password_;
  }

  std::unique_ptr<FerrydProcess> Node(
      const std::string& password_value,
      const std::map<std::string, std::string>& env = {}) {
    if (broker_ == nullptr) return nullptr;  // SetUpTestSuite failed and said why
    auto node = FerrydProcess::Start(
        SecureClusterYaml(*broker_, pki_->ca_cert(), password_value), env);
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? *std::move(node) : nullptr;
  }

  // Publishes `value` to `topic` through the node and reads it back.
  static void RoundTrip(const FerrydProcess& node, const std::string& topic,
                        const std::string& value) {
    ProcessResult produced =
        RunFerryCliOn(node, {"produce", "--topic", topic}, value + "\n");
    ASSERT_EQ(produced.exit_code, 0) << produced.err << node.Log();
    ProcessResult consumed =
        RunFerryCliOn(node, {"consume", "--group", topic + ".group", "--topic", topic,
                             "--from", "earliest", "--count", "1"});
    ASSERT_EQ(consumed.exit_code, 0) << consumed.err << node.Log();
    EXPECT_THAT(consumed.out, HasSubstr(value));
  }

  // Everything an operator can read from the node: its log, `ferry status`,
  // the HTTP cluster list and the client config SDKs fetch (with the
  // cluster's properties for `topic`; settings only without one, as the
  // cluster cannot be asked for partition counts while it is down).
  static std::string EverythingShown(const FerrydProcess& node,
                                     const std::string& topic = "") {
    v1::GetClientConfigRequest request;
    if (!topic.empty()) request.add_topics(topic);
    v1::GetClientConfigResponse client_config;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status status =
        v1::Admin::NewStub(
            grpc::CreateChannel(node.grpc_address(), grpc::InsecureChannelCredentials()))
            ->GetClientConfig(&context, request, &client_config);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return absl::StrCat(node.Log(), RunFerryCliOn(node, {"status"}).out,
                        node.HttpGet("/api/v1/clusters").second,
                        client_config.DebugString());
  }

  static TestCertificates* pki_;
  static KafkaBroker* broker_;
  static std::string* password_;
};

TestCertificates* BrokerSaslTest::pki_ = nullptr;
KafkaBroker* BrokerSaslTest::broker_ = nullptr;
std::string* BrokerSaslTest::password_ = nullptr;

TEST_F(BrokerSaslTest, a_password_from_a_file_publishes_and_consumes_end_to_end) {
  const std::string password_file = testing::WriteTempFile("scram", *password_ + "\n");
  auto node = Node(absl::StrCat("${file:", password_file, "}"));
  ASSERT_NE(node, nullptr);
  RoundTrip(*node, "secure.file", "over-sasl-ssl-file");
  const std::string shown = EverythingShown(*node, "secure.file");
  EXPECT_THAT(shown, AllOf(HasSubstr("cluster main  kafka"), HasSubstr("  up"),
                           HasSubstr("SASL_SSL")));
  EXPECT_THAT(shown, Not(HasSubstr(*password_)));
  unlink(password_file.c_str());
}

TEST_F(BrokerSaslTest, a_password_from_the_environment_publishes_and_consumes) {
  auto node = Node("${env:FERRY_TEST_SCRAM_PASSWORD}",
                   {{"FERRY_TEST_SCRAM_PASSWORD", *password_}});
  ASSERT_NE(node, nullptr);
  RoundTrip(*node, "secure.env", "over-sasl-ssl-env");
  EXPECT_THAT(EverythingShown(*node, "secure.env"), Not(HasSubstr(*password_)));
}

TEST_F(BrokerSaslTest, a_wrong_password_is_an_authentication_error_not_a_hang) {
  const std::string wrong = absl::StrCat("wrong-", *password_);
  auto node =
      Node("${env:FERRY_TEST_SCRAM_PASSWORD}", {{"FERRY_TEST_SCRAM_PASSWORD", wrong}});
  ASSERT_NE(node, nullptr);
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  ProcessResult status;
  do {
    status = RunFerryCliOn(*node, {"status"});
  } while (!absl::StrContains(status.out, "invalid credentials") &&
           absl::Now() < deadline);
  EXPECT_THAT(status.out, AllOf(HasSubstr("cluster main  kafka"), HasSubstr("  down"),
                                HasSubstr("SASL authentication error")));
  EXPECT_THAT(node->Log(), AllOf(HasSubstr("cluster=main state=down"),
                                 HasSubstr("invalid credentials")));

  // Publishing fails (here within the CLI's 5 s) instead of hanging.
  const absl::Time before = absl::Now();
  ProcessResult produced = RunFerryCliOn(
      *node, {"produce", "--topic", "secure.wrong", "--timeout", "5"}, "lost\n");
  EXPECT_NE(produced.exit_code, 0);
  EXPECT_THAT(produced.err, HasSubstr("code 14: cluster main")) << produced.err;
  EXPECT_LT(absl::Now() - before, absl::Seconds(15));
  EXPECT_TRUE(node->process().Running());
  EXPECT_EQ(node->HttpGet("/healthz").first, 200);
  EXPECT_THAT(EverythingShown(*node),
              AllOf(Not(HasSubstr(wrong)), Not(HasSubstr(*password_))));
}

}  // namespace
}  // namespace ferry
