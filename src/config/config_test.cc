#include "config/config.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/key_table.h"
#include "testing/test_dir.h"

namespace ferry::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Writes `yaml` to a fresh file under the test's temp dir; returns its path.
// Into one directory for the program, removed with its files at exit.
std::string WriteYaml(const std::string& yaml) {
  static const ferry::testing::TestDir dir;
  static int counter = 0;
  const std::string path = dir.Sub(std::to_string(counter++) + ".yaml");
  std::ofstream(path) << yaml;
  return path;
}

absl::StatusOr<Config> LoadYaml(const std::string& yaml) {
  return Load({.file = WriteYaml(yaml)});
}

// The error message of a failed load, as std::string for gmock matchers
// (Debian's abseil has its own string_view type).
std::string Error(const absl::StatusOr<Config>& config) {
  return std::string(config.status().message());
}

TEST(Config, EmptySourcesGiveDocumentedDefaults) {
  auto config = Load({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->grpc_listen.ToString(), "127.0.0.1:7400");
  EXPECT_EQ(config->http_listen.ToString(), "127.0.0.1:7401");
  EXPECT_EQ(config->log_level, "info");
  EXPECT_EQ(config->shutdown_grace, absl::Seconds(10));
  // Each in-flight byte is held about 2-2.7 times (bench/RESULTS.md): 64 MiB
  // keeps ferryd within its 256 MiB budget at 16 KiB messages.
  EXPECT_EQ(config->publish.max_inflight_bytes, 64 << 20);
  // With the source prefetch it derives, keeps a mirroring node within the
  // same budget (bench/RESULTS.md, Mirror).
  EXPECT_EQ(config->mirror.max_inflight_bytes, 32 << 20);
}

TEST(Config, NoClustersMeansTheEmbeddedStoreForEveryTopic) {
  auto config = Load({});
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->clusters.size(), 1u);
  const ClusterConfig& local = config->clusters.at("local");
  EXPECT_EQ(local.name, "local");
  EXPECT_EQ(local.type, "embedded");
  EXPECT_EQ(local.path, "./ferry-data");
  EXPECT_EQ(local.durability, "sync");
  ASSERT_EQ(config->routes.size(), 1u);
  EXPECT_EQ(config->routes[0].topic, "*");
  EXPECT_EQ(config->routes[0].write, std::vector<std::string>{"local"});
  EXPECT_TRUE(config->routes[0].auto_create_topics);
}

TEST(Config, ReadsAnEmbeddedCluster) {
  auto config = LoadYaml(R"(
clusters:
  disk:
    type: embedded
    path: /var/lib/ferry
    durability: batch
    group_commit: 5ms
    retention: 24h
    retention_bytes: 1073741824
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const ClusterConfig& disk = config->clusters.at("disk");
  EXPECT_EQ(disk.type, "embedded");
  EXPECT_EQ(disk.path, "/var/lib/ferry");
  EXPECT_EQ(disk.durability, "batch");
  EXPECT_EQ(disk.group_commit, absl::Milliseconds(5));
  EXPECT_EQ(disk.retention, absl::Hours(24));
  EXPECT_EQ(disk.retention_bytes, 1 << 30);
  EXPECT_TRUE(config->routes.empty());  // one cluster serves every topic anyway
}

TEST(Config, EmbeddedClusterKeysAreChecked) {
  EXPECT_THAT(Error(LoadYaml("clusters: { d: { type: embedded, durability: fast } }")),
              HasSubstr("clusters.d.durability: \"fast\" is not one of sync, batch"));
  EXPECT_THAT(Error(LoadYaml("clusters: { d: { type: embedded, group_commit: 5s } }")),
              HasSubstr("clusters.d.group_commit: 5s is not in 0..1s"));
  EXPECT_THAT(Error(LoadYaml("clusters: { d: { type: embedded, bootstrap: 'h:1' } }")),
              HasSubstr("clusters.d.bootstrap: not used by type embedded"));
  EXPECT_THAT(
      Error(LoadYaml("clusters: { d: { type: embedded, pth: /x } }")),
      HasSubstr("unknown key \"clusters.d.pth\" (did you mean \"clusters.d.path\"?)"));
  auto forever = LoadYaml("clusters: { d: { type: embedded, retention: inf } }");
  ASSERT_TRUE(forever.ok()) << forever.status();
  EXPECT_EQ(forever->clusters.at("d").retention, absl::InfiniteDuration());
}

TEST(Config, ReadsTheDesignDocExample) {
  auto config = LoadYaml(R"(
listen: { grpc: 127.0.0.1:7500, http: 127.0.0.1:7501 }
clusters:
  main:    { type: kafka, bootstrap: 127.0.0.1:9092, properties: { linger.ms: 5 } }
  standby: { type: kafka, bootstrap: 127.0.0.1:9192 }
routes:
  - topic: "orders.*"         # glob
    write: [main, standby]    # first healthy one is written
    read:  [main, standby]
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->grpc_listen.port, 7500);
  ASSERT_EQ(config->clusters.size(), 2u);
  const ClusterConfig& main = config->clusters.at("main");
  EXPECT_EQ(main.name, "main");
  EXPECT_EQ(main.type, "kafka");
  EXPECT_EQ(main.bootstrap, "127.0.0.1:9092");
  EXPECT_EQ(main.properties.at("linger.ms"), "5");
  ASSERT_EQ(config->routes.size(), 1u);
  EXPECT_EQ(config->routes[0].topic, "orders.*");
  EXPECT_EQ(config->routes[0].write, (std::vector<std::string>{"main", "standby"}));
  EXPECT_EQ(config->routes[0].read, (std::vector<std::string>{"main", "standby"}));
}

TEST(Config, UnknownKeyIsNamedWithASuggestion) {
  auto config = LoadYaml("listen:\n  grcp: 127.0.0.1:7400\n");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Error(config),
              HasSubstr("unknown key \"listen.grcp\" (did you mean \"listen.grpc\"?)"));
}

TEST(Config, BadPortNamesKeyAndValue) {
  auto config = LoadYaml("listen: { grpc: \"127.0.0.1:99999\" }\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Error(config), HasSubstr("listen.grpc: port \"99999\""));
}

TEST(Config, NonLoopbackPlainTextIsRefusedNamingTheWayOut) {
  auto config = LoadYaml("listen: { grpc: \"0.0.0.0:7400\" }\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Error(config), HasSubstr("listen.grpc: 0.0.0.0:7400 is not a loopback "
                                       "address and listen.tls is not set"));
  EXPECT_THAT(Error(config), HasSubstr("listen.allow_plaintext"));
  auto http = LoadYaml("listen: { http: \"10.1.2.3:7401\" }\n");
  EXPECT_THAT(Error(http), HasSubstr("listen.http: 10.1.2.3:7401 is not a loopback"));
}

TEST(Config, NonLoopbackServesWithTlsOrExplicitPlainText) {
  EXPECT_TRUE(
      LoadYaml("listen: { grpc: \"0.0.0.0:7400\", allow_plaintext: true }\n").ok());
  auto tls = LoadYaml(
      "listen:\n  grpc: \"0.0.0.0:7400\"\n  tls: { cert: /c.pem, key: /k.pem, client_ca: "
      "/ca.pem, refresh_interval: 2s }\n");
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(tls->tls.cert, "/c.pem");
  EXPECT_EQ(tls->tls.key, "/k.pem");
  EXPECT_EQ(tls->tls.client_ca, "/ca.pem");
  EXPECT_EQ(tls->tls.refresh_interval, absl::Seconds(2));
  EXPECT_TRUE(
      LoadYaml("listen: { grpc: \"localhost:7400\", http: \"[::1]:7401\" }\n").ok());
}

TEST(Config, TlsNeedsCertAndKeyTogether) {
  EXPECT_THAT(Error(LoadYaml("listen: { tls: { cert: /c.pem } }\n")),
              HasSubstr("listen.tls.key: missing"));
  EXPECT_THAT(Error(LoadYaml("listen: { tls: { key: /k.pem } }\n")),
              HasSubstr("listen.tls.cert: missing"));
  EXPECT_THAT(Error(LoadYaml("listen: { tls: { client_ca: /ca.pem } }\n")),
              HasSubstr("listen.tls.client_ca: needs listen.tls.cert"));
}

TEST(Config, SecretsComeFromTheEnvironmentOrAFile) {
  const std::string secret_file = WriteYaml("s3cret-from-file\n");
  auto config = Load(
      {.file = WriteYaml(fmt::format(
           "clusters:\n  main:\n    type: kafka\n    bootstrap: h:9092\n    properties:\n"
           "      sasl.username: \"user-${{env:KAFKA_USER}}\"\n"
           "      sasl.password: \"${{file:{}}}\"\n"
           "      note: \"$${{not a reference}} and $5\"\n",
           secret_file)),
       .env = {{"KAFKA_USER", "alice"}}});
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& properties = config->clusters.at("main").properties;
  EXPECT_EQ(properties.at("sasl.username"), "user-alice");
  EXPECT_EQ(properties.at("sasl.password"), "s3cret-from-file");
  EXPECT_EQ(properties.at("note"), "${not a reference} and $5");
}

TEST(Config, AMissingSecretNamesTheReferenceNotAValue) {
  auto env = Load({.overrides = {"admin.http.token=${env:FERRY_TEST_UNSET}"}});
  EXPECT_THAT(Error(env),
              HasSubstr("--set: admin.http.token: ${env:FERRY_TEST_UNSET}: the "
                        "environment variable is not set"));
  auto file = Load({.overrides = {"admin.http.token=${file:/nonexistent/token}"}});
  EXPECT_THAT(Error(file), HasSubstr("${file:/nonexistent/token}: cannot read the file"));
  auto unclosed = Load({.overrides = {"admin.http.token=${env:X"}});
  EXPECT_THAT(Error(unclosed), HasSubstr("has no closing '}'"));
  auto unknown = Load({.overrides = {"admin.http.token=${vault:x}"}});
  EXPECT_THAT(Error(unknown), HasSubstr("${vault:x}: not ${env:NAME} or ${file:PATH}"));
}

TEST(Config, AclRulesAreParsedAndBadOnesNamed) {
  auto config = LoadYaml(
      "listen: { tls: { cert: /c, key: /k } }\nauth:\n  enabled: true\n  acl:\n"
      "    - { principal: a, resource: \"topic:a.*\", operations: [publish, describe] "
      "}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->auth.acl.size(), 1u);
  EXPECT_EQ(config->auth.acl[0].ToString(), "a topic:a.* publish,describe");
  EXPECT_THAT(
      Error(LoadYaml("auth: { acl: [ { principal: a, resource: queue, operations: "
                     "[admin] } ] }\n")),
      HasSubstr("auth.acl.0.resource: \"queue\" is not topic:GLOB"));
  EXPECT_THAT(Error(LoadYaml("auth: { enabled: true }\n")),
              HasSubstr("auth.enabled: needs listen.tls.cert"));
}

TEST(Config, MalformedYamlReportsLineAndColumn) {
  auto config = LoadYaml("listen:\n  grpc: [unclosed\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Error(config), HasSubstr(".yaml:"));
}

TEST(Config, MissingFileIsAClearError) {
  auto config = Load({.file = "/nonexistent/ferry.yaml"});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Error(config), HasSubstr("/nonexistent/ferry.yaml: cannot read the file"));
}

TEST(Config, ClusterNeedsTypeAndBootstrap) {
  EXPECT_THAT(Error(LoadYaml("clusters: { main: { bootstrap: 'h:1' } }")),
              HasSubstr("clusters.main.type: missing"));
  EXPECT_THAT(Error(LoadYaml("clusters: { main: { type: kafka } }")),
              HasSubstr("clusters.main.bootstrap: missing"));
  EXPECT_THAT(Error(LoadYaml("clusters: { main: { type: pulsar } }")),
              HasSubstr("clusters.main.type: \"pulsar\" is not one of kafka, embedded"));
  EXPECT_THAT(Error(LoadYaml("clusters: { main: { type: kafka, bootstrap: 'h' } }")),
              HasSubstr("clusters.main.bootstrap: \"h\" is not host:port"));
}

TEST(Config, RoutesMustNameConfiguredClusters) {
  auto config = LoadYaml(R"(
clusters: { main: { type: kafka, bootstrap: "h:9092" } }
routes: [ { topic: "a.*", write: [main, missing] } ]
)");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Error(config), HasSubstr("routes.0.write: unknown cluster \"missing\""));
}

TEST(Config, RouteCheckNamesTheFieldAndTheFault) {
  const std::set<std::string> clusters = {"main", "standby"};
  auto check = [&](RouteConfig route) {
    return std::string(ValidateRoute(route, clusters, "route").message());
  };
  EXPECT_EQ(check({.topic = "orders.*", .write = {"main"}, .read = {"main", "standby"}}),
            "");
  EXPECT_THAT(check({.topic = "", .write = {"main"}}), HasSubstr("route.topic: missing"));
  EXPECT_THAT(
      check({.topic = "orders/*", .write = {"main"}}),
      HasSubstr("route.topic: topic glob \"orders/*\": character '/' at position 6"));
  EXPECT_THAT(check({.topic = "a b", .write = {"main"}}),
              HasSubstr("character ' ' at position 1"));
  EXPECT_THAT(check({.topic = "t?.*", .write = {}}), HasSubstr("route.write: missing"));
  EXPECT_THAT(check({.topic = "t", .write = {"main", "main"}}),
              HasSubstr("route.write: cluster \"main\" is listed twice"));
  EXPECT_THAT(check({.topic = "t", .write = {"main"}, .read = {"standby", "standby"}}),
              HasSubstr("route.read: cluster \"standby\" is listed twice"));
  EXPECT_THAT(
      check({.topic = "t", .write = {"main"}, .read = {"other"}}),
      HasSubstr("route.read: unknown cluster \"other\" (configured: main, standby)"));
}

TEST(Config, ClientSettingsAreUnsetUntilConfiguredAndChecked) {
  auto none = Load({});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->client.settings, ClientSettings{});
  EXPECT_EQ(none->client.refresh_interval, absl::Seconds(30));

  auto set = LoadYaml(R"(
client: { linger: 0s, max_batch_messages: 200, delivery_timeout: 45s, refresh_interval: 5s }
clusters: { main: { type: kafka, bootstrap: 'h:1' } }
routes: [ { topic: "orders.*", write: [main], fallback: true } ]
)");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->client.settings,
            (ClientSettings{.linger = absl::ZeroDuration(),
                            .max_batch_messages = 200,
                            .delivery_timeout = absl::Seconds(45)}));
  EXPECT_EQ(set->client.refresh_interval, absl::Seconds(5));
  EXPECT_TRUE(set->routes[0].fallback);

  EXPECT_THAT(Error(LoadYaml("client: { linger: 2m }")),
              HasSubstr("client.linger: 2m is not in 0..1m"));
  EXPECT_THAT(Error(LoadYaml("client: { max_batch_messages: 0 }")),
              HasSubstr("client.max_batch_messages: 0 is not in 1..100000"));
  EXPECT_THAT(Error(LoadYaml("client: { delivery_timeout: 500ms }")),
              HasSubstr("client.delivery_timeout: 500ms is not in 1s..1h"));
  EXPECT_THAT(Error(LoadYaml("routes: [ { topic: t, write: [local], fallback: yes } ]")),
              HasSubstr("\"yes\" is not true or false"));
}

TEST(Config, DurationsAreCheckedAgainstBounds) {
  EXPECT_THAT(Error(LoadYaml("shutdown: { grace: 10 }")),
              HasSubstr("shutdown.grace: \"10\" is not a duration"));
  EXPECT_THAT(Error(LoadYaml("shutdown: { grace: 1h }")),
              HasSubstr("shutdown.grace: 1h is not in 0..5m"));
  // Above 10s, leaving the groups at shutdown could outlast the watchdog.
  EXPECT_THAT(Error(LoadYaml("subscribe: { leave_timeout: 11s }")),
              HasSubstr("subscribe.leave_timeout: 11s is not in 1s..10s"));
  auto longest = LoadYaml("subscribe: { leave_timeout: 10s }");
  ASSERT_TRUE(longest.ok()) << longest.status();
  EXPECT_EQ(longest->subscribe.leave_timeout, absl::Seconds(10));
}

TEST(Config, MetricsSeriesBoundIsReadAndChecked) {
  auto defaults = Load({});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->metrics.max_series_per_family, 10000);

  auto set = Load({.overrides = {"metrics.max_series_per_family=500"}});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->metrics.max_series_per_family, 500);

  auto zero = Load({.overrides = {"metrics.max_series_per_family=0"}});
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(Error(zero), HasSubstr("metrics.max_series_per_family"));
}

TEST(Config, BreakerKeysHaveTheirDefaultsAndAreRead) {
  auto defaults = Load({});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->breaker.window, absl::Seconds(10));
  EXPECT_EQ(defaults->breaker.min_requests, 20);
  EXPECT_DOUBLE_EQ(defaults->breaker.failure_rate, 0.5);
  EXPECT_EQ(defaults->breaker.down_after, absl::Seconds(3));
  EXPECT_EQ(defaults->breaker.open_for, absl::Seconds(30));
  EXPECT_EQ(defaults->breaker.close_after, 3);

  auto set = LoadYaml(R"(
breaker:
  window: 5s
  min_requests: 100
  failure_rate: 25%
  down_after: 2s
  open_for: 1m
  close_after: 5
)");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->breaker.window, absl::Seconds(5));
  EXPECT_EQ(set->breaker.min_requests, 100);
  EXPECT_DOUBLE_EQ(set->breaker.failure_rate, 0.25);
  EXPECT_EQ(set->breaker.down_after, absl::Seconds(2));
  EXPECT_EQ(set->breaker.open_for, absl::Minutes(1));
  EXPECT_EQ(set->breaker.close_after, 5);
  auto bare = Load({.overrides = {"breaker.failure_rate=70"}});
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_DOUBLE_EQ(bare->breaker.failure_rate, 0.7);
}

TEST(Config, BadBreakerValuesNameKeyAndBounds) {
  EXPECT_THAT(Error(LoadYaml("breaker: { failure_rate: 0% }")),
              HasSubstr("breaker.failure_rate: 0% is not in 1%..100%"));
  EXPECT_THAT(Error(LoadYaml("breaker: { failure_rate: half }")),
              HasSubstr("breaker.failure_rate: \"half\" is not a whole percentage"));
  EXPECT_THAT(Error(LoadYaml("breaker: { window: 500ms }")),
              HasSubstr("breaker.window: 500ms is not in 1s..10m"));
  EXPECT_THAT(Error(LoadYaml("breaker: { min_requests: 0 }")),
              HasSubstr("breaker.min_requests: 0 is not in 1..1000000"));
  EXPECT_THAT(Error(LoadYaml("breaker: { open_for: 2h }")),
              HasSubstr("breaker.open_for: 2h is not in 1s..1h"));
  EXPECT_THAT(Error(LoadYaml("breaker: { close_after: 0 }")),
              HasSubstr("breaker.close_after: 0 is not in 1..100"));
  EXPECT_THAT(Error(LoadYaml("breaker: { down_after: soon }")),
              HasSubstr("breaker.down_after: \"soon\" is not a duration"));
}

TEST(Config, PublishLimitsMustNest) {
  EXPECT_THAT(
      Error(LoadYaml("publish: { max_message_bytes: 2048, max_batch_bytes: 1024 }")),
      HasSubstr("publish.max_message_bytes: 2048 is larger than"));
  EXPECT_THAT(Error(LoadYaml("publish: { max_batch_bytes: 1048577, "
                             "max_inflight_bytes: 1048576 }")),
              HasSubstr("could never be accepted"));
  EXPECT_THAT(Error(LoadYaml("publish: { max_batch_messages: lots }")),
              HasSubstr("publish.max_batch_messages: \"lots\" is not a whole number"));
}

TEST(Config, EnvironmentOverridesFileAndSetOverridesEnvironment) {
  Sources sources{
      .file = WriteYaml("log: { level: warn }\nlisten: { grpc: 127.0.0.1:1 }\n"),
      .env = {{"FERRY_LOG_LEVEL", "debug"},
              {"FERRY_LISTEN_GRPC", "127.0.0.1:2"},
              {"FERRY_SERVER", "ignored:1"}},
      .overrides = {"listen.grpc=127.0.0.1:3", "clusters.main.type=kafka",
                    "clusters.main.bootstrap=127.0.0.1:9092",
                    "clusters.main.properties.socket.timeout.ms=500"}};
  auto config = Load(sources);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->log_level, "debug");
  EXPECT_EQ(config->grpc_listen.port, 3);
  EXPECT_EQ(config->clusters.at("main").properties.at("socket.timeout.ms"), "500");
}

TEST(Config, BadEnvironmentValueNamesTheVariable) {
  auto config = Load({.env = {{"FERRY_LOG_LEVEL", "loud"}}});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Error(config),
              HasSubstr("FERRY_LOG_LEVEL: log.level: \"loud\" is not one of"));
}

TEST(Config, SetWithoutEqualsIsRejected) {
  auto config = Load({.overrides = {"listen.grpc"}});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Error(config), HasSubstr("is not key=value"));
}

TEST(Config, EnvNameDerivesFromKey) {
  EXPECT_EQ(EnvName("listen.grpc"), "FERRY_LISTEN_GRPC");
  EXPECT_EQ(EnvName("cluster_probe.interval"), "FERRY_CLUSTER_PROBE_INTERVAL");
}

TEST(Config, AdminHttpIsReadOnlyWithoutATokenByDefault) {
  auto config = Load({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->admin_http.allow_writes);
  EXPECT_EQ(config->admin_http.token, "");
}

TEST(Config, AdminTokenComesFromTheEnvironmentOrAFile) {
  constexpr std::string_view kToken = "tok-0123456789abcdef";
  auto from_env = Load({.env = {{"FERRY_ADMIN_HTTP_TOKEN", std::string(kToken)}}});
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_EQ(from_env->admin_http.token, kToken);

  const std::string path = WriteYaml(fmt::format("  {}\n", kToken));
  auto from_file = LoadYaml(fmt::format("admin: {{ http: {{ token_file: {} }} }}", path));
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_EQ(from_file->admin_http.token, kToken);  // whitespace trimmed
}

TEST(Config, BadAdminTokensStopStartUpWithoutQuotingThem) {
  constexpr std::string_view kShort = "short-secret";
  auto too_short = Load({.overrides = {fmt::format("admin.http.token={}", kShort)}});
  EXPECT_THAT(Error(too_short), HasSubstr("admin.http.token: 12 characters, not in 16"));
  EXPECT_THAT(Error(too_short), Not(HasSubstr(kShort)));

  auto spaced = Load({.overrides = {"admin.http.token=has a space in the token"}});
  EXPECT_THAT(Error(spaced), HasSubstr("only printable ASCII"));
  EXPECT_THAT(Error(spaced), Not(HasSubstr("space in")));

  auto missing = Load({.overrides = {"admin.http.token_file=/nonexistent/token"}});
  EXPECT_THAT(Error(missing),
              HasSubstr("admin.http.token_file: cannot read \"/nonexistent/token\""));

  auto empty = Load({.overrides = {"admin.http.token_file=" + WriteYaml("\n")}});
  EXPECT_THAT(Error(empty), HasSubstr("holds no token"));

  auto both = Load({.overrides = {"admin.http.token=tok-0123456789abcdef",
                                  "admin.http.token_file=" + WriteYaml("x")}});
  EXPECT_THAT(Error(both), HasSubstr("not both"));
}

TEST(Config, DocsMatchTheKeyTable) {
  std::ifstream file(std::string(FERRY_SOURCE_DIR) + "/docs/configuration.md");
  std::stringstream content;
  content << file.rdbuf();
  EXPECT_EQ(content.str(), RenderMarkdown())
      << "docs/configuration.md is stale: regenerate it with "
         "`build/src/server/ferryd --print-config-docs > docs/configuration.md`";
}

}  // namespace
}  // namespace ferry::config
