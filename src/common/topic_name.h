#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace ferry {

// Checks a topic name against Kafka's rules, which every backend shares so a
// topic can move between clusters: 1..249 characters from [a-zA-Z0-9._-],
// not "." or "..". INVALID_ARGUMENT names the offending character and its
// position, e.g. `topic "a b": character ' ' at position 1 is not allowed
// (use a-z A-Z 0-9 . _ -)`.
absl::Status ValidateTopicName(std::string_view topic);

// A route's topic pattern: a topic name in which '*' (any run of characters)
// and '?' (one character) may also appear. INVALID_ARGUMENT like the above.
absl::Status ValidateTopicGlob(std::string_view glob);

}  // namespace ferry
