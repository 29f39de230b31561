// Authentication and ACLs as tenants of a shared tier meet them: a real
// ferryd (embedded store) with TLS, auth.enabled, tokens made by
// `ferry token create` and per-tenant rules; the CLI, the C++ SDK and HTTPS
// as clients.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ferry/client/publisher.h"
#include "testing/ferryd_process.h"
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
using ::testing::HasSubstr;

// Each tenant owns its topics and groups by prefix; "ops" administers.
constexpr char kRules[] = R"(auth:
  enabled: true
  refresh_interval: 1s
  acl:
    - { principal: tenant-a, resource: "topic:a.*", operations: [publish, subscribe, describe] }
    - { principal: tenant-a, resource: "group:a-*", operations: [subscribe, describe, seek, pause] }
    - { principal: tenant-b, resource: "topic:b.*", operations: [publish, subscribe, describe] }
    - { principal: tenant-b, resource: "group:b-*", operations: [subscribe, describe, seek, pause] }
    - { principal: ops, resource: "topic:*", operations: [all] }
    - { principal: ops, resource: admin, operations: [admin] }
    - { principal: ops, resource: cluster, operations: [describe] }
)";

class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto pki = TestCertificates::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = pki->release();
    auto server = pki_->IssueServer();
    auto cert_a = pki_->Issue("tenant-a");
    ASSERT_TRUE(server.ok() && cert_a.ok());
    server_ = new IssuedCertificate(*server);
    cert_a_ = new IssuedCertificate(*cert_a);
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete server_;
    delete cert_a_;
  }

  void SetUp() override {
    a_ = CreateToken("tenant-a");
    b_ = CreateToken("tenant-b");
    ops_ = CreateToken("ops");
    tokens_path_ = ferry::testing::WriteTempFile(
        "tokens", absl::StrCat(a_.line, "\n", b_.line, "\n", ops_.line, "\n"));
    auto node = FerrydProcess::Start(
        kRules,
        {{"FERRY_LISTEN_TLS_CERT", server_->cert},
         {"FERRY_LISTEN_TLS_KEY", server_->key},
         {"FERRY_LISTEN_TLS_CLIENT_CA", pki_->ca_cert()},
         {"FERRY_AUTH_TOKENS_FILE", tokens_path_}},
        "",
        HttpsClientFiles{
            .ca = pki_->ca_cert(), .cert = cert_a_->cert, .key = cert_a_->key});
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = *std::move(node);
  }

  void TearDown() override { unlink(tokens_path_.c_str()); }

  // The CLI over TLS (server CA only) with `token`.
  ProcessResult Cli(const std::string& token, std::vector<std::string> args,
                    const std::string& input = "") {
    args.insert(args.begin(),
                {"--server", node_->grpc_address(), "--tls-ca", pki_->ca_cert()});
    auto result = RunFerryCli(args, {{"FERRY_TOKEN", token}}, input);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : ProcessResult{.exit_code = -1};
  }

  std::pair<int, std::string> Http(const std::string& token, const std::string& verb,
                                   const std::string& path,
                                   const std::string& body = "") {
    return node_->Http(verb, path, body, {{"Authorization", "Bearer " + token}});
  }

  static TestCertificates* pki_;
  static IssuedCertificate* server_;
  static IssuedCertificate* cert_a_;
  Token a_, b_, ops_;
  std::string tokens_path_;
  std::unique_ptr<FerrydProcess> node_;
};

TestCertificates* AuthTest::pki_ = nullptr;
IssuedCertificate* AuthTest::server_ = nullptr;
IssuedCertificate* AuthTest::cert_a_ = nullptr;

TEST_F(AuthTest, a_tenant_uses_its_own_topics_and_groups_over_grpc) {
  ProcessResult produced = Cli(a_.token, {"produce", "--topic", "a.orders"}, "one\n");
  ASSERT_EQ(produced.exit_code, 0) << produced.err;
  ProcessResult consumed =
      Cli(a_.token, {"consume", "--group", "a-g", "--topic", "a.orders", "--from",
                     "earliest", "--count", "1"});
  ASSERT_EQ(consumed.exit_code, 0) << consumed.err;
  EXPECT_THAT(consumed.out, HasSubstr("one"));
  EXPECT_EQ(Cli(a_.token, {"topics", "describe", "a.orders"}).exit_code, 0);
  EXPECT_EQ(Cli(a_.token, {"seek", "--group", "a-g", "--to", "earliest"}).exit_code, 0);
  EXPECT_EQ(Cli(a_.token, {"pause", "--group", "a-g"}).exit_code, 0);
  EXPECT_EQ(Cli(a_.token, {"resume", "--group", "a-g"}).exit_code, 0);
  // Pushed SDK settings are for every authenticated client, without rules.
  ProcessResult settings = Cli(a_.token, {"client-settings", "show"});
  EXPECT_EQ(settings.exit_code, 0) << settings.err;
  // /metrics counts the messages per principal.
  auto metrics = Http(ops_.token, "GET", "/metrics");
  ASSERT_EQ(metrics.first, 200);
  EXPECT_THAT(
      metrics.second,
      HasSubstr("ferry_principal_published_messages_total{principal=\"tenant-a\"} 1\n"));
  EXPECT_THAT(
      metrics.second,
      HasSubstr("ferry_principal_delivered_messages_total{principal=\"tenant-a\"} 1\n"));
}

TEST_F(AuthTest, tenant_a_cannot_touch_tenant_b_over_grpc) {
  ASSERT_EQ(Cli(b_.token, {"produce", "--topic", "b.orders"}, "secret\n").exit_code, 0);
  ProcessResult publish = Cli(a_.token, {"produce", "--topic", "b.orders"}, "x\n");
  EXPECT_NE(publish.exit_code, 0);
  EXPECT_THAT(publish.err, HasSubstr("permission denied: publish on topic:b.orders"));
  ProcessResult subscribe =
      Cli(a_.token, {"consume", "--group", "a-g", "--topic", "b.orders", "--from",
                     "earliest", "--count", "1"});
  EXPECT_NE(subscribe.exit_code, 0);
  EXPECT_THAT(subscribe.err, HasSubstr("permission denied: subscribe on topic:b.orders"));
  ProcessResult group = Cli(a_.token, {"consume", "--group", "b-g", "--topic", "a.orders",
                                       "--from", "earliest", "--count", "1"});
  EXPECT_NE(group.exit_code, 0);
  EXPECT_THAT(group.err, HasSubstr("permission denied: subscribe on group:b-g"));
  for (const auto& [args, denied] :
       std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"topics", "describe", "b.orders"}, "describe on topic:b.orders"},
           {{"groups", "describe", "b-g"}, "describe on group:b-g"},
           {{"seek", "--group", "b-g", "--to", "earliest"}, "seek on group:b-g"},
           {{"pause", "--group", "b-g"}, "pause on group:b-g"},
           {{"resume", "--group", "b-g"}, "pause on group:b-g"},
           {{"topics", "delete", "b.orders"}, "admin on topic:b.orders"},
           {{"routes", "list"}, "describe on cluster"}}) {
    ProcessResult result = Cli(a_.token, args);
    EXPECT_EQ(result.exit_code, 1) << args[0];
    EXPECT_THAT(result.err, HasSubstr("PERMISSION_DENIED: permission denied: " + denied));
  }
  // The node logged an audit line per denial.
  EXPECT_THAT(node_->Log(), HasSubstr("audit: denied tenant-a seek on group:b-g"));
}

TEST_F(AuthTest, tenant_a_cannot_touch_tenant_b_over_http) {
  ASSERT_EQ(Cli(b_.token, {"produce", "--topic", "b.orders"}, "secret\n").exit_code, 0);
  ASSERT_EQ(Cli(a_.token, {"produce", "--topic", "a.orders"}, "mine\n").exit_code, 0);
  EXPECT_EQ(Http(a_.token, "GET", "/api/v1/topics/a.orders").first, 200);
  auto denied = Http(a_.token, "GET", "/api/v1/topics/b.orders");
  EXPECT_EQ(denied.first, 403);
  EXPECT_THAT(denied.second, HasSubstr("permission denied: describe on topic:b.orders"));
  EXPECT_EQ(Http(a_.token, "POST", "/api/v1/groups/b-g/pause").first, 403);
  EXPECT_EQ(Http(a_.token, "POST", "/api/v1/groups/a-g/pause").first, 200);
  EXPECT_EQ(Http(a_.token, "GET", "/metrics").first, 403);
  EXPECT_EQ(Http("nope.0123456789abcdef0123", "GET", "/api/v1/topics/a.orders").first,
            401);
  // The client certificate (CN tenant-a) alone is a principal too.
  EXPECT_EQ(node_->HttpGet("/api/v1/topics/a.orders").first, 200);
  EXPECT_EQ(node_->HttpGet("/api/v1/topics/b.orders").first, 403);
}

TEST_F(AuthTest, a_client_certificate_is_a_principal_over_grpc) {
  std::string error;
  auto publisher = client::Publisher::Builder()
                       .Endpoints({node_->grpc_address()})
                       .Security({.ca_file = pki_->ca_cert(),
                                  .cert_file = cert_a_->cert,
                                  .key_file = cert_a_->key})
                       .DeliveryTimeout(std::chrono::seconds(10))
                       .Build(&error);
  ASSERT_NE(publisher, nullptr) << error;
  client::PublishResult own = publisher->Publish("a.sdk", {.value = "v"}).get();
  EXPECT_TRUE(own.ok()) << own.error;
  client::PublishResult other = publisher->Publish("b.sdk", {.value = "v"}).get();
  EXPECT_EQ(other.code, 7);  // PERMISSION_DENIED, not retried
  EXPECT_THAT(other.error, HasSubstr("permission denied: publish on topic:b.sdk"));
}

TEST_F(AuthTest, missing_malformed_expired_and_revoked_tokens_are_unauthenticated) {
  ProcessResult none = Cli("", {"topics", "describe", "a.orders"});
  EXPECT_THAT(none.err, HasSubstr("UNAUTHENTICATED: no credentials"));
  ProcessResult malformed = Cli("not-a-token", {"topics", "describe", "a.orders"});
  EXPECT_THAT(malformed.err, HasSubstr("UNAUTHENTICATED: malformed bearer token"));

  Token soon = CreateToken("tenant-a", "4s");
  std::ofstream(tokens_path_, std::ios::app) << soon.line << "\n";
  // The node sees the new line within its 1 s refresh.
  absl::SleepFor(absl::Milliseconds(1200));
  EXPECT_EQ(
      Cli(soon.token, {"topics", "describe", "a.orders"}).err.find("UNAUTHENTICATED"),
      std::string::npos);
  absl::SleepFor(absl::Seconds(3));
  EXPECT_THAT(Cli(soon.token, {"topics", "describe", "a.orders"}).err,
              HasSubstr("UNAUTHENTICATED: bearer token expired at"));

  // Revoking: the line goes, and within the refresh so does the access.
  std::ofstream(tokens_path_, std::ios::trunc) << b_.line << "\n";
  absl::SleepFor(absl::Milliseconds(1200));
  EXPECT_THAT(Cli(a_.token, {"topics", "describe", "a.orders"}).err,
              HasSubstr("UNAUTHENTICATED: unknown or revoked bearer token"));
  EXPECT_THAT(node_->Log(), HasSubstr("audit: unauthenticated request"));
}

}  // namespace
}  // namespace ferry
