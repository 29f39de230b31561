// libFuzzer target (scripts/fuzz): control records are read from a topic any
// client with write access could write to; no input may crash a node, and
// what decodes must survive a round trip.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "control/control_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  std::string_view key = input.substr(0, split);
  std::string_view value = split == std::string_view::npos ? "" : input.substr(split + 1);
  auto command = ferry::control::Decode(key, value);
  if (!command.has_value()) return 0;
  ferry::control::EncodedRecord encoded = ferry::control::Encode(*command);
  if (!ferry::control::Decode(encoded.key, encoded.value).has_value()) std::abort();
  return 0;
}
