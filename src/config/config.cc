#include "config/config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "common/strings.h"
#include "common/topic_name.h"
#include "config/key_table.h"

namespace ferry::config {
namespace {

using Entry = std::pair<std::string, std::string>;  // dotted key, value

// Flattens a YAML document into dotted keys: maps nest with '.', a list of
// maps gets indexes (routes.0.topic) and a list of scalars becomes one
// comma-separated value (routes.0.write = "main,standby").
absl::Status Flatten(const YAML::Node& node, const std::string& prefix,
                     std::vector<Entry>& out) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      if (!prefix.empty()) out.emplace_back(prefix, "");
      return absl::OkStatus();
    case YAML::NodeType::Scalar:
      out.emplace_back(prefix, node.Scalar());
      return absl::OkStatus();
    case YAML::NodeType::Map:
      for (const auto& item : node) {
        if (!item.first.IsScalar()) {
          return absl::InvalidArgumentError(fmt::format(
              "{}: keys must be plain strings", prefix.empty() ? "top level" : prefix));
        }
        std::string key = prefix.empty()
                              ? item.first.Scalar()
                              : fmt::format("{}.{}", prefix, item.first.Scalar());
        if (absl::Status s = Flatten(item.second, key, out); !s.ok()) return s;
      }
      return absl::OkStatus();
    case YAML::NodeType::Sequence: {
      bool all_scalars = true;
      for (const auto& item : node) all_scalars &= item.IsScalar();
      if (all_scalars) {
        std::vector<std::string> items;
        for (const auto& item : node) items.push_back(item.Scalar());
        out.emplace_back(prefix, fmt::format("{}", fmt::join(items, ",")));
        return absl::OkStatus();
      }
      for (size_t i = 0; i < node.size(); ++i) {
        if (absl::Status s = Flatten(node[i], fmt::format("{}.{}", prefix, i), out);
            !s.ok()) {
          return s;
        }
      }
      return absl::OkStatus();
    }
    case YAML::NodeType::Undefined:
      break;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Entry>> ReadFile(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return absl::InvalidArgumentError(
        fmt::format("{}: cannot read the file (missing or not readable)", path));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        fmt::format("{}:{}:{}: {}", path, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (!root.IsMap() && !root.IsNull()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: the top level must be a mapping of keys", path));
  }
  std::vector<Entry> entries;
  if (absl::Status s = Flatten(root, "", entries); !s.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {}", path, std::string(s.message())));
  }
  return entries;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min(
          {row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// `pattern` with its NAME / N / KEY parts taken from `key`, so that
// "clusters.d.pth" is compared with "clusters.d.path".
std::string FillPlaceholders(std::string_view pattern, std::string_view key) {
  std::vector<std::string_view> want = Split(pattern, '.');
  std::vector<std::string_view> have = Split(key, '.');
  std::vector<std::string> out;
  for (size_t i = 0; i < want.size(); ++i) {
    const bool placeholder = want[i] == "NAME" || want[i] == "N" || want[i] == "KEY";
    out.emplace_back(placeholder && i < have.size() ? have[i] : want[i]);
  }
  return fmt::format("{}", fmt::join(out, "."));
}

std::string UnknownKeyMessage(std::string_view key) {
  std::string best;
  size_t best_distance = 4;  // suggest only close matches
  for (const KeyInfo& info : KeyTable()) {
    std::string candidate = FillPlaceholders(info.pattern, key);
    size_t d = EditDistance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = std::move(candidate);
    }
  }
  std::string message = fmt::format("unknown key \"{}\"", key);
  if (!best.empty()) message += fmt::format(" (did you mean \"{}\"?)", best);
  return message;
}

// Replaces each ${env:NAME} in `value` by that environment variable and each
// ${file:PATH} by the file's content without trailing whitespace, so secrets
// (SASL passwords, tokens) stay out of the YAML; "$${" stands for "${".
// Messages name the reference, never what it expands to.
absl::StatusOr<std::string> ExpandReferences(
    std::string_view value, const std::map<std::string, std::string>& env) {
  std::string out;
  while (!value.empty()) {
    const size_t dollar = value.find('$');
    out += value.substr(0, dollar);
    if (dollar == std::string_view::npos) break;
    value.remove_prefix(dollar);
    if (value.starts_with("$${")) {
      out += "${";
      value.remove_prefix(3);
      continue;
    }
    if (!value.starts_with("${")) {
      out += '$';
      value.remove_prefix(1);
      continue;
    }
    const size_t close = value.find('}');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(
          fmt::format("\"{}\" has no closing '}}' (write $${{ for a literal ${{)",
                      value.substr(0, 64)));
    }
    const std::string_view reference = value.substr(0, close + 1);
    const std::string_view body = value.substr(2, close - 2);
    value.remove_prefix(close + 1);
    if (body.starts_with("env:")) {
      auto it = env.find(std::string(body.substr(4)));
      if (it == env.end()) {
        return absl::InvalidArgumentError(
            fmt::format("{}: the environment variable is not set", reference));
      }
      out += it->second;
    } else if (body.starts_with("file:")) {
      std::ifstream file{std::string(body.substr(5))};
      std::stringstream content;
      content << file.rdbuf();
      if (!file) {
        return absl::InvalidArgumentError(
            fmt::format("{}: cannot read the file (missing or not readable)", reference));
      }
      std::string text = content.str();
      while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
        text.pop_back();
      }
      out += text;
    } else {
      return absl::InvalidArgumentError(
          fmt::format("{}: not ${{env:NAME}} or ${{file:PATH}}", reference));
    }
  }
  return out;
}

absl::Status Apply(Config& config, std::string_view source, const Entry& entry,
                   const std::map<std::string, std::string>& env) {
  std::vector<std::string> captures;
  const KeyInfo* info = FindKey(entry.first, captures);
  if (info == nullptr) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {}", source, UnknownKeyMessage(entry.first)));
  }
  auto value = ExpandReferences(entry.second, env);
  if (!value.ok()) {
    return absl::InvalidArgumentError(fmt::format("{}: {}: {}", source, entry.first,
                                                  std::string(value.status().message())));
  }
  if (absl::Status s = info->apply(config, captures, *value); !s.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {}: {}", source, entry.first, std::string(s.message())));
  }
  return absl::OkStatus();
}

bool IsLoopback(const NetAddress& address) {
  return address.host == "localhost" || address.host == "::1" ||
         address.host.starts_with("127.");
}

absl::Status ValidateListeners(const Config& config) {
  const TlsConfig& tls = config.tls;
  if (tls.cert.empty() != tls.key.empty()) {
    return absl::InvalidArgumentError(
        tls.cert.empty() ? "listen.tls.cert: missing (listen.tls.key is set)"
                         : "listen.tls.key: missing (listen.tls.cert is set)");
  }
  if (!tls.client_ca.empty() && !tls.enabled()) {
    return absl::InvalidArgumentError(
        "listen.tls.client_ca: needs listen.tls.cert and listen.tls.key (mutual TLS "
        "is TLS first)");
  }
  if (config.auth.enabled && !tls.enabled()) {
    return absl::InvalidArgumentError(
        "auth.enabled: needs listen.tls.cert and listen.tls.key (credentials never "
        "travel in clear text)");
  }
  if (tls.enabled() || config.allow_plaintext) return absl::OkStatus();
  // Refused rather than warned about: a warning scrolls by unread while
  // messages and bearer tokens cross the network in clear text.
  for (const auto& [key, address] : {std::pair{"listen.grpc", &config.grpc_listen},
                                     std::pair{"listen.http", &config.http_listen}}) {
    if (!IsLoopback(*address)) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: {} is not a loopback address and listen.tls is not set; set "
          "listen.tls.cert and listen.tls.key, or listen.allow_plaintext: true to "
          "serve plain text (e.g. behind a TLS-terminating proxy)",
          key, address->ToString()));
    }
  }
  return absl::OkStatus();
}

// Checks that need the whole configuration: required keys and references.
absl::Status Validate(const Config& config) {
  if (absl::Status s = ValidateListeners(config); !s.ok()) return s;
  const PublishConfig& publish = config.publish;
  if (publish.max_message_bytes > publish.max_batch_bytes) {
    return absl::InvalidArgumentError(fmt::format(
        "publish.max_message_bytes: {} is larger than publish.max_batch_bytes {}",
        publish.max_message_bytes, publish.max_batch_bytes));
  }
  if (publish.max_batch_bytes > publish.max_inflight_bytes) {
    return absl::InvalidArgumentError(fmt::format(
        "publish.max_batch_bytes: {} is larger than publish.max_inflight_bytes {}, so "
        "such a batch could never be accepted",
        publish.max_batch_bytes, publish.max_inflight_bytes));
  }
  for (const auto& [name, cluster] : config.clusters) {
    if (cluster.type.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("clusters.{}.type: missing (one of: kafka, embedded)", name));
    }
    if (cluster.type == "embedded" && !cluster.bootstrap.empty()) {
      return absl::InvalidArgumentError(fmt::format(
          "clusters.{}.bootstrap: not used by type embedded (set path instead)", name));
    }
    if (cluster.type == "kafka" && cluster.bootstrap.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("clusters.{}.bootstrap: missing (e.g. 127.0.0.1:9092)", name));
    }
  }
  if (!config.control.cluster.empty() &&
      !config.clusters.contains(config.control.cluster)) {
    return absl::InvalidArgumentError(
        fmt::format("control.cluster: unknown cluster \"{}\"", config.control.cluster));
  }
  if (config.control.node_timeout < 2 * config.control.heartbeat_interval) {
    return absl::InvalidArgumentError(fmt::format(
        "control.node_timeout: {} is less than two control.heartbeat_interval ({}), so "
        "one late heartbeat would count a live node as departed",
        absl::FormatDuration(config.control.node_timeout),
        absl::FormatDuration(config.control.heartbeat_interval)));
  }
  if (absl::Status s = ValidateClientSettings(config.client.settings, "client");
      !s.ok()) {
    return s;
  }
  std::set<std::string> topics;
  std::set<std::string> clusters;
  for (const auto& [name, unused] : config.clusters) clusters.insert(name);
  for (size_t i = 0; i < config.routes.size(); ++i) {
    const RouteConfig& route = config.routes[i];
    const std::string field = fmt::format("routes.{}", i);
    if (absl::Status s = ValidateRoute(route, clusters, field); !s.ok()) return s;
    if (!topics.insert(route.topic).second) {
      return absl::InvalidArgumentError(
          fmt::format("{}.topic: \"{}\" is routed twice", field, route.topic));
    }
  }
  return absl::OkStatus();
}

// Reads admin.http.token_file once every source is merged and checks the
// token. Messages never quote the token.
absl::Status ResolveAdminToken(AdminHttpConfig& admin) {
  if (!admin.token_file.empty()) {
    if (!admin.token.empty()) {
      return absl::InvalidArgumentError(
          "admin.http.token_file: set admin.http.token or admin.http.token_file, not "
          "both");
    }
    std::ifstream file(admin.token_file);
    std::stringstream content;
    content << file.rdbuf();
    if (!file) {
      return absl::InvalidArgumentError(fmt::format(
          "admin.http.token_file: cannot read \"{}\" (missing or not readable)",
          admin.token_file));
    }
    admin.token = std::string(Trim(content.str()));
  }
  if (admin.token.empty()) {
    if (!admin.token_file.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("admin.http.token_file: \"{}\" holds no token", admin.token_file));
    }
    return absl::OkStatus();
  }
  if (admin.token.size() < 16 || admin.token.size() > 4096) {
    return absl::InvalidArgumentError(fmt::format(
        "admin.http.token: {} characters, not in 16..4096", admin.token.size()));
  }
  for (char c : admin.token) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          "admin.http.token: only printable ASCII without spaces (it is sent in an "
          "HTTP header)");
    }
  }
  return absl::OkStatus();
}

// auth.acl.N arrives field by field; each rule is parsed once all are in.
absl::Status ParseAclRules(Config& config) {
  for (size_t i = 0; i < config.acl_text.size(); ++i) {
    const AclRuleText& text = config.acl_text[i];
    auto rule = security::ParseAclRule(text.principal, text.resource, text.operations);
    if (!rule.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("auth.acl.{}.{}", i, std::string(rule.status().message())));
    }
    config.auth.acl.push_back(*std::move(rule));
  }
  config.acl_text.clear();
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRoute(const RouteConfig& route,
                           const std::set<std::string>& clusters,
                           std::string_view field) {
  if (route.topic.empty()) {
    return absl::InvalidArgumentError(fmt::format("{}.topic: missing", field));
  }
  if (absl::Status s = ValidateTopicGlob(route.topic); !s.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("{}.topic: {}", field, std::string(s.message())));
  }
  if (route.write.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{}.write: missing (a list of cluster names)", field));
  }
  for (const auto* list : {&route.write, &route.read}) {
    const std::string_view name = list == &route.write ? "write" : "read";
    std::set<std::string> seen;
    for (const std::string& cluster : *list) {
      if (!clusters.contains(cluster)) {
        return absl::InvalidArgumentError(
            fmt::format("{}.{}: unknown cluster \"{}\" (configured: {})", field, name,
                        cluster, fmt::join(clusters, ", ")));
      }
      if (!seen.insert(cluster).second) {
        return absl::InvalidArgumentError(
            fmt::format("{}.{}: cluster \"{}\" is listed twice", field, name, cluster));
      }
    }
  }
  return absl::OkStatus();
}

namespace {

absl::Status CheckBounds(std::string_view field,
                         const std::optional<absl::Duration>& value, absl::Duration min,
                         absl::Duration max) {
  if (!value || (*value >= min && *value <= max)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      fmt::format("{}: {} is not in {}..{}", field, absl::FormatDuration(*value),
                  absl::FormatDuration(min), absl::FormatDuration(max)));
}

absl::Status CheckBounds(std::string_view field, const std::optional<int64_t>& value,
                         int64_t min, int64_t max) {
  if (!value || (*value >= min && *value <= max)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      fmt::format("{}: {} is not in {}..{}", field, *value, min, max));
}

}  // namespace

absl::Status ValidateClientSettings(const ClientSettings& settings,
                                    std::string_view field) {
  for (absl::Status s :
       {CheckBounds(fmt::format("{}.linger", field), settings.linger,
                    absl::ZeroDuration(), absl::Minutes(1)),
        CheckBounds(fmt::format("{}.max_batch_messages", field),
                    settings.max_batch_messages, 1, 100000),
        CheckBounds(fmt::format("{}.max_batch_bytes", field), settings.max_batch_bytes,
                    1024, int64_t{256} << 20),
        CheckBounds(fmt::format("{}.request_timeout", field), settings.request_timeout,
                    absl::Seconds(1), absl::Minutes(10)),
        CheckBounds(fmt::format("{}.delivery_timeout", field), settings.delivery_timeout,
                    absl::Seconds(1), absl::Hours(1))}) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string EnvName(std::string_view key) {
  std::string name = fmt::format("FERRY_{}", key);
  for (char& c : name) {
    c = c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

absl::StatusOr<Config> Load(const Sources& sources) {
  Config config;
  if (!sources.file.empty()) {
    auto entries = ReadFile(sources.file);
    if (!entries.ok()) return entries.status();
    for (const Entry& entry : *entries) {
      if (absl::Status s = Apply(config, sources.file, entry, sources.env); !s.ok()) {
        return s;
      }
    }
  }
  for (const KeyInfo& info : KeyTable()) {
    if (HasPlaceholder(info.pattern)) continue;  // no environment name
    std::string name = EnvName(info.pattern);
    auto it = sources.env.find(name);
    if (it == sources.env.end()) continue;
    if (absl::Status s =
            Apply(config, name, {std::string(info.pattern), it->second}, sources.env);
        !s.ok()) {
      return s;
    }
  }
  for (const std::string& text : sources.overrides) {
    size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          fmt::format("--set: \"{}\" is not key=value", text));
    }
    if (absl::Status s = Apply(config, "--set", {text.substr(0, eq), text.substr(eq + 1)},
                               sources.env);
        !s.ok()) {
      return s;
    }
  }
  if (config.clusters.empty()) {
    // DESIGN.md §4: with no configuration, ferryd runs on the embedded store
    // and the first `ferry produce` works: every topic routes there and is
    // created when first published to.
    const std::string name(kDefaultClusterName);
    config.clusters[name] = {.name = name, .type = "embedded"};
    if (config.routes.empty()) {
      config.routes.push_back(
          {.topic = "*", .write = {name}, .read = {name}, .auto_create_topics = true});
    }
  }
  absl::Status s = ResolveAdminToken(config.admin_http);
  if (s.ok()) s = ParseAclRules(config);
  if (s.ok()) s = Validate(config);
  if (!s.ok()) {
    const std::string source = sources.file.empty() ? "config" : sources.file;
    return absl::InvalidArgumentError(
        fmt::format("{}: {}", source, std::string(s.message())));
  }
  return config;
}

}  // namespace ferry::config
