// Evaluation must not allocate per message on the common paths (docs:
// filter.h "Cost"). This binary replaces the global operator new with a
// counting one, so it is separate from filter_test.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "filter/filter.h"

namespace {
std::atomic<int64_t> allocations{0};
}  // namespace

// Every replaceable form that pairs with free(): a form left out would come
// from the runtime (ASan's, say) and be released here with a mismatch.
void* operator new(size_t size) {
  ++allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) { return operator new(size); }
void* operator new(size_t size, const std::nothrow_t&) noexcept {
  ++allocations;
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](size_t size, const std::nothrow_t& tag) noexcept {
  return operator new(size, tag);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace ferry::filter {
namespace {

TEST(FilterAllocations, NoneWhileEvaluatingOnceWarm) {
  const std::string value =
      R"({"customer": {"tier": "gold", "name": "A\u0064a"}, "items": [1, 2, {"sku": "B-7"}]})";
  const std::vector<std::pair<std::string_view, std::string_view>> headers = {
      {"type", "order"}, {"tenant", "acme"}, {"retries", "3"}};
  MessageView message{.topic = "orders",
                      .partition = 1,
                      .timestamp_ms = 1,
                      .key = "user-42",
                      .value = value,
                      .headers = headers};
  for (const char* text : {
           R"(headers.type = "order")",
           R"(headers.tenant IN ("acme", "globex", "initech", "hooli"))",
           R"(hasPrefix(key, "user-") AND NOT contains(topic, "x"))",
           "headers.retries > 2 AND partition IN (1, 2)",
           R"(json.customer.tier = "gold" AND json.items[2].sku = "B-7")",
           R"(json.customer.name = "Ada")",  // unescaped into the parser's buffer
           R"(json.missing = 1 OR exists(json.items))",
       }) {
    const int64_t before_parse = allocations.load();
    absl::StatusOr<Filter> filter = Filter::Parse(text);
    ASSERT_TRUE(filter.ok()) << filter.status();
    ASSERT_GT(allocations.load(), before_parse) << "the counter does not see allocations";
    EvalStats stats;
    ASSERT_TRUE(filter->Matches(message, &stats))
        << text;  // warms the thread's JSON parser
    const int64_t before = allocations.load();
    for (int i = 0; i < 100; ++i) filter->Matches(message, &stats);
    EXPECT_EQ(allocations.load() - before, 0) << text;
  }
}

}  // namespace
}  // namespace ferry::filter
