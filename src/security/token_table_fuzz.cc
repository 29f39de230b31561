// libFuzzer target (scripts/fuzz): any tokens file parses or fails with
// INVALID_ARGUMENT "line N: ..."; any presented token authenticates or fails
// with UNAUTHENTICATED; never a crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "security/token_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // The first line is the presented token, the rest the file.
  const size_t newline = input.find('\n');
  std::string_view token = input.substr(0, newline);
  std::string_view file =
      newline == std::string_view::npos ? "" : input.substr(newline + 1);
  auto table = ferry::security::TokenTable::Parse(file);
  if (!table.ok()) {
    if (table.status().code() != absl::StatusCode::kInvalidArgument ||
        !std::string_view(table.status().message().data(),
                          table.status().message().size())
             .starts_with("line ")) {
      std::abort();
    }
    return 0;
  }
  auto principal = table->Authenticate(token, absl::FromUnixSeconds(1'800'000'000));
  if (!principal.ok() &&
      principal.status().code() != absl::StatusCode::kUnauthenticated) {
    std::abort();
  }
  if (principal.ok() && principal->empty()) std::abort();
  return 0;
}
