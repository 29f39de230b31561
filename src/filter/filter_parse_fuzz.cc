// libFuzzer target (scripts/fuzz): filter text comes from clients, so no text
// may crash a node or recurse without bound. A text either parses, and then
// evaluates against a message without harm, or is refused with
// INVALID_ARGUMENT "filter: ..." naming a column inside the text.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filter/filter.h"
#include "filter/lexer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ferry::filter::Filter> filter = ferry::filter::Filter::Parse(text);
  if (!filter.ok()) {
    std::string message(filter.status().message());
    if (filter.status().code() != absl::StatusCode::kInvalidArgument ||
        !message.starts_with("filter: ")) {
      std::abort();
    }
    const std::string column_prefix = "filter: column ";
    if (message.starts_with(column_prefix) &&
        std::stoul(message.substr(column_prefix.size())) >
            ferry::filter::ColumnAt(text, text.size())) {
      std::abort();
    }
    return 0;
  }
  const std::vector<std::pair<std::string_view, std::string_view>> headers = {
      {"a", "1"}, {"a", "x"}, {"b.c", ""}};
  ferry::filter::MessageView message{.topic = "t",
                                     .partition = 1,
                                     .timestamp_ms = 2,
                                     .key = "k",
                                     .value = R"({"a": [1, {"b": "x"}], "c": null})",
                                     .headers = headers};
  ferry::filter::EvalStats stats;
  filter->Matches(message, &stats);
  return 0;
}
