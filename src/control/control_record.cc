#include "control/control_record.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <set>

#include "absl/synchronization/mutex.h"
#include "common/strings.h"

namespace ferry::control {
namespace {

constexpr std::string_view kPausePrefix = "pause/";
constexpr std::string_view kSeekPrefix = "seek/";
constexpr std::string_view kSeekAppliedPrefix = "seekdone/";
constexpr std::string_view kRoutePrefix = "route/";
constexpr std::string_view kRoutesSeededKey = "seeded/routes";
constexpr std::string_view kDrainPrefix = "drain/";
constexpr std::string_view kFilterPrefix = "filter/";
constexpr std::string_view kFilterVersion = "v1\n";
constexpr std::string_view kRouteDeleted = "v1 deleted\n";
constexpr std::string_view kMirrorPrefix = "mirror/";
constexpr std::string_view kMirrorStopped = "v1 stopped\n";
constexpr std::string_view kNodePrefix = "node/";
constexpr std::string_view kWriteHoldPrefix = "writehold/";
constexpr std::string_view kMigrationPrefix = "migration/";
constexpr std::string_view kClientSettingsKey = "client/settings";

std::optional<int64_t> Int(std::string_view text) {
  int64_t value = 0;
  if (!ParseInt(text, value)) return std::nullopt;
  return value;
}

// Cuts the next "\n"-terminated line off `text`; nullopt when there is none.
std::optional<std::string_view> NextLine(std::string_view& text) {
  const size_t end = text.find('\n');
  if (end == std::string_view::npos) return std::nullopt;
  std::string_view line = text.substr(0, end);
  text.remove_prefix(end + 1);
  return line;
}

// Cuts the next space-separated word off `text` (the rest may hold spaces).
std::optional<std::string_view> NextWord(std::string_view& text) {
  const size_t end = text.find(' ');
  if (end == std::string_view::npos) return std::nullopt;
  std::string_view word = text.substr(0, end);
  text.remove_prefix(end + 1);
  return word;
}

std::optional<int32_t> Partition(std::optional<std::string_view> word) {
  if (!word) return std::nullopt;
  auto value = Int(*word);
  if (!value || *value < 0 || *value > INT32_MAX) return std::nullopt;
  return static_cast<int32_t>(*value);
}

// Cuts the field name off a "<field> <value>" or "<field>" line; `line`
// keeps the value.
std::string_view CutField(std::string_view& line) {
  const size_t end = line.find(' ');
  const std::string_view field = line.substr(0, end);
  line = end == std::string_view::npos ? std::string_view() : line.substr(end + 1);
  return field;
}

// A field this node does not know, written by a newer one (a rolling upgrade
// in progress), is skipped rather than dropping the whole record: logged
// once per record kind and field (the first 64: garbage must not grow it).
void SkipUnknownField(std::string_view kind, std::string_view field) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* logged = new std::set<std::string>();
  absl::MutexLock lock(&mu);
  if (logged->size() < 64 && logged->insert(fmt::format("{} {}", kind, field)).second) {
    spdlog::debug("control record {}: field \"{}\" unknown to this version, ignored",
                  kind, field);
  }
}

bool ValidId(std::string_view id) {
  return !id.empty() && id.find_first_of(" \n") == std::string_view::npos;
}

// "v2 <valid_until_ms> <id>[ <cluster>]", then "<partition> <offset> <topic>"
// lines.
std::optional<SeekCommand> DecodeSeek(std::string_view group, std::string_view value) {
  SeekCommand seek{.group = std::string(group)};
  auto header = NextLine(value);
  if (!header || !header->starts_with("v2 ")) return std::nullopt;
  header->remove_prefix(3);
  auto valid_until = NextWord(*header);
  if (!valid_until || !Int(*valid_until)) return std::nullopt;
  seek.valid_until_ms = *Int(*valid_until);
  std::string_view id = *header;
  if (auto word = NextWord(*header)) {
    id = *word;
    if (header->empty()) return std::nullopt;
    seek.cluster = std::string(*header);
  }
  if (!ValidId(id)) return std::nullopt;
  seek.id = std::string(id);
  while (!value.empty()) {
    auto line = NextLine(value);
    if (!line) return std::nullopt;
    auto partition = Partition(NextWord(*line));
    auto offset_word = NextWord(*line);
    auto offset = offset_word ? Int(*offset_word) : std::nullopt;
    if (!partition || !offset || *offset < 0 || line->empty()) return std::nullopt;
    seek.offsets[{std::string(*line), *partition}] = *offset;
  }
  return seek;
}

// "v1 <id>", then "<partition> <topic>" lines.
std::optional<SeekApplied> DecodeSeekApplied(std::string_view group,
                                             std::string_view value) {
  SeekApplied applied{.group = std::string(group)};
  auto header = NextLine(value);
  if (!header || !header->starts_with("v1 ")) return std::nullopt;
  header->remove_prefix(3);
  if (!ValidId(*header)) return std::nullopt;
  applied.seek_id = std::string(*header);
  while (!value.empty()) {
    auto line = NextLine(value);
    if (!line) return std::nullopt;
    auto partition = Partition(NextWord(*line));
    if (!partition || line->empty()) return std::nullopt;
    applied.partitions.insert({std::string(*line), *partition});
  }
  return applied;
}

// "v1", then "write <cluster>", "read <cluster>", "auto_create" and
// "fallback" lines.
std::optional<RouteChange> DecodeRoute(std::string_view topic, std::string_view value) {
  RouteChange change{.topic = std::string(topic)};
  if (value == kRouteDeleted) return change;
  auto header = NextLine(value);
  if (!header || *header != "v1") return std::nullopt;
  config::RouteConfig route{.topic = change.topic};
  while (!value.empty()) {
    auto line = NextLine(value);
    if (!line) return std::nullopt;
    if (*line == "auto_create") {
      route.auto_create_topics = true;
      continue;
    }
    if (*line == "fallback") {
      route.fallback = true;
      continue;
    }
    const std::string_view field = CutField(*line);
    if (field == "write" || field == "read") {
      if (line->empty()) return std::nullopt;
      (field == "write" ? route.write : route.read).emplace_back(*line);
    } else if (field.empty()) {
      return std::nullopt;
    } else {
      SkipUnknownField("route", field);
    }
  }
  if (route.write.empty()) return std::nullopt;
  change.route = std::move(route);
  return change;
}

std::string EncodeRoute(const RouteChange& change) {
  if (!change.route) return std::string(kRouteDeleted);
  std::string value = "v1\n";
  for (const std::string& cluster : change.route->write) {
    value += fmt::format("write {}\n", cluster);
  }
  for (const std::string& cluster : change.route->read) {
    value += fmt::format("read {}\n", cluster);
  }
  if (change.route->auto_create_topics) value += "auto_create\n";
  if (change.route->fallback) value += "fallback\n";
  return value;
}

std::string EncodeClientSettings(const config::ClientSettings& settings) {
  std::string value = "v1\n";
  auto ms = [](absl::Duration d) { return absl::ToInt64Milliseconds(d); };
  if (settings.linger) value += fmt::format("linger_ms {}\n", ms(*settings.linger));
  if (settings.max_batch_messages) {
    value += fmt::format("max_batch_messages {}\n", *settings.max_batch_messages);
  }
  if (settings.max_batch_bytes) {
    value += fmt::format("max_batch_bytes {}\n", *settings.max_batch_bytes);
  }
  if (settings.request_timeout) {
    value += fmt::format("request_timeout_ms {}\n", ms(*settings.request_timeout));
  }
  if (settings.delivery_timeout) {
    value += fmt::format("delivery_timeout_ms {}\n", ms(*settings.delivery_timeout));
  }
  return value;
}

std::optional<ClientSettingsChange> DecodeClientSettings(std::string_view value) {
  auto header = NextLine(value);
  if (!header || *header != "v1") return std::nullopt;
  config::ClientSettings settings;
  while (!value.empty()) {
    auto line = NextLine(value);
    if (!line) return std::nullopt;
    const std::string_view name = CutField(*line);
    if (name != "linger_ms" && name != "max_batch_messages" &&
        name != "max_batch_bytes" && name != "request_timeout_ms" &&
        name != "delivery_timeout_ms") {
      if (name.empty()) return std::nullopt;
      SkipUnknownField("client/settings", name);
      continue;
    }
    auto number = Int(*line);
    if (!number) return std::nullopt;
    if (name == "linger_ms") {
      settings.linger = absl::Milliseconds(*number);
    } else if (name == "max_batch_messages") {
      settings.max_batch_messages = *number;
    } else if (name == "max_batch_bytes") {
      settings.max_batch_bytes = *number;
    } else if (name == "request_timeout_ms") {
      settings.request_timeout = absl::Milliseconds(*number);
    } else {
      settings.delivery_timeout = absl::Milliseconds(*number);
    }
  }
  return ClientSettingsChange{.settings = settings};
}

// "v1", then "source <cluster>", "target <cluster>", "topic <topic>" and an
// optional "skip_origin <cluster>" lines.
std::optional<MirrorChange> DecodeMirror(std::string_view name, std::string_view value) {
  MirrorChange change{.name = std::string(name)};
  if (value == kMirrorStopped) return change;
  auto header = NextLine(value);
  if (!header || *header != "v1") return std::nullopt;
  MirrorSpec spec{.name = change.name};
  while (!value.empty()) {
    auto line = NextLine(value);
    if (!line) return std::nullopt;
    const std::string_view field = CutField(*line);
    if (field == "source" || field == "target" || field == "topic" ||
        field == "skip_origin") {
      if (line->empty()) return std::nullopt;
    } else if (field.empty()) {
      return std::nullopt;
    } else {
      SkipUnknownField("mirror", field);
      continue;
    }
    if (field == "source") {
      spec.source = std::string(*line);
    } else if (field == "target") {
      spec.target = std::string(*line);
    } else if (field == "topic") {
      spec.topics.emplace_back(*line);
    } else {
      spec.skip_origin = std::string(*line);
    }
  }
  if (spec.source.empty() || spec.target.empty() || spec.topics.empty()) {
    return std::nullopt;
  }
  change.spec = std::move(spec);
  return change;
}

std::string EncodeMirror(const MirrorChange& change) {
  if (!change.spec) return std::string(kMirrorStopped);
  std::string value =
      fmt::format("v1\nsource {}\ntarget {}\n", change.spec->source, change.spec->target);
  for (const std::string& topic : change.spec->topics) {
    value += fmt::format("topic {}\n", topic);
  }
  // Only when set: nodes of an older version still read jobs without it.
  if (!change.spec->skip_origin.empty()) {
    value += fmt::format("skip_origin {}\n", change.spec->skip_origin);
  }
  return value;
}

// "v1 <up|left> <started_ms> <seen_ms> <applied>", then version, gRPC and
// HTTP address lines; lines after them are a newer node's, skipped.
std::optional<NodeBeat> DecodeNode(std::string_view node_id, std::string_view value) {
  NodeBeat beat{.node_id = std::string(node_id)};
  auto header = NextLine(value);
  if (!header || !header->starts_with("v1 ")) return std::nullopt;
  header->remove_prefix(3);
  auto state = NextWord(*header);
  auto started = NextWord(*header);
  auto seen = NextWord(*header);
  std::optional<int64_t> applied = Int(*header);
  if (!state || (*state != "up" && *state != "left") || !started || !Int(*started) ||
      !seen || !Int(*seen) || !applied || *applied < -1) {
    return std::nullopt;
  }
  beat.left = *state == "left";
  beat.started_ms = *Int(*started);
  beat.seen_ms = *Int(*seen);
  beat.applied_offset = *applied;
  auto version = NextLine(value);
  auto grpc = NextLine(value);
  auto http = NextLine(value);
  if (!version || !grpc || !http) return std::nullopt;
  if (!value.empty()) SkipUnknownField("node", "after the HTTP address");
  beat.version = std::string(*version);
  beat.grpc_address = std::string(*grpc);
  beat.http_address = std::string(*http);
  return beat;
}

std::optional<MigrationState> DecodeMigration(std::string_view topic,
                                              std::string_view value) {
  auto header = NextLine(value);
  if (!header || *header != "v1") return std::nullopt;
  MigrationState state{.topic = std::string(topic)};
  while (!value.empty()) {
    auto line = NextLine(value);
    if (!line) return std::nullopt;
    const std::string_view field = CutField(*line);
    if (field == "from" || field == "to" || field == "stage" || field == "group" ||
        field == "started" || field == "updated" || field == "cutover") {
      if (line->empty()) return std::nullopt;
    } else if (field.empty()) {
      return std::nullopt;
    } else {
      SkipUnknownField("migration", field);
      continue;
    }
    if (field == "from") {
      state.from = std::string(*line);
    } else if (field == "to") {
      state.to = std::string(*line);
    } else if (field == "stage") {
      state.stage = std::string(*line);
    } else if (field == "group") {
      state.groups.emplace_back(*line);
    } else if (field == "started" || field == "updated") {
      auto ms = Int(*line);
      if (!ms || *ms <= 0) return std::nullopt;
      (field == "started" ? state.started_ms : state.updated_ms) = *ms;
    } else {
      auto partition = Partition(NextWord(*line));
      auto offset = Int(*line);
      if (!partition || !offset || *offset < 0) return std::nullopt;
      state.cutover[*partition] = *offset;
    }
  }
  if (state.from.empty() || state.to.empty() || state.stage.empty()) return std::nullopt;
  return state;
}

std::string EncodeMigration(const MigrationState& state) {
  std::string value =
      fmt::format("v1\nfrom {}\nto {}\nstage {}\n", state.from, state.to, state.stage);
  for (const std::string& group : state.groups) value += fmt::format("group {}\n", group);
  if (state.started_ms > 0) value += fmt::format("started {}\n", state.started_ms);
  if (state.updated_ms > 0) value += fmt::format("updated {}\n", state.updated_ms);
  for (const auto& [partition, offset] : state.cutover) {
    value += fmt::format("cutover {} {}\n", partition, offset);
  }
  return value;
}

}  // namespace

EncodedRecord Encode(const ControlCommand& command) {
  if (const auto* pause = std::get_if<PauseCommand>(&command)) {
    return {fmt::format("{}{}", kPausePrefix, pause->group), pause->paused ? "1" : "0"};
  }
  if (const auto* applied = std::get_if<SeekApplied>(&command)) {
    std::string value = fmt::format("v1 {}\n", applied->seek_id);
    for (const auto& tp : applied->partitions) {
      value += fmt::format("{} {}\n", tp.partition, tp.topic);
    }
    return {fmt::format("{}{}", kSeekAppliedPrefix, applied->group), std::move(value)};
  }
  if (const auto* route = std::get_if<RouteChange>(&command)) {
    return {fmt::format("{}{}", kRoutePrefix, route->topic), EncodeRoute(*route)};
  }
  if (std::holds_alternative<RoutesSeeded>(command)) {
    return {std::string(kRoutesSeededKey), "1"};
  }
  if (const auto* drain = std::get_if<DrainCommand>(&command)) {
    return {fmt::format("{}{}", kDrainPrefix, drain->cluster),
            drain->drained ? "1" : "0"};
  }
  if (const auto* mirror = std::get_if<MirrorChange>(&command)) {
    return {fmt::format("{}{}", kMirrorPrefix, mirror->name), EncodeMirror(*mirror)};
  }
  if (const auto* filter = std::get_if<GroupFilterCommand>(&command)) {
    return {fmt::format("{}{}", kFilterPrefix, filter->group),
            fmt::format("{}{}", kFilterVersion, filter->filter)};
  }
  if (const auto* beat = std::get_if<NodeBeat>(&command)) {
    return {fmt::format("{}{}", kNodePrefix, beat->node_id),
            fmt::format("v1 {} {} {} {}\n{}\n{}\n{}\n", beat->left ? "left" : "up",
                        beat->started_ms, beat->seen_ms, beat->applied_offset,
                        beat->version, beat->grpc_address, beat->http_address)};
  }
  if (const auto* hold = std::get_if<WriteHoldCommand>(&command)) {
    return {fmt::format("{}{}", kWriteHoldPrefix, hold->topic), hold->held ? "1" : "0"};
  }
  if (const auto* migration = std::get_if<MigrationState>(&command)) {
    return {fmt::format("{}{}", kMigrationPrefix, migration->topic),
            EncodeMigration(*migration)};
  }
  if (const auto* client = std::get_if<ClientSettingsChange>(&command)) {
    return {std::string(kClientSettingsKey), EncodeClientSettings(client->settings)};
  }
  if (const auto* grant = std::get_if<AclGrant>(&command)) {
    return {fmt::format("{}{}", kAclPrefix, AclGrantKey(*grant)),
            std::string(AclGrantValue(*grant))};
  }
  const auto& seek = std::get<SeekCommand>(command);
  std::string value = fmt::format("v2 {} {}{}{}\n", seek.valid_until_ms, seek.id,
                                  seek.cluster.empty() ? "" : " ", seek.cluster);
  for (const auto& [tp, offset] : seek.offsets) {
    value += fmt::format("{} {} {}\n", tp.partition, offset, tp.topic);
  }
  return {fmt::format("{}{}", kSeekPrefix, seek.group), std::move(value)};
}

std::optional<ControlCommand> Decode(std::string_view key, std::string_view value) {
  if (key.starts_with(kPausePrefix) && key.size() > kPausePrefix.size()) {
    if (value != "0" && value != "1") return std::nullopt;
    return PauseCommand{.group = std::string(key.substr(kPausePrefix.size())),
                        .paused = value == "1"};
  }
  if (key.starts_with(kSeekPrefix) && key.size() > kSeekPrefix.size()) {
    auto seek = DecodeSeek(key.substr(kSeekPrefix.size()), value);
    if (seek) return *std::move(seek);
  }
  if (key.starts_with(kSeekAppliedPrefix) && key.size() > kSeekAppliedPrefix.size()) {
    auto applied = DecodeSeekApplied(key.substr(kSeekAppliedPrefix.size()), value);
    if (applied) return *std::move(applied);
  }
  if (key.starts_with(kRoutePrefix) && key.size() > kRoutePrefix.size()) {
    auto route = DecodeRoute(key.substr(kRoutePrefix.size()), value);
    if (route) return *std::move(route);
  }
  if (key.starts_with(kMirrorPrefix) && key.size() > kMirrorPrefix.size()) {
    auto mirror = DecodeMirror(key.substr(kMirrorPrefix.size()), value);
    if (mirror) return *std::move(mirror);
  }
  if (key.starts_with(kFilterPrefix) && key.size() > kFilterPrefix.size() &&
      value.starts_with(kFilterVersion)) {
    return GroupFilterCommand{.group = std::string(key.substr(kFilterPrefix.size())),
                              .filter = std::string(value.substr(kFilterVersion.size()))};
  }
  if (key.starts_with(kNodePrefix) && key.size() > kNodePrefix.size()) {
    auto beat = DecodeNode(key.substr(kNodePrefix.size()), value);
    if (beat) return *std::move(beat);
  }
  if (key.starts_with(kWriteHoldPrefix) && key.size() > kWriteHoldPrefix.size() &&
      (value == "0" || value == "1")) {
    return WriteHoldCommand{.topic = std::string(key.substr(kWriteHoldPrefix.size())),
                            .held = value == "1"};
  }
  if (key.starts_with(kMigrationPrefix) && key.size() > kMigrationPrefix.size()) {
    auto migration = DecodeMigration(key.substr(kMigrationPrefix.size()), value);
    if (migration) return *std::move(migration);
  }
  if (key == kRoutesSeededKey && value == "1") return RoutesSeeded{};
  if (key.starts_with(kAclPrefix)) {
    auto grant = DecodeAclGrant(key.substr(kAclPrefix.size()), value);
    if (grant) return *std::move(grant);
  }
  if (key == kClientSettingsKey) {
    auto settings = DecodeClientSettings(value);
    if (settings) return *std::move(settings);
  }
  if (key.starts_with(kDrainPrefix) && key.size() > kDrainPrefix.size() &&
      (value == "0" || value == "1")) {
    return DrainCommand{.cluster = std::string(key.substr(kDrainPrefix.size())),
                        .drained = value == "1"};
  }
  return std::nullopt;
}

}  // namespace ferry::control
