#include "config/key_table.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>

#include "common/strings.h"

namespace ferry::config {
namespace {

using Captures = std::vector<std::string>;

absl::Status Invalid(std::string why) {
  return absl::InvalidArgumentError(std::move(why));
}

absl::Status ParseDurationIn(std::string_view value, absl::Duration min,
                             absl::Duration max, absl::Duration& out) {
  absl::Duration d;
  if (!absl::ParseDuration(std::string(value), &d)) {
    return Invalid(
        fmt::format("\"{}\" is not a duration (write e.g. 5s, 250ms, 1m)", value));
  }
  if (d < min || d > max) {
    return Invalid(fmt::format("{} is not in {}..{}", value, absl::FormatDuration(min),
                               absl::FormatDuration(max)));
  }
  out = d;
  return absl::OkStatus();
}

absl::Status ParseBool(std::string_view value, bool& out) {
  if (value == "true") {
    out = true;
  } else if (value == "false") {
    out = false;
  } else {
    return Invalid(fmt::format("\"{}\" is not true or false", value));
  }
  return absl::OkStatus();
}

// Bounds are checked with the rest of the settings (ValidateClientSettings),
// which Admin SetClientSettings shares.
absl::Status ParseOptionalDuration(std::string_view value,
                                   std::optional<absl::Duration>& out) {
  absl::Duration d;
  if (absl::Status s =
          ParseDurationIn(value, absl::ZeroDuration(), absl::InfiniteDuration(), d);
      !s.ok()) {
    return s;
  }
  out = d;
  return absl::OkStatus();
}

absl::Status ParseOptionalInt(std::string_view value, std::optional<int64_t>& out) {
  int64_t parsed = 0;
  if (!ParseInt(value, parsed)) {
    return Invalid(fmt::format("\"{}\" is not a whole number", value));
  }
  out = parsed;
  return absl::OkStatus();
}

std::vector<std::string> ParseList(std::string_view value) {
  std::vector<std::string> out;
  for (std::string_view item : Split(value, ',')) {
    item = Trim(item);
    if (!item.empty()) out.emplace_back(item);
  }
  return out;
}

absl::Status SetListen(NetAddress& out, std::string_view value) {
  auto address = ParseNetAddress(value);
  if (!address.ok()) return address.status();
  out = *std::move(address);
  return absl::OkStatus();
}

absl::Status SetPath(std::string& out, std::string_view value) {
  if (value.empty()) return Invalid("must not be empty");
  out = std::string(value);
  return absl::OkStatus();
}

absl::Status ParseIntIn(std::string_view value, int64_t min, int64_t max, int64_t& out) {
  int64_t parsed = 0;
  if (!ParseInt(value, parsed)) {
    return Invalid(fmt::format("\"{}\" is not a whole number", value));
  }
  if (parsed < min || parsed > max) {
    return Invalid(fmt::format("{} is not in {}..{}", parsed, min, max));
  }
  out = parsed;
  return absl::OkStatus();
}

// "50%" or "50": a share of 1..100 percent, stored as a fraction.
absl::Status ParsePercent(std::string_view value, double& out) {
  std::string_view digits = value;
  if (digits.ends_with('%')) digits.remove_suffix(1);
  int64_t percent = 0;
  if (!ParseInt(digits, percent)) {
    return Invalid(
        fmt::format("\"{}\" is not a whole percentage (write e.g. 50%)", value));
  }
  if (percent < 1 || percent > 100) {
    return Invalid(fmt::format("{}% is not in 1%..100%", percent));
  }
  out = static_cast<double>(percent) / 100;
  return absl::OkStatus();
}

ClusterConfig& Cluster(Config& c, const Captures& captures) {
  ClusterConfig& cluster = c.clusters[captures[0]];
  cluster.name = captures[0];
  return cluster;
}

// Routes arrive as routes.N.field; indexes may arrive in any order, and the
// loader checks afterwards that none is missing.
absl::StatusOr<RouteConfig*> Route(Config& c, const Captures& captures) {
  size_t index = 0;
  if (!ParseInt(captures[0], index) || index >= 1000) {
    return Invalid(fmt::format("route index {} is not in 0..999", captures[0]));
  }
  if (c.routes.size() <= index) c.routes.resize(index + 1);
  return &c.routes[index];
}

absl::StatusOr<AclRuleText*> AclText(Config& c, const Captures& captures) {
  size_t index = 0;
  if (!ParseInt(captures[0], index) || index >= 10000) {
    return Invalid(fmt::format("rule index {} is not in 0..9999", captures[0]));
  }
  if (c.acl_text.size() <= index) c.acl_text.resize(index + 1);
  return &c.acl_text[index];
}

constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error"};
constexpr std::string_view kClusterTypes[] = {"kafka", "embedded"};
constexpr std::string_view kDurabilities[] = {"sync", "batch"};

constexpr auto kKeys = std::to_array<KeyInfo>({
    {"listen.grpc", "host:port", "127.0.0.1:7400", "port 1..65535",
     "Address of the gRPC API (Publisher, Subscriber, Admin, health, reflection).",
     [](Config& c, const Captures&, std::string_view v) {
       return SetListen(c.grpc_listen, v);
     }},
    {"listen.http", "host:port", "127.0.0.1:7401", "port 1..65535",
     "Address of the HTTP listener: /healthz, /metrics (Prometheus), the admin API "
     "under /api/v1 (see admin.http.*) and the web console at /ui/.",
     [](Config& c, const Captures&, std::string_view v) {
       return SetListen(c.http_listen, v);
     }},
    {"listen.tls.cert", "path", "(none: plain text)", "a PEM certificate chain",
     "Certificate (chain) both listeners present; with listen.tls.key it turns TLS on "
     "for gRPC and HTTP. Re-read when the file changes (see "
     "listen.tls.refresh_interval).",
     [](Config& c, const Captures&, std::string_view v) {
       return SetPath(c.tls.cert, v);
     }},
    {"listen.tls.key", "path", "(none)", "a PEM private key matching listen.tls.cert",
     "Private key of listen.tls.cert.",
     [](Config& c, const Captures&, std::string_view v) {
       return SetPath(c.tls.key, v);
     }},
    {"listen.tls.client_ca", "path", "(none)", "a PEM CA bundle",
     "Turns on mutual TLS: both listeners accept only clients presenting a certificate "
     "signed by one of these CAs (with auth.enabled, a bearer token may stand instead); "
     "its subject CN or SAN becomes the client's principal.",
     [](Config& c, const Captures&, std::string_view v) {
       return SetPath(c.tls.client_ca, v);
     }},
    {"listen.tls.refresh_interval", "duration", "10s", "1s..1h",
     "How often the listeners look for new certificate, key and CA files; established "
     "connections and streams keep their session.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::Seconds(1), absl::Hours(1),
                              c.tls.refresh_interval);
     }},
    {"listen.allow_plaintext", "bool", "false", "true, false",
     "Let listen.grpc or listen.http bind a non-loopback address without listen.tls "
     "(e.g. behind a TLS-terminating proxy). Off, ferryd refuses to start that way.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseBool(v, c.allow_plaintext);
     }},
    {"node.id", "string", "<hostname>:<grpc port>", "1..128 characters",
     "Name of this node in logs, metrics and the admin API; unique per tier.",
     [](Config& c, const Captures&, std::string_view v) {
       if (v.empty() || v.size() > 128) return Invalid("must be 1..128 characters");
       c.node_id = std::string(v);
       return absl::OkStatus();
     }},
    {"log.level", "enum", "info", "trace, debug, info, warn, error",
     "Lowest severity written to the log (stderr).",
     [](Config& c, const Captures&, std::string_view v) {
       for (std::string_view level : kLogLevels) {
         if (v == level) {
           c.log_level = std::string(v);
           return absl::OkStatus();
         }
       }
       return Invalid(
           fmt::format("\"{}\" is not one of {}", v, fmt::join(kLogLevels, ", ")));
     }},
    {"shutdown.grace", "duration", "10s", "0s..5m",
     "On SIGTERM/SIGINT, how long in-flight calls may finish before they are cancelled "
     "(publishes still waiting for a broker then fail with UNAVAILABLE). Consumers then "
     "leave within one subscribe.leave_timeout (plus min(leave_timeout, 2s) for the "
     "mirror "
     "jobs and again for the groups when an earlier step used it up) and the clusters "
     "close; if shutdown has not finished by the margin subscribe.leave_timeout and "
     "cluster_probe.timeout give (43s after the grace with the defaults and one "
     "cluster, of it max(0, 30s - grace) for a start in progress, the control "
     "topic's or a mirror job's, whose Kafka admin call (30s) goes on after it is "
     "cut when draining begins: 20s with the defaults), ferryd logs what was still "
     "running and exits with code 3.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::ZeroDuration(), absl::Minutes(5),
                              c.shutdown_grace);
     }},
    {"cluster_probe.interval", "duration", "1s", "100ms..5m",
     "How often each cluster's metadata is fetched to track its state (up/down). "
     "With breaker.down_after it bounds how fast a dead cluster without traffic "
     "loses its writes: interval + cluster_probe.timeout.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::Milliseconds(100), absl::Minutes(5),
                              c.cluster_probe_interval);
     }},
    {"cluster_probe.timeout", "duration", "3s", "100ms..1m",
     "How long one metadata request may take before the cluster counts as down.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::Milliseconds(100), absl::Minutes(1),
                              c.cluster_probe_timeout);
     }},
    {"publish.max_message_bytes", "bytes", "1048576", "1024..67108864",
     "Largest message (key + value + headers) accepted; larger ones fail "
     "INVALID_ARGUMENT. Keep it within the brokers' message.max.bytes.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseIntIn(v, 1024, 64 << 20, c.publish.max_message_bytes);
     }},
    {"publish.max_batch_messages", "count", "10000", "1..100000",
     "Most messages in one Publish batch; more fail the call INVALID_ARGUMENT.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseIntIn(v, 1, 100000, c.publish.max_batch_messages);
     }},
    {"publish.max_batch_bytes", "bytes", "16777216", "1024..268435456",
     "Largest Publish batch in bytes; larger ones fail the call INVALID_ARGUMENT.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseIntIn(v, 1024, 256 << 20, c.publish.max_batch_bytes);
     }},
    {"publish.max_inflight_bytes", "bytes", "67108864", "1048576..17179869184",
     "Bytes of messages this node holds unacknowledged. At the limit, streams stop "
     "being read and unary calls fail RESOURCE_EXHAUSTED (retryable).",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseIntIn(v, 1 << 20, int64_t{16} << 30, c.publish.max_inflight_bytes);
     }},
    {"publish.timeout", "duration", "10s", "1s..5m",
     "How long a message may wait for the broker's acknowledgement before it fails "
     "UNAVAILABLE (retryable), e.g. while its cluster is down.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::Seconds(1), absl::Minutes(5), c.publish.timeout);
     }},
    {"publish.drain_share", "percent", "50%", "1%..100%",
     "Admission by wait: while a topic's oldest batch not yet acknowledged by the "
     "broker has waited longer than this share of publish.timeout, further batches for "
     "that topic fail RESOURCE_EXHAUSTED (retryable) without being written, instead of "
     "being queued to time out. Other topics are not affected.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParsePercent(v, c.publish.drain_share);
     }},
    {"subscribe.commit_interval", "duration", "1s", "10ms..1m",
     "How often each group's acked prefix (lowest unacked offset per partition) is "
     "committed. Revokes and closes commit at once as well.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::Milliseconds(10), absl::Minutes(1),
                              c.subscribe.commit_interval);
     }},
    {"subscribe.partition_buffer_bytes", "bytes", "8388608", "65536..1073741824",
     "Bytes of fetched, not yet acked messages a node holds per partition; beyond "
     "it the node stops taking the partition's records until acks free space (Kafka: "
     "librdkafka keeps up to 8 MiB more prefetched per partition, then stops "
     "fetching it).",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseIntIn(v, 64 << 10, int64_t{1} << 30,
                         c.subscribe.partition_buffer_bytes);
     }},
    {"subscribe.group_idle_timeout", "duration", "30s", "0s..1h",
     "How long a node stays a member of a consumer group after its last stream for "
     "the group closed, so reconnecting clients do not cause rebalances.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::ZeroDuration(), absl::Hours(1),
                              c.subscribe.group_idle_timeout);
     }},
    {"subscribe.leave_timeout", "duration", "10s", "1s..10s",
     "How long a node waits for one member of a consumer group to leave (final "
     "commit, closing its broker consumer) when the group goes idle, stops reading a "
     "cluster, or the node shuts down. A member still leaving then is abandoned: an "
     "error names the group and cluster, ferry_consumers_abandoned_total{kind=\"group\"} "
     "counts "
     "it, and its broker client is left to finish on its own (memory and threads stay "
     "allocated until it does); what was acked since the last commit is delivered "
     "again. Other groups leave meanwhile. Also the bound on a mirror job's member "
     "leaving when the job stops and on the control topic's reader closing at "
     "shutdown (abandoned the same way, with an error naming them; "
     "ferry_consumers_closing shows those still closing). At shutdown all of them "
     "(reader, mirror jobs, groups) share one leave_timeout, from when the control "
     "plane stops, but each step gets at least min(leave_timeout, 2s); the watchdog "
     "ends the node at max(shutdown.grace, 30s: one admin call of a start in progress, "
     "the control topic's or a mirror job's, cut when draining begins) + 4s + "
     "leave_timeout + 2 x min(leave_timeout, 2s) + (cluster_probe.timeout + 2s) per "
     "cluster.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::Seconds(1), absl::Seconds(10),
                              c.subscribe.leave_timeout);
     }},
    {"subscribe.session_timeout", "duration", "10s", "6s..5m",
     "How long a node may be silent before the broker's group coordinator moves its "
     "partitions to other nodes (Kafka session.timeout.ms).",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::Seconds(6), absl::Minutes(5),
                              c.subscribe.session_timeout);
     }},
    {"breaker.window", "duration", "10s", "1s..10m",
     "Circuit breakers: each cluster's publish outcomes are counted over this "
     "sliding window (in tenths of it) to decide whether its writes move to the "
     "next cluster of their route.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::Seconds(1), absl::Minutes(10), c.breaker.window);
     }},
    {"breaker.min_requests", "count", "20", "1..1000000",
     "Fewest outcomes in the window before its failure rate can open a breaker, so a "
     "few failures on a quiet cluster do not move its traffic.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseIntIn(v, 1, 1000000, c.breaker.min_requests);
     }},
    {"breaker.failure_rate", "percent", "50%", "1%..100%",
     "Share of failed outcomes in the window that opens a breaker. Only failures "
     "that say the cluster is unhealthy count (UNAVAILABLE, DEADLINE_EXCEEDED: "
     "timeouts, transport errors, not enough replicas), never rejected messages, "
     "nor messages that timed out in the node's queue while the cluster "
     "acknowledged others (a busy cluster, not a failed one).",
     [](Config& c, const Captures&, std::string_view v) {
       return ParsePercent(v, c.breaker.failure_rate);
     }},
    {"breaker.down_after", "duration", "3s", "1s..10m",
     "A breaker also opens when its cluster's metadata probe has failed for this "
     "long (since the last answer), so a dead cluster without traffic loses its "
     "writes too.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::Seconds(1), absl::Minutes(10),
                              c.breaker.down_after);
     }},
    {"breaker.open_for", "duration", "30s", "1s..1h",
     "How long an open breaker keeps writes away before probe messages (to "
     "__ferry_probe on the cluster) test it. A failed probe reopens it for twice as "
     "long (up to 8 times this), until it has stayed closed that long again.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::Seconds(1), absl::Hours(1), c.breaker.open_for);
     }},
    {"breaker.close_after", "count", "3", "1..100",
     "Consecutive successful probe messages that close a half-open breaker and bring "
     "writes back to its cluster.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseIntIn(v, 1, 100, c.breaker.close_after);
     }},
    {"control.cluster", "string", "(first cluster by name)", "a configured cluster",
     "Cluster holding the control topic, through which nodes share group pause state "
     "and seek commands.",
     [](Config& c, const Captures&, std::string_view v) {
       c.control.cluster = std::string(v);
       return absl::OkStatus();
     }},
    {"control.topic", "string", "__ferry_control", "a topic name",
     "Compacted topic of the control plane; created (one partition) when missing.",
     [](Config& c, const Captures&, std::string_view v) {
       if (v.empty()) return absl::InvalidArgumentError("empty topic name");
       c.control.topic = std::string(v);
       return absl::OkStatus();
     }},
    {"control.heartbeat_interval", "duration", "5s", "100ms..10s",
     "How often each node writes its heartbeat (node/<id> in the control topic: "
     "version, start time, the control records it applied); ferry nodes lists them. "
     "A node also beats at once after applying a record a migration waits for, so "
     "a longer interval does not slow migrations; it bounds how many records the "
     "control topic gains (17,280 per node per day at 5s).",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::Milliseconds(100), absl::Seconds(10),
                              c.control.heartbeat_interval);
     }},
    {"control.node_timeout", "duration", "20s", "1s..5m",
     "A node not heard from for longer counts as departed (lost): listed as such, "
     "and a migration's barrier stops waiting for it. Keep it several heartbeat "
     "intervals.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::Seconds(1), absl::Minutes(5),
                              c.control.node_timeout);
     }},
    {"mirror.max_inflight_bytes", "bytes", "33554432", "1048576..17179869184",
     "Per mirror job: bytes of records read from the source and not yet "
     "acknowledged by the target. At the limit the job stops fetching until half "
     "of them are acknowledged; with the source consumer's prefetch this bounds "
     "a job's memory.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseIntIn(v, 1 << 20, int64_t{16} << 30, c.mirror.max_inflight_bytes);
     }},
    {"migration.max_write_hold", "duration", "30s", "1s..10m",
     "Longest a node keeps a migration's write hold (publishes to the topic queue "
     "while its write cluster changes). A node past it releases the hold by itself, "
     "logs an error and counts ferry_write_hold_expired_total: a coordinator that "
     "died holding must not stop publishing for good (docs/migration.md). The "
     "stage's own work inside a hold (offset translation) ends min(5s, half of it) "
     "before it, left to release the hold.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::Seconds(1), absl::Minutes(10),
                              c.migration.max_write_hold);
     }},
    {"client.linger", "duration", "(SDK default)", "0..1m",
     "Pushed to SDKs: how long a message may wait for companions in a batch. An "
     "application's explicit setting wins; Admin SetClientSettings replaces the "
     "client.* settings at runtime.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseOptionalDuration(v, c.client.settings.linger);
     }},
    {"client.max_batch_messages", "count", "(SDK default)", "1..100000",
     "Pushed to SDKs: most messages in one batch.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseOptionalInt(v, c.client.settings.max_batch_messages);
     }},
    {"client.max_batch_bytes", "bytes", "(SDK default)", "1024..268435456",
     "Pushed to SDKs: most bytes in one batch.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseOptionalInt(v, c.client.settings.max_batch_bytes);
     }},
    {"client.request_timeout", "duration", "(SDK default)", "1s..10m",
     "Pushed to SDKs: deadline of one batch call.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseOptionalDuration(v, c.client.settings.request_timeout);
     }},
    {"client.delivery_timeout", "duration", "(SDK default)", "1s..1h",
     "Pushed to SDKs: bound on a message's life, retries included.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseOptionalDuration(v, c.client.settings.delivery_timeout);
     }},
    {"client.refresh_interval", "duration", "30s", "1s..1h",
     "How often SDKs ask a node for their configuration again (Admin "
     "GetClientConfig).",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::Seconds(1), absl::Hours(1),
                              c.client.refresh_interval);
     }},
    {"metrics.max_series_per_family", "count", "10000", "1..1000000",
     "Most series one metric family holds, so label values chosen by clients (group "
     "names) cannot grow memory and /metrics without limit. Beyond it new series are "
     "not exported; ferry_metrics_series_dropped_total{family} counts the refusals.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseIntIn(v, 1, 1000000, c.metrics.max_series_per_family);
     }},
    {"metrics.max_principals", "count", "100", "0..10000",
     "With auth.enabled: principals whose published and delivered messages are "
     "counted under their own name (ferry_principal_published_messages_total, "
     "ferry_principal_delivered_messages_total); later ones share principal=\"other\".",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseIntIn(v, 0, 10000, c.metrics.max_principals);
     }},
    {"admin.http.allow_writes", "bool", "false", "true, false",
     "Let any HTTP client reaching listen.http change state through the admin API "
     "(create and delete topics, seek, pause, routes, ...). Off, only requests with "
     "Authorization: Bearer <admin.http.token> may; reads are always open.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseBool(v, c.admin_http.allow_writes);
     }},
    {"admin.http.token", "secret", "(none)", "16..4096 characters",
     "Bearer token that lets an HTTP request change state while allow_writes is off. "
     "Prefer FERRY_ADMIN_HTTP_TOKEN or admin.http.token_file to the YAML file; never "
     "logged.",
     [](Config& c, const Captures&, std::string_view v) {
       c.admin_http.token = std::string(v);
       return absl::OkStatus();
     }},
    {"admin.http.token_file", "path", "(none)", "a readable file",
     "File holding admin.http.token (surrounding whitespace ignored), read at "
     "start-up. Set one of the two.",
     [](Config& c, const Captures&, std::string_view v) {
       return SetPath(c.admin_http.token_file, v);
     }},
    {"auth.enabled", "bool", "false", "true, false",
     "Require a principal (client certificate with listen.tls.client_ca, or a bearer "
     "token from auth.tokens_file) on every gRPC call and HTTP route but /healthz, and "
     "an auth.acl rule (or one added with `ferry acl add`) allowing what it does; "
     "everything else is denied. Needs listen.tls.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseBool(v, c.auth.enabled);
     }},
    {"auth.tokens_file", "path", "(none)", "a readable tokens file",
     "Bearer tokens as salted SHA-256 hashes, one per line (`ferry token create` "
     "prints a token and its line). Re-read when it changes: removing a line revokes "
     "the token.",
     [](Config& c, const Captures&, std::string_view v) {
       return SetPath(c.auth.tokens_file, v);
     }},
    {"auth.refresh_interval", "duration", "10s", "1s..1h",
     "How often auth.tokens_file is looked at for changes.",
     [](Config& c, const Captures&, std::string_view v) {
       return ParseDurationIn(v, absl::Seconds(1), absl::Hours(1),
                              c.auth.refresh_interval);
     }},
    {"auth.acl.N.principal", "string", "(required)", "a principal, or * for any",
     "Who the rule is for: a client certificate's subject CN (else its first SAN) or a "
     "token's principal; * for every authenticated client.",
     [](Config& c, const Captures& k, std::string_view v) {
       auto rule = AclText(c, k);
       if (!rule.ok()) return rule.status();
       (*rule)->principal = std::string(v);
       return absl::OkStatus();
     }},
    {"auth.acl.N.resource", "string", "(required)",
     "topic:GLOB, group:GLOB, cluster, admin",
     "What the rule covers: topics or groups matching a glob (* and ?), the cluster "
     "(listing topics, groups, nodes, routes; draining) or the node's administration "
     "(routes, mirrors, migrations, client settings, ACLs).",
     [](Config& c, const Captures& k, std::string_view v) {
       auto rule = AclText(c, k);
       if (!rule.ok()) return rule.status();
       (*rule)->resource = std::string(v);
       return absl::OkStatus();
     }},
    {"auth.acl.N.operations", "list", "(required)",
     "publish, subscribe, describe, seek, pause, admin, all",
     "What the principal may do there; docs/security.md lists the operation of each RPC "
     "and HTTP route.",
     [](Config& c, const Captures& k, std::string_view v) {
       auto rule = AclText(c, k);
       if (!rule.ok()) return rule.status();
       (*rule)->operations = std::string(v);
       return absl::OkStatus();
     }},
    {"clusters.NAME.type", "enum", "(required)", "kafka, embedded",
     "Broker type of cluster NAME: a Kafka cluster, or the embedded store (RocksDB "
     "in one directory, for a single machine).",
     [](Config& c, const Captures& k, std::string_view v) {
       for (std::string_view type : kClusterTypes) {
         if (v == type) {
           Cluster(c, k).type = std::string(v);
           return absl::OkStatus();
         }
       }
       return Invalid(
           fmt::format("\"{}\" is not one of {}", v, fmt::join(kClusterTypes, ", ")));
     }},
    {"clusters.NAME.bootstrap", "host:port list", "(required for kafka)",
     "comma-separated, ports 1..65535",
     "Brokers to bootstrap from, e.g. 10.0.0.1:9092,10.0.0.2:9092.",
     [](Config& c, const Captures& k, std::string_view v) {
       auto list = ParseAddressList(v);
       if (!list.ok()) return list.status();
       Cluster(c, k).bootstrap = std::string(v);
       return absl::OkStatus();
     }},
    {"clusters.NAME.properties.KEY", "string", "(none)",
     "checked by the client library at start-up",
     "Raw client property passed through unchanged (librdkafka for Kafka), "
     "e.g. clusters.main.properties.linger.ms: 5. Ferry's own defaults, which these "
     "override: linger.ms 1 for producers, fetch.wait.max.ms 100 for consumers "
     "(librdkafka: 5 and 500). acks=all and enable.idempotence=true are required.",
     [](Config& c, const Captures& k, std::string_view v) {
       Cluster(c, k).properties[k[1]] = std::string(v);
       return absl::OkStatus();
     }},
    {"clusters.NAME.path", "path", "./ferry-data", "a writable directory",
     "Embedded store: directory of its data (created if missing; one ferryd at a "
     "time).",
     [](Config& c, const Captures& k, std::string_view v) {
       if (v.empty()) return Invalid("must not be empty");
       Cluster(c, k).path = std::string(v);
       return absl::OkStatus();
     }},
    {"clusters.NAME.durability", "enum", "sync", "sync, batch",
     "Embedded store: when a publish is acknowledged. Both fsync first; sync writes "
     "what is queued at once, batch waits up to group_commit for more records to "
     "share one fsync (higher throughput, more latency).",
     [](Config& c, const Captures& k, std::string_view v) {
       for (std::string_view durability : kDurabilities) {
         if (v == durability) {
           Cluster(c, k).durability = std::string(v);
           return absl::OkStatus();
         }
       }
       return Invalid(
           fmt::format("\"{}\" is not one of {}", v, fmt::join(kDurabilities, ", ")));
     }},
    {"clusters.NAME.group_commit", "duration", "2ms", "0s..1s",
     "Embedded store, durability batch: the longest a record waits for others to "
     "share its fsync.",
     [](Config& c, const Captures& k, std::string_view v) {
       return ParseDurationIn(v, absl::ZeroDuration(), absl::Seconds(1),
                              Cluster(c, k).group_commit);
     }},
    {"clusters.NAME.retention", "duration", "168h", "1m..inf",
     "Embedded store: retention.ms of topics created without one; records older "
     "than this are deleted (inf keeps everything).",
     [](Config& c, const Captures& k, std::string_view v) {
       return ParseDurationIn(v, absl::Minutes(1), absl::InfiniteDuration(),
                              Cluster(c, k).retention);
     }},
    {"clusters.NAME.retention_bytes", "bytes", "-1", "-1 or 1..2^62",
     "Embedded store: retention.bytes of topics created without one; each "
     "partition keeps at most this much, oldest records go first (-1: no limit).",
     [](Config& c, const Captures& k, std::string_view v) {
       int64_t bytes = 0;
       if (absl::Status s = ParseIntIn(v, -1, int64_t{1} << 62, bytes); !s.ok()) return s;
       if (bytes == 0) return Invalid("0 would keep nothing; use -1 for no limit");
       Cluster(c, k).retention_bytes = bytes;
       return absl::OkStatus();
     }},
    {"routes.N.topic", "glob", "(required)", "topic characters, * and ? wildcards",
     "Topics this route applies to, e.g. orders.*; the most specific match wins. YAML "
     "routes seed a fresh control topic; afterwards the control topic's routes (ferry "
     "routes) win.",
     [](Config& c, const Captures& k, std::string_view v) {
       if (v.empty()) return Invalid("must not be empty");
       auto route = Route(c, k);
       if (!route.ok()) return route.status();
       (*route)->topic = std::string(v);
       return absl::OkStatus();
     }},
    {"routes.N.write", "cluster list", "(required)", "names under clusters",
     "Clusters written, in preference order: the first healthy one takes writes.",
     [](Config& c, const Captures& k, std::string_view v) {
       auto route = Route(c, k);
       if (!route.ok()) return route.status();
       (*route)->write = ParseList(v);
       return absl::OkStatus();
     }},
    {"routes.N.read", "cluster list", "the write list", "names under clusters",
     "Clusters consumed (dual consume during failover and migration).",
     [](Config& c, const Captures& k, std::string_view v) {
       auto route = Route(c, k);
       if (!route.ok()) return route.status();
       (*route)->read = ParseList(v);
       return absl::OkStatus();
     }},
    {"routes.N.auto_create_topics", "bool", "false", "true, false",
     "Let publishing create a missing topic on the write cluster.",
     [](Config& c, const Captures& k, std::string_view v) {
       auto route = Route(c, k);
       if (!route.ok()) return route.status();
       return ParseBool(v, (*route)->auto_create_topics);
     }},
    {"routes.N.fallback", "bool", "false", "true, false",
     "Let SDKs with fallback enabled publish straight to the write cluster (Kafka) "
     "when no node answers; consumers wait for the nodes.",
     [](Config& c, const Captures& k, std::string_view v) {
       auto route = Route(c, k);
       if (!route.ok()) return route.status();
       return ParseBool(v, (*route)->fallback);
     }},
});

bool IsIndex(std::string_view segment) {
  return !segment.empty() && std::all_of(segment.begin(), segment.end(),
                                         [](char c) { return c >= '0' && c <= '9'; });
}

bool Match(std::string_view pattern, std::string_view key, Captures& captures) {
  std::vector<std::string_view> want = Split(pattern, '.');
  std::vector<std::string_view> have = Split(key, '.');
  captures.clear();
  for (size_t i = 0; i < want.size(); ++i) {
    if (i >= have.size() || have[i].empty()) return false;
    if (want[i] == "KEY") {
      captures.push_back(fmt::format("{}", fmt::join(have.begin() + i, have.end(), ".")));
      return true;
    }
    if (want[i] == "NAME" || (want[i] == "N" && IsIndex(have[i]))) {
      captures.emplace_back(have[i]);
    } else if (want[i] != have[i]) {
      return false;
    }
  }
  return want.size() == have.size();
}

}  // namespace

std::span<const KeyInfo> KeyTable() { return kKeys; }

const KeyInfo* FindKey(std::string_view key, Captures& captures) {
  for (const KeyInfo& info : kKeys) {
    if (Match(info.pattern, key, captures)) return &info;
  }
  return nullptr;
}

bool HasPlaceholder(std::string_view pattern) {
  for (std::string_view segment : Split(pattern, '.')) {
    if (segment == "NAME" || segment == "N" || segment == "KEY") return true;
  }
  return false;
}

std::string RenderMarkdown() {
  std::string out =
      "# Configuration\n\n"
      "<!-- Generated by `ferryd --print-config-docs` from src/config/key_table.cc;"
      " a test keeps the two equal. -->\n\n"
      "`ferryd` reads one YAML file (`--config FILE` or `FERRY_CONFIG`), then "
      "`FERRY_*` environment variables, then `--set key=value` flags; later "
      "sources win. Every key is optional. A scalar key `a.b` is set from the "
      "environment as `FERRY_A_B`. Unknown keys and out-of-bounds values stop "
      "`ferryd` at start-up with one message naming the key. Without any "
      "`clusters`, `ferryd` uses one embedded cluster named `local` in "
      "`./ferry-data` for every topic.\n\n"
      "Any value may hold `${env:NAME}` (an environment variable) or `${file:PATH}` "
      "(a file's content without trailing whitespace), so secrets such as "
      "`clusters.NAME.properties.sasl.password` stay out of the YAML; `$${` writes a "
      "literal `${`.\n\n"
      "| key | type | default | bounds | description |\n"
      "|---|---|---|---|---|\n";
  for (const KeyInfo& info : kKeys) {
    out += fmt::format("| `{}` | {} | `{}` | {} | {} |\n", info.pattern, info.type,
                       info.default_value, info.bounds, info.description);
  }
  out +=
      ("\nExample:\n\n```yaml\n"
       "listen: { grpc: 127.0.0.1:7400, http: 127.0.0.1:7401 }\n"
       "clusters:\n"
       "  main:    { type: kafka, bootstrap: 127.0.0.1:9092, properties: { linger.ms: 5 "
       "} }\n"
       "  standby: { type: kafka, bootstrap: 127.0.0.1:9192 }\n"
       "routes:\n"
       "  - topic: \"orders.*\"\n"
       "    write: [main, standby]\n"
       "    read:  [main, standby]\n"
       "```\n");
  return out;
}

}  // namespace ferry::config
