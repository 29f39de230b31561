#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "config/config.h"

namespace ferry::config {

// One documented configuration key. Patterns use `NAME` for a map key chosen
// by the user, `N` for a list index and `KEY` for "the rest of the path"
// (client properties may contain dots, e.g. clusters.main.properties.linger.ms).
struct KeyInfo {
  std::string_view pattern;
  std::string_view type;
  std::string_view default_value;
  std::string_view bounds;
  std::string_view description;
  // Applies `value` to `config`; `captures` are the segments matched by
  // NAME / N / KEY, in order. Returns INVALID_ARGUMENT describing the value.
  absl::Status (*apply)(Config& config, const std::vector<std::string>& captures,
                        std::string_view value);
};

// Every key ferryd accepts. docs/configuration.md is generated from it.
std::span<const KeyInfo> KeyTable();

// Finds the entry whose pattern matches `key`, filling `captures`.
const KeyInfo* FindKey(std::string_view key, std::vector<std::string>& captures);

// True when the pattern has a user-chosen part (NAME, N or KEY); such keys
// can be set from a file or --set but have no environment variable.
bool HasPlaceholder(std::string_view pattern);

// The key table as a Markdown document (docs/configuration.md).
std::string RenderMarkdown();

}  // namespace ferry::config
