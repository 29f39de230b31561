#include "admin/client_config_operations.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backend/fake_cluster.h"

namespace ferry::admin {
namespace {

using ::testing::HasSubstr;

class ClientConfigOperationsTest : public ::testing::Test {
 protected:
  ClientConfigOperationsTest()
      : routes_(std::make_shared<const routing::Router>(
            std::vector<config::RouteConfig>{
                {.topic = "orders.*", .write = {"main"}, .fallback = true},
                {.topic = "audit", .write = {"main"}},
                {.topic = "local.*", .write = {"disk"}, .fallback = true}},
            std::vector<std::string>{"disk", "main"})),
        breakers_(config::BreakerConfig{}, {&main_, &disk_}, &registry_) {
    main_.AddTopic("orders.eu", 6);
  }

  ClientConfigOperations Operations(config::ClientConfig client = {}) {
    return ClientConfigOperations({{"main", &main_}, {"disk", &disk_}},
                                  {{"main",
                                    {.name = "main",
                                     .type = "kafka",
                                     .bootstrap = "k1:9092,k2:9092",
                                     .properties = {{"linger.ms", "5"},
                                                    {"security.protocol", "SASL_SSL"},
                                                    {"sasl.password", "hunter2"},
                                                    {"ssl.key.location", "/etc/key.pem"},
                                                    {"ssl.ca.location", "/etc/ca.pem"}}}},
                                   {"disk", {.name = "disk", .type = "embedded"}}},
                                  &routes_, &breakers_, /*control=*/nullptr,
                                  std::move(client), &registry_);
  }

  static v1::GetClientConfigRequest Request(std::vector<std::string> topics) {
    v1::GetClientConfigRequest request;
    for (std::string& t : topics) request.add_topics(std::move(t));
    return request;
  }

  metrics::Registry registry_;
  backend::FakeCluster main_{"main"};
  backend::FakeCluster disk_{"disk"};
  routing::RouteTable routes_;
  routing::ClusterBreakers breakers_;
};

TEST(SecretProperty, CredentialsAreWithheldAndTheRestPasses) {
  for (const char* name :
       {"sasl.username", "sasl.password", "SASL.JAAS.CONFIG", "ssl.key.location",
        "ssl.key.password", "ssl.keystore.location", "sasl.oauthbearer.client.secret",
        "my.token", "aws.credentials"}) {
    EXPECT_TRUE(IsSecretProperty(name)) << name;
  }
  for (const char* name : {"linger.ms", "security.protocol", "ssl.ca.location",
                           "ssl.endpoint.identification.algorithm", "compression.type"}) {
    EXPECT_FALSE(IsSecretProperty(name)) << name;
  }
}

TEST_F(ClientConfigOperationsTest, TopicGetsItsWriteClusterWithoutCredentials) {
  auto response = Operations().Get(Request({"orders.eu", "audit"}));
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->topics_size(), 2);
  const v1::TopicClientConfig& orders = response->topics(0);
  EXPECT_EQ(orders.topic(), "orders.eu");
  EXPECT_EQ(orders.cluster(), "main");
  EXPECT_EQ(orders.bootstrap(), "k1:9092,k2:9092");
  EXPECT_EQ(orders.partitions(), 6);
  EXPECT_TRUE(orders.fallback());
  std::map<std::string, std::string> properties(orders.properties().begin(),
                                                orders.properties().end());
  EXPECT_EQ(properties,
            (std::map<std::string, std::string>{{"linger.ms", "5"},
                                                {"security.protocol", "SASL_SSL"},
                                                {"ssl.ca.location", "/etc/ca.pem"}}));
  // The route does not allow fallback; the topic does not exist yet.
  EXPECT_FALSE(response->topics(1).fallback());
  EXPECT_EQ(response->topics(1).partitions(), 0);
  EXPECT_EQ(response->refresh_interval().seconds(), 30);
}

TEST_F(ClientConfigOperationsTest, EmbeddedStoreOffersNoFallback) {
  auto response = Operations().Get(Request({"local.x"}));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_FALSE(response->topics(0).fallback());
  EXPECT_EQ(response->topics(0).bootstrap(), "");
  EXPECT_TRUE(response->topics(0).properties().empty());
}

TEST_F(ClientConfigOperationsTest, ConfiguredSettingsArePushedAndUnsetOnesAreAbsent) {
  auto response = Operations({.settings = {.linger = absl::Milliseconds(250),
                                           .max_batch_bytes = 4096}})
                      .Get(Request({"audit"}));
  ASSERT_TRUE(response.ok()) << response.status();
  const v1::ClientSettings& settings = response->settings();
  EXPECT_TRUE(settings.has_linger());
  EXPECT_EQ(settings.linger().nanos(), 250'000'000);
  EXPECT_EQ(settings.max_batch_bytes(), 4096);
  EXPECT_EQ(settings.max_batch_messages(), 0);
  EXPECT_FALSE(settings.has_delivery_timeout());
}

TEST_F(ClientConfigOperationsTest, BadRequestsNameTheField) {
  ClientConfigOperations operations = Operations();
  EXPECT_TRUE(operations.Get(Request({})).ok());  // settings only
  EXPECT_THAT(
      operations.Get(Request(std::vector<std::string>(1001, "audit"))).status().message(),
      HasSubstr("topics: 1001 topics, more than 1000"));
  EXPECT_THAT(operations.Get(Request({"audit", "a b"})).status().message(),
              HasSubstr("topics[1]: "));
  EXPECT_EQ(operations.Get(Request({"nowhere"})).status().code(),
            absl::StatusCode::kNotFound);
  v1::GetClientConfigRequest negative = Request({"audit"});
  negative.set_fallback_messages(-1);
  EXPECT_THAT(operations.Get(negative).status().message(),
              HasSubstr("fallback_messages: -1 is negative"));
  v1::ClientSettings settings;
  settings.set_max_batch_messages(200000);
  auto set = operations.SetSettings(settings);
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(),
              HasSubstr("settings.max_batch_messages: 200000 is not in 1..100000"));
  settings.set_max_batch_messages(10);
  EXPECT_EQ(operations.SetSettings(settings).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ClientConfigOperationsTest, FallbackReportsAreCounted) {
  v1::GetClientConfigRequest request = Request({"audit"});
  request.set_client_id("billing-1");
  request.set_fallback_messages(42);
  ClientConfigOperations operations = Operations();
  ASSERT_TRUE(operations.Get(request).ok());
  request.set_fallback_messages(0);  // nothing since: not a report
  ASSERT_TRUE(operations.Get(request).ok());
  const std::string metrics = registry_.Render();
  EXPECT_THAT(metrics, HasSubstr("ferry_client_fallback_messages_total 42\n"));
  EXPECT_THAT(metrics, HasSubstr("ferry_client_fallback_reports_total 1\n"));
}

}  // namespace
}  // namespace ferry::admin
