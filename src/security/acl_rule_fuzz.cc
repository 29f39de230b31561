// libFuzzer target (scripts/fuzz): any principal / resource / operations
// triple parses or fails with INVALID_ARGUMENT naming the part; a parsed
// rule prints back (ToString) to text that parses to the same rule.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "security/acl_rule.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  for (int i = 0; i < 2; ++i) {
    const size_t newline = input.find('\n');
    parts.push_back(input.substr(0, newline));
    input = newline == std::string_view::npos ? "" : input.substr(newline + 1);
  }
  parts.push_back(input);
  auto rule = ferry::security::ParseAclRule(parts[0], parts[1], parts[2]);
  if (!rule.ok()) {
    const std::string_view message(rule.status().message().data(),
                                   rule.status().message().size());
    if (rule.status().code() != absl::StatusCode::kInvalidArgument ||
        !(message.starts_with("principal: ") || message.starts_with("resource: ") ||
          message.starts_with("operations: "))) {
      std::abort();
    }
    return 0;
  }
  // "principal resource ops": none of the three contains a space.
  const std::string text = rule->ToString();
  const size_t first = text.find(' ');
  const size_t second = text.find(' ', first + 1);
  auto again = ferry::security::ParseAclRule(text.substr(0, first),
                                             text.substr(first + 1, second - first - 1),
                                             text.substr(second + 1));
  if (!again.ok() || !(*again == *rule)) std::abort();
  return 0;
}
