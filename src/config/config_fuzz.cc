// libFuzzer target (scripts/fuzz): any YAML file must load or fail with an
// INVALID_ARGUMENT message naming the problem, never crash or hang.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/ferry-config-fuzz-" + std::to_string(getpid());
  FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) std::abort();
  std::fwrite(data, 1, size, file);
  std::fclose(file);
  auto config = ferry::config::Load({.file = path});
  std::remove(path.c_str());  // none left behind, whenever the fuzzer stops
  if (!config.ok() && (config.status().code() != absl::StatusCode::kInvalidArgument ||
                       config.status().message().empty())) {
    std::abort();
  }
  return 0;
}
