// ACL rules changed at runtime across two ferryd nodes sharing a control
// topic on a real Kafka broker: an operator allows tenant B to publish to a
// topic with `ferry acl add` on node 1; tenant B's SDK, connected to node 2
// all along, publishes on its next call without reconnecting; removing the
// rule denies it again. Both nodes run TLS with auth.enabled.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "ferry/client/publisher.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/process.h"
#include "testing/test_certificates.h"

namespace ferry {
namespace {

using ::ferry::testing::CreateToken;
using ::ferry::testing::FerrydProcess;
using ::ferry::testing::HttpsClientFiles;
using ::ferry::testing::IssuedCertificate;
using ::ferry::testing::ProcessResult;
using ::ferry::testing::RunFerryCli;
using ::ferry::testing::TestCertificates;
using ::ferry::testing::Token;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kRules[] = R"(
auth:
  enabled: true
  acl:
    - { principal: tenant-b, resource: "topic:b.*", operations: [publish, describe] }
    - { principal: ops, resource: "topic:*", operations: [all] }
    - { principal: ops, resource: admin, operations: [admin] }
    - { principal: ops, resource: cluster, operations: [describe] }
)";
constexpr char kTopic[] = "shared.x";
// How long a node may take to apply a change made on another (the control
// topic's promise is a second).
constexpr absl::Duration kApplyBound = absl::Seconds(1);

class AclRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = testing::SharedBroker();
    ASSERT_NE(broker_, nullptr);
    auto pki = TestCertificates::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    auto server = pki_->IssueServer();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    b_ = CreateToken("tenant-b");
    ops_ = CreateToken("ops");
    tokens_path_ =
        testing::WriteTempFile("tokens", absl::StrCat(b_.line, "\n", ops_.line, "\n"));
    for (auto* node : {&node1_, &node2_}) {
      auto started = FerrydProcess::Start(
          absl::StrCat(testing::MainClusterYaml(broker_->bootstrap()), kRules),
          {{"FERRY_LISTEN_TLS_CERT", server_.cert},
           {"FERRY_LISTEN_TLS_KEY", server_.key},
           {"FERRY_AUTH_TOKENS_FILE", tokens_path_}},
          "", HttpsClientFiles{.ca = pki_->ca_cert()});
      ASSERT_TRUE(started.ok()) << started.status();
      *node = *std::move(started);
    }
  }

  void TearDown() override { unlink(tokens_path_.c_str()); }

  ProcessResult Cli(const FerrydProcess& node, const Token& token,
                    std::vector<std::string> args) {
    args.insert(args.begin(),
                {"--server", node.grpc_address(), "--tls-ca", pki_->ca_cert()});
    auto result = RunFerryCli(args, {{"FERRY_TOKEN", token.token}});
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : ProcessResult{.exit_code = -1};
  }

  // Waits until `node` lists (or no longer lists) tenant-b's runtime rule on
  // the topic; returns how long that took.
  absl::Duration AwaitRuntimeRule(const FerrydProcess& node, bool present) {
    const absl::Time start = absl::Now();
    while (absl::Now() - start < absl::Seconds(10)) {
      ProcessResult list = Cli(node, ops_, {"acl", "list"});
      bool listed = false;
      std::vector<std::string> lines = absl::StrSplit(list.out, '\n');
      for (const std::string& line : lines) {
        listed |= line.find(absl::StrCat("topic:", kTopic)) != std::string::npos &&
                  line.find("runtime") != std::string::npos;
      }
      if (list.exit_code == 0 && listed == present) return absl::Now() - start;
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "node " << node.grpc_address() << " never "
                  << (present ? "listed" : "dropped") << " the runtime rule";
    return absl::InfiniteDuration();
  }

  testing::KafkaBroker* broker_ = nullptr;
  std::unique_ptr<TestCertificates> pki_;
  IssuedCertificate server_;
  Token b_, ops_;
  std::string tokens_path_;
  std::unique_ptr<FerrydProcess> node1_, node2_;
};

TEST_F(AclRuntimeTest, a_rule_added_on_one_node_applies_on_another_without_reconnecting) {
  ASSERT_EQ(
      Cli(*node1_, ops_, {"topics", "create", kTopic, "--partitions", "1"}).exit_code, 0);
  // Tenant B's one publisher, on node 2 only, for the whole test.
  std::string error;
  auto publisher = client::Publisher::Builder()
                       .Endpoints({node2_->grpc_address()})
                       .Security({.ca_file = pki_->ca_cert(), .token = b_.token})
                       .DeliveryTimeout(std::chrono::seconds(10))
                       .Build(&error);
  ASSERT_NE(publisher, nullptr) << error;
  client::PublishResult denied = publisher->Publish(kTopic, {.value = "1"}).get();
  EXPECT_EQ(denied.code, 7);  // PERMISSION_DENIED
  EXPECT_THAT(denied.error, HasSubstr("permission denied: publish on topic:shared.x"));

  // Tenant B may not grant itself anything.
  ProcessResult self = Cli(*node2_, b_,
                           {"acl", "add", "--principal", "tenant-b", "--resource",
                            "topic:shared.x", "--operations", "publish"});
  EXPECT_EQ(self.exit_code, 1);
  EXPECT_THAT(self.err,
              HasSubstr("PERMISSION_DENIED: permission denied: admin on admin"));

  ProcessResult added = Cli(*node1_, ops_,
                            {"acl", "add", "--principal", "tenant-b", "--resource",
                             "topic:shared.x", "--operations", "publish"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_THAT(added.out, HasSubstr("runtime rule: tenant-b topic:shared.x publish"));
  EXPECT_THAT(
      node1_->Log(),
      HasSubstr("audit: ops added runtime ACL rule tenant-b topic:shared.x publish"));
  EXPECT_LE(AwaitRuntimeRule(*node2_, true), kApplyBound);
  client::PublishResult allowed = publisher->Publish(kTopic, {.value = "2"}).get();
  EXPECT_TRUE(allowed.ok()) << allowed.error;

  // Node 2 lists the configuration's rules and the runtime one with their
  // sources, over gRPC and HTTP.
  ProcessResult list = Cli(*node2_, ops_, {"acl", "list"});
  EXPECT_THAT(list.out,
              ContainsRegex("tenant-b +topic:b\\.\\* +publish,describe +config"));
  EXPECT_THAT(list.out, ContainsRegex("tenant-b +topic:shared\\.x +publish +runtime"));
  auto http = node2_->Http("GET", "/api/v1/acls", "",
                           {{"Authorization", "Bearer " + ops_.token}});
  EXPECT_EQ(http.first, 200);
  EXPECT_THAT(http.second, HasSubstr(R"("source":"runtime")"));

  ProcessResult removed = Cli(*node1_, ops_,
                              {"acl", "remove", "--principal", "tenant-b", "--resource",
                               "topic:shared.x", "--operations", "publish"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_THAT(removed.out, HasSubstr("runtime rule removed: tenant-b topic:shared.x"));
  EXPECT_LE(AwaitRuntimeRule(*node2_, false), kApplyBound);
  client::PublishResult denied_again = publisher->Publish(kTopic, {.value = "3"}).get();
  EXPECT_EQ(denied_again.code, 7) << denied_again.error;
}

TEST_F(AclRuntimeTest, bad_rules_and_absent_ones_are_named) {
  ProcessResult bad_resource = Cli(*node1_, ops_,
                                   {"acl", "add", "--principal", "tenant-b", "--resource",
                                    "queue:x", "--operations", "publish"});
  EXPECT_EQ(bad_resource.exit_code, 2);
  EXPECT_THAT(bad_resource.err,
              HasSubstr("ferry: acl add: resource: \"queue:x\" is not topic:GLOB"));
  ProcessResult bad_operation =
      Cli(*node1_, ops_,
          {"acl", "add", "--principal", "tenant-b", "--resource", "topic:x",
           "--operations", "publish,fly"});
  EXPECT_EQ(bad_operation.exit_code, 2);
  EXPECT_THAT(bad_operation.err, HasSubstr("operations: \"fly\" is not one of"));
  // The node checks too (an HTTP client skips the CLI's check).
  auto http = node1_->Http(
      "POST", "/api/v1/acls",
      R"({"principal": "tenant-b", "resource": "topic:", "operations": ["publish"]})",
      {{"Authorization", "Bearer " + ops_.token}});
  EXPECT_EQ(http.first, 400);
  EXPECT_THAT(http.second, HasSubstr("resource: \\\"topic:\\\" needs a glob"));
  // A configured rule is not a runtime one.
  ProcessResult configured = Cli(*node1_, ops_,
                                 {"acl", "remove", "--principal", "tenant-b",
                                  "--resource", "topic:b.*", "--operations", "publish"});
  EXPECT_EQ(configured.exit_code, 1);
  EXPECT_THAT(configured.err,
              HasSubstr("NOT_FOUND: no runtime rule allows tenant-b topic:b.* publish "
                        "(auth.acl in the configuration does"));
  EXPECT_THAT(Cli(*node1_, ops_, {"acl", "list"}).out, Not(HasSubstr("runtime")));
}

}  // namespace
}  // namespace ferry
