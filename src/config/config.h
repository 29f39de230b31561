#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/net_address.h"
#include "security/acl_rule.h"

namespace ferry::config {

// One broker cluster Ferry talks to (`clusters.NAME`).
struct ClusterConfig {
  std::string name = {};
  std::string type = {};       // "kafka" or "embedded"
  std::string bootstrap = {};  // kafka: "host:port[,host:port...]"
  // Raw client properties handed to the broker client unchanged
  // (librdkafka for Kafka), e.g. {"linger.ms": "5"}.
  std::map<std::string, std::string> properties = {};
  // Embedded store only.
  std::string path = "./ferry-data";
  std::string durability = "sync";  // "sync" or "batch"
  absl::Duration group_commit = absl::Milliseconds(2);
  absl::Duration retention = absl::Hours(7 * 24);  // InfiniteDuration(): keep all
  int64_t retention_bytes = -1;                    // per partition; -1: no limit
};

// The cluster ferryd uses when the configuration names none: an embedded
// store in ./ferry-data, serving every topic (created on first publish).
inline constexpr std::string_view kDefaultClusterName = "local";

// Which clusters serve topics matching `topic` (a glob).
struct RouteConfig {
  std::string topic = {};
  std::vector<std::string> write = {};
  std::vector<std::string> read = {};
  bool auto_create_topics = false;
  // SDKs may publish straight to the write cluster when no node answers.
  bool fallback = false;
  bool operator==(const RouteConfig&) const = default;
};

// SDK settings the nodes push to clients (`client.*`, Admin.GetClientConfig);
// unset ones leave the SDK's default. The control topic's (Admin
// SetClientSettings) replace these once written.
struct ClientSettings {
  std::optional<absl::Duration> linger = {};
  std::optional<int64_t> max_batch_messages = {};
  std::optional<int64_t> max_batch_bytes = {};
  std::optional<absl::Duration> request_timeout = {};
  std::optional<absl::Duration> delivery_timeout = {};
  bool operator==(const ClientSettings&) const = default;
};

// The `client.*` keys.
struct ClientConfig {
  ClientSettings settings = {};
  // How often SDKs ask for their configuration again.
  absl::Duration refresh_interval = absl::Seconds(30);
};

// Limits of the publish path (`publish.*`).
struct PublishConfig {
  int64_t max_message_bytes = 1 << 20;
  int64_t max_batch_messages = 10000;
  int64_t max_batch_bytes = 16 << 20;
  int64_t max_inflight_bytes = 64 << 20;
  absl::Duration timeout = absl::Seconds(10);
  // Admission by wait: a topic's batches are refused while its oldest
  // unanswered batch has waited longer than this share of `timeout`.
  double drain_share = 0.5;
};

// The subscribe path (`subscribe.*`).
struct SubscribeConfig {
  absl::Duration commit_interval = absl::Seconds(1);
  int64_t partition_buffer_bytes = 8 << 20;
  absl::Duration group_idle_timeout = absl::Seconds(30);
  absl::Duration session_timeout = absl::Seconds(10);
  absl::Duration leave_timeout = absl::Seconds(10);
};

// Per-cluster circuit breakers for writes (`breaker.*`, DESIGN.md §2
// "Availability"; routing/circuit_breaker.h).
struct BreakerConfig {
  absl::Duration window = absl::Seconds(10);
  int64_t min_requests = 20;
  double failure_rate = 0.5;  // 0 < rate <= 1
  absl::Duration down_after = absl::Seconds(3);
  absl::Duration open_for = absl::Seconds(30);
  int64_t close_after = 3;
};

// The control plane (`control.*`, DESIGN.md §1).
struct ControlConfig {
  std::string cluster;  // empty: the first cluster by name
  std::string topic = "__ferry_control";
  absl::Duration heartbeat_interval = absl::Seconds(5);
  absl::Duration node_timeout = absl::Seconds(20);
};

// Mirror jobs on this node (`mirror.*`, src/mirror/).
struct MirrorConfig {
  int64_t max_inflight_bytes = 32 << 20;
};

// Migrations (`migration.*`, docs/migration.md).
struct MigrationConfig {
  absl::Duration max_write_hold = absl::Seconds(30);
};

// The metrics registry (`metrics.*`).
struct MetricsConfig {
  // See metrics::Registry::kDefaultMaxSeriesPerFamily for the reasoning.
  int64_t max_series_per_family = 10000;
  // Principals with series of their own in the per-principal counters
  // (metrics/principal_counters.h); later ones count as "other".
  int64_t max_principals = 100;
};

// The HTTP admin API (`admin.http.*`, src/admin_http/).
struct AdminHttpConfig {
  bool allow_writes = false;
  // The effective token (from admin.http.token or the file); empty: none.
  // A secret: never log it or put it in an error message.
  std::string token;
  std::string token_file;
};

// TLS on both listeners (`listen.tls.*`, docs/security.md). Paths of PEM
// files, re-read when they change so certificates rotate without a restart.
struct TlsConfig {
  std::string cert = {};  // certificate chain; empty: the listeners speak plain text
  std::string key = {};
  // CA bundle; when set, clients must present a certificate it signed (mutual TLS).
  std::string client_ca = {};
  absl::Duration refresh_interval = absl::Seconds(10);
  bool enabled() const { return !cert.empty(); }
};

// Authentication and ACLs (`auth.*`, docs/security.md).
struct AuthConfig {
  // Off: every client may do everything. On: every call needs a principal
  // (client certificate or bearer token) and a rule allowing it.
  bool enabled = false;
  std::string tokens_file = {};  // hashed bearer tokens (security/token_table.h)
  absl::Duration refresh_interval = absl::Seconds(10);
  // Rules from the configuration; the control topic's (ferry acl) add to them.
  std::vector<security::AclRule> acl = {};
};

// One auth.acl.N entry as written, parsed once all its fields are known.
struct AclRuleText {
  std::string principal;
  std::string resource;
  std::string operations;
};

// The whole ferryd configuration. Defaults here are the documented defaults
// (see KeyTable() and docs/configuration.md).
struct Config {
  NetAddress grpc_listen{"127.0.0.1", 7400};
  NetAddress http_listen{"127.0.0.1", 7401};
  TlsConfig tls;
  // Lets a listener bind a non-loopback address without TLS.
  bool allow_plaintext = false;
  std::string node_id;  // empty: "<hostname>:<grpc port>"
  std::string log_level = "info";
  absl::Duration shutdown_grace = absl::Seconds(10);
  absl::Duration cluster_probe_interval = absl::Seconds(1);
  absl::Duration cluster_probe_timeout = absl::Seconds(3);
  PublishConfig publish;
  SubscribeConfig subscribe;
  BreakerConfig breaker;
  ControlConfig control;
  MirrorConfig mirror;
  MigrationConfig migration;
  MetricsConfig metrics;
  ClientConfig client;
  AdminHttpConfig admin_http;
  AuthConfig auth;
  std::vector<AclRuleText> acl_text;  // parsed into auth.acl by Load
  std::map<std::string, ClusterConfig> clusters;
  std::vector<RouteConfig> routes;
};

// Where configuration comes from. Later sources override earlier ones:
// file, then environment, then overrides.
struct Sources {
  // Path of a YAML file; empty for none.
  std::string file = {};
  // The process environment (name -> value). Only names of documented keys
  // (FERRY_LISTEN_GRPC for listen.grpc, ...) are read; others are ignored so
  // the CLI's and scripts' FERRY_* variables can share an environment.
  std::map<std::string, std::string> env = {};
  // "key=value" pairs, e.g. from `--set clusters.main.bootstrap=h:9092`.
  std::vector<std::string> overrides = {};
};

// Reads, merges and validates configuration. On failure returns
// INVALID_ARGUMENT with one message naming the source and the key, e.g.
//   ferry.yaml: listen.grpc: port "99999" of "0.0.0.0:99999" is not in 1..65535
//   ferry.yaml: unknown key "listen.grcp" (did you mean "listen.grpc"?)
absl::StatusOr<Config> Load(const Sources& sources);

// Checks one route against `clusters` (the configured names): a topic glob
// (topic characters plus * and ?), a write list, known clusters, none listed
// twice in one list. INVALID_ARGUMENT names the field as "<field>.write" etc.
absl::Status ValidateRoute(const RouteConfig& route,
                           const std::set<std::string>& clusters, std::string_view field);

// Checks pushed SDK settings against their bounds (linger 0..1m, batch
// messages 1..100000, batch bytes 1 KiB..256 MiB, request timeout 1s..10m,
// delivery timeout 1s..1h). INVALID_ARGUMENT names the field as
// "<field>.linger" etc.
absl::Status ValidateClientSettings(const ClientSettings& settings,
                                    std::string_view field);

// The environment variable that sets a scalar key: listen.grpc ->
// FERRY_LISTEN_GRPC.
std::string EnvName(std::string_view key);

}  // namespace ferry::config
