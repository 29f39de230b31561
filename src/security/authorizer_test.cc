#include "security/authorizer.h"

#include <gmock/gmock.h>
#include <grpcpp/test/server_context_test_spouse.h>
#include <gtest/gtest.h>

#include <fstream>

#include "ferry/v1/admin.pb.h"
#include "ferry/v1/publisher.pb.h"
#include "testing/test_dir.h"

namespace ferry::security {
namespace {

using ::testing::HasSubstr;

constexpr char kSecret[] = "0123456789abcdef0123";

// Given tokens for tenant-a and tenant-b and rules that give each its own
// topics, when calls arrive, then each is allowed exactly its own.
class AuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_path_ = dir_.Sub("tokens");
    std::ofstream(tokens_path_)
        << TokenLine("a", "tenant-a", kSecret, "salt-a-0123", absl::InfiniteFuture())
        << "\n"
        << TokenLine("b", "tenant-b", kSecret, "salt-b-0123", absl::InfiniteFuture())
        << "\n";
    config::AuthConfig auth{.enabled = true, .tokens_file = tokens_path_};
    for (auto [principal, glob] :
         {std::pair{"tenant-a", "topic:a.*"}, std::pair{"tenant-b", "topic:b.*"}}) {
      auto rule = ParseAclRule(principal, glob, "publish,describe");
      ASSERT_TRUE(rule.ok());
      auth.acl.push_back(*rule);
    }
    auto authorizer = Authorizer::Start(auth);
    ASSERT_TRUE(authorizer.ok()) << authorizer.status();
    authorizer_ = *std::move(authorizer);
  }

  absl::Status Publish(const std::string& topic,
                       const std::map<std::string, std::string>& metadata) {
    grpc::ServerContext context;
    grpc::testing::ServerContextTestSpouse spouse(&context);
    for (const auto& [key, value] : metadata) spouse.AddClientMetadata(key, value);
    v1::PublishRequest request;
    request.set_topic(topic);
    return authorizer_->Check(context, request);
  }

  static std::map<std::string, std::string> Bearer(const std::string& id) {
    return {{"authorization", "Bearer " + id + "." + kSecret}};
  }

  ferry::testing::TestDir dir_;
  std::string tokens_path_;
  std::unique_ptr<Authorizer> authorizer_;
};

TEST_F(AuthorizerTest, EachTenantMayUseOnlyItsOwnTopics) {
  EXPECT_TRUE(Publish("a.orders", Bearer("a")).ok());
  EXPECT_TRUE(Publish("b.orders", Bearer("b")).ok());
  absl::Status denied = Publish("b.orders", Bearer("a"));
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.message(), "permission denied: publish on topic:b.orders");
}

TEST_F(AuthorizerTest, CallsWithoutValidCredentialsAreUnauthenticated) {
  EXPECT_EQ(Publish("a.orders", {}).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Publish("a.orders", Bearer("c")).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Publish("a.orders", {{"authorization", "Basic eDp5"}}).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(AuthorizerTest, ActAsMetadataCountsOnlyWithTheNodesOwnKey) {
  auto act_as = authorizer_->ActAs("tenant-a", "10.0.0.1:5000");
  std::map<std::string, std::string> metadata(act_as.begin(), act_as.end());
  EXPECT_TRUE(Publish("a.orders", metadata).ok());
  EXPECT_EQ(Publish("b.orders", metadata).code(), absl::StatusCode::kPermissionDenied);
  metadata["ferry-act-as-key"] = std::string(metadata["ferry-act-as-key"].size(), '0');
  EXPECT_EQ(Publish("a.orders", metadata).code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(AuthorizerTest, RuntimeRulesAddToTheConfiguredOnes) {
  EXPECT_EQ(Publish("shared.x", Bearer("a")).code(), absl::StatusCode::kPermissionDenied);
  authorizer_->SetRuntimeRules({*ParseAclRule("*", "topic:shared.*", "publish")});
  EXPECT_TRUE(Publish("shared.x", Bearer("a")).ok());
  EXPECT_TRUE(Publish("a.orders", Bearer("a")).ok());
  EXPECT_EQ(authorizer_->RuntimeRules().size(), 1u);
  EXPECT_EQ(authorizer_->config_rules().size(), 2u);
  authorizer_->SetRuntimeRules({});
  EXPECT_EQ(Publish("shared.x", Bearer("b")).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(authorizer_->RuntimeRules().empty());
}

TEST_F(AuthorizerTest, AdmitNamesTheCaller) {
  grpc::ServerContext context;
  grpc::testing::ServerContextTestSpouse spouse(&context);
  spouse.AddClientMetadata("authorization", std::string("Bearer b.") + kSecret);
  v1::PublishRequest request;
  request.set_topic("b.orders");
  auto principal = authorizer_->Admit(context, request);
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(*principal, "tenant-b");
}

TEST(AuthorizerOff, EverythingPasses) {
  auto authorizer = Authorizer::Start({});
  ASSERT_TRUE(authorizer.ok());
  grpc::ServerContext context;
  EXPECT_TRUE((*authorizer)->Check(context, v1::PublishRequest()).ok());
}

TEST(AuthorizerStart, ABadTokensFileIsNamed) {
  ferry::testing::TestDir dir;
  const std::string path = dir.Sub("bad-tokens");
  std::ofstream(path) << "x\n";
  auto authorizer = Authorizer::Start({.enabled = true, .tokens_file = path});
  ASSERT_FALSE(authorizer.ok());
  EXPECT_THAT(std::string(authorizer.status().message()),
              HasSubstr("auth.tokens_file: \"" + path + "\": line 1"));
}

}  // namespace
}  // namespace ferry::security
