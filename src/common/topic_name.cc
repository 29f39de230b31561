#include "common/topic_name.h"

#include <fmt/format.h>

namespace ferry {
namespace {

constexpr size_t kMaxTopicLength = 249;

bool AllowedInTopic(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

// `extra` lists the characters allowed besides a topic's, as the message
// shows them.
absl::Status CheckCharacters(std::string_view text, std::string_view what,
                             std::string_view extra) {
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (AllowedInTopic(c) || (c != ' ' && extra.find(c) != std::string_view::npos))
      continue;
    return absl::InvalidArgumentError(fmt::format(
        "{} \"{}\": character {:?} at position {} is not allowed (use a-z A-Z 0-9 . _ "
        "-{})",
        what, text, c, i, extra));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateTopicName(std::string_view topic) {
  if (topic.empty()) return absl::InvalidArgumentError("topic name is empty");
  if (topic.size() > kMaxTopicLength) {
    return absl::InvalidArgumentError(fmt::format(
        "topic name of {} characters is longer than {}", topic.size(), kMaxTopicLength));
  }
  if (topic == "." || topic == "..") {
    return absl::InvalidArgumentError(
        fmt::format("topic name \"{}\" is not allowed", topic));
  }
  return CheckCharacters(topic, "topic", "");
}

absl::Status ValidateTopicGlob(std::string_view glob) {
  if (glob.empty()) return absl::InvalidArgumentError("topic glob is empty");
  if (glob.size() > kMaxTopicLength) {
    return absl::InvalidArgumentError(fmt::format(
        "topic glob of {} characters is longer than {}", glob.size(), kMaxTopicLength));
  }
  return CheckCharacters(glob, "topic glob", " * ?");
}

}  // namespace ferry
