// TLS on ferryd's listeners as a client meets it: the CLI, the C++ SDK and an
// HTTPS client against a real ferryd (embedded store) with certificates made
// by a throwaway CA when the test runs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ferry/client/subscriber.h"
#include "testing/ferryd_process.h"
#include "testing/process.h"
#include "testing/test_certificates.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;
using ::ferry::testing::FerrydProcess;
using ::ferry::testing::HttpsClientFiles;
using ::ferry::testing::IssuedCertificate;
using ::ferry::testing::ProcessResult;
using ::ferry::testing::TestCertificates;
using ::testing::HasSubstr;

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = TestCertificates::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    auto server = pki_->IssueServer();
    auto client = pki_->Issue("tenant-a");
    ASSERT_TRUE(server.ok() && client.ok());
    // The node reads copies, so a test can rotate them in place.
    dir_ = fs::path(pki_->ca_cert()).parent_path().string();
    served_ = {.cert = dir_ + "/served.pem", .key = dir_ + "/served.key"};
    Serve(*server);
    client_ = *client;
  }

  void Serve(const IssuedCertificate& issued) {
    fs::copy_file(issued.cert, served_.cert, fs::copy_options::overwrite_existing);
    fs::copy_file(issued.key, served_.key, fs::copy_options::overwrite_existing);
  }

  // A node with TLS on both listeners; with `mutual`, clients need a
  // certificate from the test CA.
  std::unique_ptr<FerrydProcess> Node(bool mutual) {
    std::map<std::string, std::string> env = {
        {"FERRY_LISTEN_TLS_CERT", served_.cert},
        {"FERRY_LISTEN_TLS_KEY", served_.key},
        {"FERRY_LISTEN_TLS_REFRESH_INTERVAL", "1s"}};
    HttpsClientFiles https{.ca = pki_->ca_cert()};
    if (mutual) {
      env["FERRY_LISTEN_TLS_CLIENT_CA"] = pki_->ca_cert();
      https.cert = client_.cert;
      https.key = client_.key;
    }
    auto node = FerrydProcess::Start("", env, "", https);
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? *std::move(node) : nullptr;
  }

  static ProcessResult Cli(const FerrydProcess& node, std::vector<std::string> args,
                           const std::string& input = "") {
    args.insert(args.begin(), {"--server", node.grpc_address()});
    auto result = ferry::testing::RunFerryCli(args, {}, input);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : ProcessResult{.exit_code = -1};
  }

  std::vector<std::string> ClientFlags() const {
    return {"--tls-ca",   pki_->ca_cert(), "--tls-cert",
            client_.cert, "--tls-key",     client_.key};
  }

  std::unique_ptr<TestCertificates> pki_;
  std::string dir_;
  IssuedCertificate served_;
  IssuedCertificate client_;
};

TEST_F(TlsTest, cli_produces_consumes_and_administers_over_mutual_tls) {
  auto node = Node(/*mutual=*/true);
  ASSERT_NE(node, nullptr);
  std::vector<std::string> produce = ClientFlags();
  produce.insert(produce.end(), {"produce", "--topic", "tls.orders"});
  ProcessResult produced = Cli(*node, produce, "one\ntwo\n");
  ASSERT_EQ(produced.exit_code, 0) << produced.err;

  std::vector<std::string> consume = ClientFlags();
  consume.insert(consume.end(), {"consume", "--group", "g", "--topic", "tls.orders",
                                 "--from", "earliest", "--count", "2"});
  ProcessResult consumed = Cli(*node, consume);
  ASSERT_EQ(consumed.exit_code, 0) << consumed.err;
  EXPECT_THAT(consumed.out, HasSubstr("one"));
  EXPECT_THAT(consumed.out, HasSubstr("two"));

  std::vector<std::string> topics = ClientFlags();
  topics.insert(topics.end(), {"topics", "list"});
  ProcessResult listed = Cli(*node, topics);
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr("tls.orders"));

  auto [status, body] = node->HttpGet("/api/v1/topics");
  EXPECT_EQ(status, 200);
  EXPECT_THAT(body, HasSubstr("tls.orders"));
}

TEST_F(TlsTest, clients_without_tls_or_without_a_client_certificate_are_refused) {
  auto node = Node(/*mutual=*/true);
  ASSERT_NE(node, nullptr);
  ProcessResult plain = Cli(*node, {"topics", "list"});
  EXPECT_NE(plain.exit_code, 0);
  EXPECT_THAT(plain.err, HasSubstr("UNAVAILABLE"));
  ProcessResult no_cert = Cli(*node, {"--tls-ca", pki_->ca_cert(), "topics", "list"});
  EXPECT_NE(no_cert.exit_code, 0);
  EXPECT_THAT(no_cert.err, HasSubstr("UNAVAILABLE"));

  node->set_https({.ca = pki_->ca_cert()});
  EXPECT_EQ(node->HttpGet("/healthz").first, -1);
  node->set_https({});
  EXPECT_EQ(node->HttpGet("/healthz").first, -1);
}

TEST_F(TlsTest, a_token_is_never_sent_in_clear_text) {
  auto node = Node(/*mutual=*/false);
  ASSERT_NE(node, nullptr);
  ProcessResult result = Cli(*node, {"--token", "s3cret", "topics", "list"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("a token needs TLS"));
  EXPECT_THAT(result.err, ::testing::Not(HasSubstr("s3cret")));
}

// Given a subscriber streaming over TLS, when the node's certificate is
// replaced by one from another CA, then new connections get the new
// certificate while the open stream keeps delivering.
TEST_F(TlsTest, certificate_rotation_keeps_established_streams) {
  auto node = Node(/*mutual=*/false);
  ASSERT_NE(node, nullptr);
  const std::string topic = "tls.rotation";
  ASSERT_EQ(Cli(*node, {"--tls-ca", pki_->ca_cert(), "produce", "--topic", topic}, "a\n")
                .exit_code,
            0);
  std::atomic<int> received{0};
  std::string error;
  auto subscriber =
      client::Subscriber::Builder()
          .Endpoints({node->grpc_address()})
          .Security({.ca_file = pki_->ca_cert()})
          .Group("rotation")
          .Topics({topic})
          .StartAt(client::StartPosition::Earliest())
          .OnMessage([&](const client::ReceivedMessage&, client::AckHandle handle) {
            handle.Ack();
            ++received;
          })
          .Build(&error);
  ASSERT_NE(subscriber, nullptr) << error;
  absl::Time until = absl::Now() + absl::Seconds(20);
  while (received < 1 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(50));
  ASSERT_EQ(received, 1);

  auto other_ca = TestCertificates::Create("rotated CA");
  ASSERT_TRUE(other_ca.ok());
  auto rotated = (*other_ca)->IssueServer();
  ASSERT_TRUE(rotated.ok());
  Serve(*rotated);
  // New handshakes see the rotated certificate within the 1 s refresh.
  until = absl::Now() + absl::Seconds(10);
  ProcessResult published;
  do {
    absl::SleepFor(absl::Milliseconds(200));
    published = Cli(*node,
                    {"--tls-ca", (*other_ca)->ca_cert(), "produce", "--topic", topic,
                     "--timeout", "3"},
                    "b\n");
  } while (published.exit_code != 0 && absl::Now() < until);
  ASSERT_EQ(published.exit_code, 0) << published.err;
  EXPECT_NE(Cli(*node, {"--tls-ca", pki_->ca_cert(), "topics", "list"}).exit_code, 0);
  node->set_https({.ca = (*other_ca)->ca_cert()});
  EXPECT_EQ(node->HttpGet("/healthz").first, 200);

  // The subscriber trusts only the old CA: it can get the new message only
  // over the stream it opened before the rotation.
  until = absl::Now() + absl::Seconds(20);
  while (received < 2 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(received, 2);
  EXPECT_TRUE(subscriber->Close(std::chrono::seconds(10)));
}

TEST(ListenerPlainText, a_non_loopback_address_without_tls_is_refused_at_start) {
  auto ports = ferry::testing::PickFreePorts(1);
  ASSERT_TRUE(ports.ok());
  auto result = ferry::testing::RunFerryd(
      {"--set", absl::StrCat("listen.grpc=0.0.0.0:", (*ports)[0])});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_THAT(result->err,
              HasSubstr("is not a loopback address and listen.tls is not set"));
}

}  // namespace
}  // namespace ferry
