#include "common/topic_name.h"

#include <fmt/format.h>

namespace ferry {
namespace {

constexpr size_t kMaxTopicLength = 249;

bool AllowedInTopic(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
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
  for (size_t i = 0; i < topic.size(); ++i) {
    if (!AllowedInTopic(topic[i])) {
      return absl::InvalidArgumentError(fmt::format(
          "topic \"{}\": character {:?} at position {} is not allowed (use a-z A-Z "
          "0-9 . _ -)",
          topic, topic[i], i));
    }
  }
  return absl::OkStatus();
}

}  // namespace ferry
