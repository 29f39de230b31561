#include "mirror/origin.h"

#include <fmt/format.h>

#include <charconv>

namespace ferry::mirror {
namespace {

// Splits off the part after the last '/'.
std::optional<std::string_view> TakeLast(std::string_view& rest) {
  const size_t slash = rest.rfind('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view last = rest.substr(slash + 1);
  rest = rest.substr(0, slash);
  return last;
}

template <typename Int>
std::optional<Int> ParseNonNegative(std::string_view text) {
  Int value = 0;
  const auto [end, error] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() ||
      value < 0) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::string FormatOrigin(const Origin& origin) {
  return fmt::format("{}/{}/{}/{}", origin.cluster, origin.partition.topic,
                     origin.partition.partition, origin.offset);
}

std::optional<Origin> ParseOrigin(std::string_view header) {
  std::string_view rest = header;
  const auto offset_text = TakeLast(rest);
  const auto partition_text = offset_text ? TakeLast(rest) : std::nullopt;
  const auto topic = partition_text ? TakeLast(rest) : std::nullopt;
  if (!topic || topic->empty() || rest.empty()) return std::nullopt;
  const auto offset = ParseNonNegative<int64_t>(*offset_text);
  const auto partition = ParseNonNegative<int32_t>(*partition_text);
  if (!offset || !partition) return std::nullopt;
  return Origin{.cluster = std::string(rest),
                .partition = {std::string(*topic), *partition},
                .offset = *offset};
}

}  // namespace ferry::mirror
