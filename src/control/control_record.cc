#include "control/control_record.h"

#include <fmt/format.h>

#include "common/strings.h"

namespace ferry::control {
namespace {

constexpr std::string_view kPausePrefix = "pause/";
constexpr std::string_view kSeekPrefix = "seek/";

std::optional<int64_t> Int(std::string_view text) {
  int64_t value = 0;
  if (!ParseInt(text, value)) return std::nullopt;
  return value;
}

std::optional<SeekCommand> DecodeSeek(std::string_view group, std::string_view value) {
  SeekCommand seek{.group = std::string(group)};
  size_t end = value.find('\n');
  if (end == std::string_view::npos) return std::nullopt;
  std::string_view header = value.substr(0, end);
  value.remove_prefix(end + 1);
  if (!header.starts_with("v1 ")) return std::nullopt;
  auto valid_until = Int(header.substr(3));
  if (!valid_until) return std::nullopt;
  seek.valid_until_ms = *valid_until;
  while (!value.empty()) {
    end = value.find('\n');
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view line = value.substr(0, end);
    value.remove_prefix(end + 1);
    const size_t first = line.find(' ');
    const size_t second =
        first == std::string_view::npos ? first : line.find(' ', first + 1);
    if (second == std::string_view::npos) return std::nullopt;
    auto partition = Int(line.substr(0, first));
    auto offset = Int(line.substr(first + 1, second - first - 1));
    std::string_view topic = line.substr(second + 1);
    if (!partition || *partition < 0 || *partition > INT32_MAX || !offset ||
        *offset < 0 || topic.empty()) {
      return std::nullopt;
    }
    seek.offsets[{std::string(topic), static_cast<int32_t>(*partition)}] = *offset;
  }
  return seek;
}

}  // namespace

EncodedRecord Encode(const ControlCommand& command) {
  if (const auto* pause = std::get_if<PauseCommand>(&command)) {
    return {fmt::format("{}{}", kPausePrefix, pause->group), pause->paused ? "1" : "0"};
  }
  const auto& seek = std::get<SeekCommand>(command);
  std::string value = fmt::format("v1 {}\n", seek.valid_until_ms);
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
  return std::nullopt;
}

}  // namespace ferry::control
