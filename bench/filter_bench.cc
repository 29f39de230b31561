// filter_bench: nanoseconds per message of Filter::Matches for header, key
// and JSON-field filters over ~1 KiB JSON messages, one thread, in process
// (no broker, no ferryd). Prints a Markdown table for bench/RESULTS.md.
//
//   filter_bench --messages 4096 --seconds 1
//
// Each filter runs over the same messages, round after round, until the
// thread used --seconds of CPU; ns/message is that CPU time over the messages
// evaluated.
// The messages vary (ids, tiers, tenants) so that branch predictors and the
// filters see a realistic mix, and about 10-50 % of them match each filter.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bench/thread_cpu.h"
#include "filter/filter.h"

namespace ferry::bench {
namespace {

using Headers = std::vector<std::pair<std::string_view, std::string_view>>;

struct Message {
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  Headers header_views;
};

// A JSON order of about `size` bytes; `status` comes last, so a filter on it
// walks the whole document.
std::string OrderJson(int i, size_t size) {
  static constexpr const char* kTiers[] = {"gold", "silver", "bronze", "none"};
  std::string items;
  for (int item = 0; item < 8; ++item) {
    items +=
        fmt::format(R"({}{{"sku": "A-{}", "qty": {}, "price": {}.{}}})", item ? ", " : "",
                    (i + item) % 50, 1 + (i + item) % 5, 10 + item, i % 100);
  }
  std::string json = fmt::format(
      R"({{"id": {}, "type": "order", "customer": {{"name": "Customer {}", "tier": "{}", )"
      R"("country": "DE"}}, "items": [{}], "total": {}.5, "paid": {}, "notes": ")",
      i, i, kTiers[i % 4], items, 100 + i % 900, i % 3 ? "true" : "false");
  const std::string tail =
      fmt::format(R"(", "status": "{}"}})", i % 10 ? "open" : "shipped");
  if (json.size() + tail.size() < size)
    json.append(size - json.size() - tail.size(), 'x');
  return json + tail;
}

std::vector<Message> MakeMessages(int count, size_t size) {
  static constexpr const char* kTenants[] = {"acme", "globex", "initech", "umbrella",
                                             "hooli"};
  std::vector<Message> messages(count);
  for (int i = 0; i < count; ++i) {
    Message& m = messages[i];
    m.key = fmt::format("user-{}", i % 1000);
    m.value = OrderJson(i, size);
    m.headers = {{"content-type", "application/json"},
                 {"ferry.id", fmt::format("{:016x}", i * 2654435761u)},
                 {"tenant", kTenants[i % 5]},
                 {"trace-id", fmt::format("{:016x}{:016x}", i * 11400714819323198485ull,
                                          i * 14029467366897019727ull)},
                 {"type", i % 10 ? "order" : "refund"},
                 {"tag", i % 2 ? "web" : "app"}};
    for (const auto& [name, value] : m.headers) m.header_views.emplace_back(name, value);
  }
  return messages;
}

struct Result {
  double ns_per_message = 0;
  double matched_fraction = 0;
};

Result Measure(const filter::Filter& filter, const std::vector<Message>& messages,
               double seconds) {
  int64_t evaluated = 0, matched = 0;
  const int64_t start = ThreadCpuNs();
  const int64_t end = start + static_cast<int64_t>(seconds * 1e9);
  int64_t now = start;
  do {
    for (const Message& m : messages) {
      filter::MessageView view{.topic = "orders",
                               .partition = 3,
                               .timestamp_ms = 1733318400000,
                               .key = m.key,
                               .value = m.value,
                               .headers = m.header_views};
      matched += filter.Matches(view);
    }
    evaluated += static_cast<int64_t>(messages.size());
    now = ThreadCpuNs();
  } while (now < end);
  return {static_cast<double>(now - start) / static_cast<double>(evaluated),
          static_cast<double>(matched) / static_cast<double>(evaluated)};
}

int Run(int argc, char** argv) {
  CLI::App app{"filter_bench: ns per message of Filter::Matches"};
  int messages = 4096;
  size_t size = 1024;
  double seconds = 1;
  app.add_option("--messages", messages, "Distinct messages evaluated round after round")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--size", size, "Bytes of each JSON value")
      ->check(CLI::Range(600, 1 << 24))
      ->capture_default_str();
  app.add_option("--seconds", seconds, "CPU seconds per filter")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"header", R"(headers.type = "refund")"},
      {"header IN", R"(headers.tenant IN ("acme", "initech", "hooli"))"},
      {"key prefix", R"(hasPrefix(key, "user-1"))"},
      {"header AND key", R"(headers.tag = "web" AND hasSuffix(key, "7"))"},
      {"header regex", R"(matches(headers.trace-id, "^[0-9a-f]{3}[0-7]"))"},
      {"JSON field (early)", R"(json.customer.tier = "gold")"},
      {"JSON array element", R"(json.items[3].qty >= 4)"},
      {"JSON field (last)", R"(json.status = "shipped")"},
      {"JSON, two fields", R"(json.customer.tier = "gold" AND json.total > 500)"},
      {"header, then JSON", R"(headers.type = "order" AND json.paid = false)"},
  };
  std::vector<Message> data = MakeMessages(messages, size);
  fmt::print("| filter | text | ns/message | matched |\n|---|---|--:|--:|\n");
  for (const auto& [name, text] : cases) {
    absl::StatusOr<filter::Filter> filter = filter::Filter::Parse(text);
    if (!filter.ok()) {
      fmt::print(stderr, "{}: {}\n", text, filter.status().ToString());
      return 1;
    }
    Measure(*filter, data, seconds / 10);  // warm-up: caches, the thread's parser
    Result result = Measure(*filter, data, seconds);
    fmt::print("| {} | `{}` | {:.0f} | {:.0f} % |\n", name, text, result.ns_per_message,
               100 * result.matched_fraction);
  }
  fmt::print("\n{} messages, JSON values of {} bytes, one thread, CPU time.\n", messages,
             size);
  return 0;
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) { return ferry::bench::Run(argc, argv); }
