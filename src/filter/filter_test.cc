#include "filter/filter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ferry::filter {
namespace {

// A message the tests edit field by field.
struct TestMessage {
  std::string topic = "orders";
  int32_t partition = 3;
  int64_t timestamp_ms = 1733318400000;
  std::string key = "user-42";
  std::string value =
      R"({"id": 7, "name": "Ada", "tags": ["a", "b"], "nested": {"x": [1, {"y": "deep"}]}})";
  std::vector<std::pair<std::string_view, std::string_view>> headers = {
      {"type", "order"}};

  MessageView View() const {
    return {.topic = topic,
            .partition = partition,
            .timestamp_ms = timestamp_ms,
            .key = key,
            .value = value,
            .headers = headers};
  }
};

bool Matches(std::string_view text, const TestMessage& message,
             EvalStats* stats = nullptr) {
  absl::StatusOr<Filter> filter = Filter::Parse(text);
  EXPECT_TRUE(filter.ok()) << text << ": " << filter.status();
  return filter.ok() && filter->Matches(message.View(), stats);
}

TEST(Filter, ComparesEachOperatorOnStringsAndNumbers) {
  TestMessage m;
  EXPECT_TRUE(Matches(R"(key = "user-42")", m));
  EXPECT_FALSE(Matches(R"(key = "user-4")", m));
  EXPECT_TRUE(Matches(R"(key != "user-4")", m));
  EXPECT_TRUE(Matches(R"(key < "user-5")", m));
  EXPECT_TRUE(Matches(R"(key <= "user-42")", m));
  EXPECT_TRUE(Matches(R"(key > "user-100")", m));  // bytes, not numbers
  EXPECT_FALSE(Matches(R"(key >= "v")", m));
  EXPECT_TRUE(Matches("partition = 3", m));
  EXPECT_TRUE(Matches("partition != 4", m));
  EXPECT_TRUE(Matches("partition < 3.5", m));
  EXPECT_TRUE(Matches("partition <= 3", m));
  EXPECT_FALSE(Matches("partition > 3", m));
  EXPECT_TRUE(Matches("partition >= 3", m));
  EXPECT_TRUE(Matches("timestamp >= 1733318400000 AND timestamp < 1733318400001", m));
  EXPECT_TRUE(Matches(R"(topic = "orders")", m));
}

TEST(Filter, ComparesBytesAsUnsigned) {
  TestMessage m;
  m.key = "\xc3\xa9";  // é sorts after every ASCII letter
  EXPECT_TRUE(Matches(R"(key > "z")", m));
}

TEST(Filter, ReadsAStringAsANumberOnlyWhenAllOfItIsOne) {
  TestMessage m;
  m.headers = {
      {"n", "42"}, {"f", "-1.5e1"}, {"s", "42abc"}, {"space", " 42"}, {"big", "1e400"}};
  EXPECT_TRUE(Matches("headers.n = 42", m));
  EXPECT_TRUE(Matches("headers.n = 42.0", m));
  EXPECT_TRUE(Matches("headers.n > 9", m));  // as numbers; as strings "42" < "9"
  EXPECT_FALSE(Matches(R"(headers.n > "9")", m));
  EXPECT_TRUE(Matches("headers.f = -15", m));
  EXPECT_FALSE(Matches("headers.s = 42", m));
  EXPECT_FALSE(Matches("headers.s != 42", m));  // not a number: no comparison holds
  EXPECT_FALSE(Matches("headers.space = 42", m));
  EXPECT_FALSE(Matches("headers.big > 0", m));
}

TEST(Filter, ComparesJsonValuesByType) {
  TestMessage m;
  m.value =
      R"({"n": 7, "f": 2.5, "s": "7", "t": true, "z": null, "o": {}, "big": 18446744073709551615})";
  EXPECT_TRUE(Matches("json.n = 7", m));
  EXPECT_TRUE(Matches("json.n = 7.0", m));
  EXPECT_FALSE(Matches(R"(json.n = "7")", m));  // a string literal needs a string
  EXPECT_FALSE(Matches(R"(json.n != "7")", m));
  EXPECT_TRUE(Matches("json.s = 7", m));  // a string is read as a number
  EXPECT_TRUE(Matches("json.f > 2 AND json.f < 3", m));
  EXPECT_TRUE(Matches("json.t = true", m));
  EXPECT_TRUE(Matches("json.t != false", m));
  EXPECT_FALSE(Matches("json.n = true", m));
  EXPECT_TRUE(Matches("json.z = null", m));
  EXPECT_FALSE(Matches("json.z != null", m));
  EXPECT_TRUE(Matches("json.n != null", m));
  EXPECT_FALSE(Matches("json.missing = null", m));
  EXPECT_FALSE(Matches("json.missing != null", m));
  EXPECT_FALSE(Matches("json.o = null", m));
  EXPECT_FALSE(Matches(R"(json.o != "x")", m));  // objects compare with nothing
  EXPECT_TRUE(Matches("json.big > 9223372036854775807", m));
}

TEST(Filter, WalksJsonObjectsAndArrays) {
  TestMessage m;
  EXPECT_TRUE(Matches(R"(json.tags[1] = "b")", m));
  EXPECT_FALSE(Matches(R"(json.tags[2] = "b")", m));
  EXPECT_TRUE(Matches(R"(json.nested.x[1].y = "deep")", m));
  EXPECT_TRUE(Matches(R"(json["nested"]["x"][0] = 1)", m));
  EXPECT_FALSE(Matches(R"(json.tags.a = "a")", m));   // a name on an array
  EXPECT_FALSE(Matches(R"(json.name[0] = "A")", m));  // an index on a string
  m.value = R"({"a.b": 1, "a": {"b": 2}})";
  EXPECT_TRUE(Matches(R"(json["a.b"] = 1)", m));
  EXPECT_TRUE(Matches("json.a.b = 2", m));
  m.value = R"([{"a": 1}, 2])";  // a top-level array
  EXPECT_TRUE(Matches("json[0].a = 1", m));
  EXPECT_TRUE(Matches("json[1] = 2", m));
  EXPECT_FALSE(Matches("json.a = 1", m));
}

TEST(Filter, MissingFieldsMatchNoConditionButNegationsOfThem) {
  TestMessage m;
  EvalStats stats;
  EXPECT_FALSE(Matches(R"(json.absent = "x")", m, &stats));
  EXPECT_FALSE(Matches(R"(json.absent != "x")", m, &stats));
  EXPECT_TRUE(Matches(R"(NOT json.absent = "x")", m, &stats));
  EXPECT_FALSE(Matches(R"(headers.absent != "x")", m, &stats));
  EXPECT_FALSE(Matches(R"(hasPrefix(json.absent, ""))", m, &stats));
  EXPECT_EQ(stats.json_fields_missing, 4u);
  EXPECT_EQ(stats.values_not_json, 0u);
}

TEST(Filter, ValuesThatAreNotJsonMatchNoJsonConditionAndAreCountedOncePerMessage) {
  TestMessage m;
  EvalStats stats;
  for (const char* value :
       {"plain text", "", "42", R"("a string")", R"({"a": )", R"({"a" 1})"}) {
    m.value = value;
    EXPECT_FALSE(Matches("json.a = 1 OR json.b = 2 OR exists(json.a)", m, &stats))
        << value;
  }
  EXPECT_EQ(stats.values_not_json, 6u);
  EXPECT_EQ(stats.json_fields_missing, 0u);
  m.value = "plain text";
  EXPECT_TRUE(Matches(R"(contains(key, "42") OR json.a = 1)", m));
}

TEST(Filter, ExistsTellsPresenceIncludingNullAndEmptyValues) {
  TestMessage m;
  m.value = R"({"z": null, "e": ""})";
  m.headers = {{"empty", ""}};
  EvalStats stats;
  EXPECT_TRUE(Matches("exists(json.z)", m, &stats));
  EXPECT_TRUE(Matches("exists(json.e)", m, &stats));
  EXPECT_FALSE(Matches("exists(json.q)", m, &stats));
  EXPECT_TRUE(Matches("exists(headers.empty)", m, &stats));
  EXPECT_FALSE(Matches("exists(headers.type)", m, &stats));
  EXPECT_EQ(stats.json_fields_missing, 0u);  // absence is what exists() asks about
}

TEST(Filter, AnyOfRepeatedHeadersCounts) {
  TestMessage m;
  m.headers = {{"tag", "web"}, {"tag", "urgent"}};
  EXPECT_TRUE(Matches(R"(headers.tag = "urgent")", m));
  EXPECT_TRUE(Matches(R"(headers.tag = "web")", m));
  EXPECT_TRUE(Matches(R"(headers.tag != "web")", m));  // "urgent" differs
  EXPECT_FALSE(Matches(R"(NOT headers.tag = "web")", m));
  EXPECT_TRUE(Matches(R"(hasPrefix(headers.tag, "urg"))", m));
}

TEST(Filter, HeaderNamesAreExactAndMayHoldDots) {
  TestMessage m;
  m.headers = {{"ferry.id", "abc"}, {"Content-Type", "text/plain"}};
  EXPECT_TRUE(Matches(R"(headers["ferry.id"] = "abc")", m));
  EXPECT_TRUE(Matches(R"(headers.Content-Type = "text/plain")", m));
  EXPECT_FALSE(Matches(R"(headers.content-type = "text/plain")", m));
}

TEST(Filter, InListsMixTypes) {
  TestMessage m;
  m.value = R"({"s": "b", "n": 2, "t": true, "z": null, "ns": "2.0"})";
  EXPECT_TRUE(Matches(R"(json.s IN ("a", "b", 1))", m));
  EXPECT_FALSE(Matches(R"(json.s IN ("a", "c"))", m));
  EXPECT_TRUE(Matches(R"(json.n IN ("x", 2))", m));
  EXPECT_FALSE(Matches(R"(json.n IN ("2"))", m));
  EXPECT_TRUE(Matches("json.ns IN (1, 2)", m));
  EXPECT_TRUE(Matches("json.t IN (true)", m));
  EXPECT_FALSE(Matches("json.t IN (false, null)", m));
  EXPECT_TRUE(Matches("json.z IN (false, null)", m));
  EXPECT_TRUE(Matches(R"(key IN ("user-1", "user-42", "user-7"))", TestMessage{}));
  EXPECT_TRUE(Matches("partition IN (1, 3)", TestMessage{}));
}

TEST(Filter, StringFunctions) {
  TestMessage m;
  EXPECT_TRUE(Matches(R"(hasPrefix(key, "user-"))", m));
  EXPECT_FALSE(Matches(R"(hasPrefix(key, "42"))", m));
  EXPECT_TRUE(Matches(R"(hasSuffix(key, "-42"))", m));
  EXPECT_FALSE(Matches(R"(hasSuffix(key, "user"))", m));
  EXPECT_TRUE(Matches(R"(contains(key, "r-4"))", m));
  EXPECT_FALSE(Matches(R"(contains(key, "x"))", m));
  EXPECT_TRUE(Matches(R"(contains(json.name, "d"))", m));
  EXPECT_FALSE(Matches(R"(contains(json.id, "7"))", m));  // a number is not a string
}

TEST(Filter, MatchesSearchesWithRe2) {
  TestMessage m;
  EXPECT_TRUE(Matches(R"(matches(key, "r-\\d+"))", m));  // anywhere in the value
  EXPECT_FALSE(Matches(R"(matches(key, "^\\d"))", m));
  EXPECT_TRUE(Matches(R"(matches(json.nested.x[1].y, "^d.e+p$"))", m));
  EXPECT_FALSE(Matches(R"(matches(json.id, "7"))", m));
}

TEST(Filter, NotBindsTighterThanAndWhichBindsTighterThanOr) {
  TestMessage m;  // key = "user-42", partition = 3
  // OR below AND: true OR (false AND false)
  EXPECT_TRUE(Matches(R"(partition = 3 OR partition = 4 AND key = "x")", m));
  EXPECT_FALSE(Matches(R"((partition = 3 OR partition = 4) AND key = "x")", m));
  // NOT applies to its condition only: (NOT false) AND true
  EXPECT_TRUE(Matches(R"(NOT partition = 4 AND key = "user-42")", m));
  EXPECT_FALSE(Matches(R"(NOT (partition = 4 OR key = "user-42"))", m));
  EXPECT_TRUE(Matches(R"(NOT NOT partition = 3)", m));
}

TEST(Filter, EmptyFilterMatchesEverything) { EXPECT_TRUE(Matches("", TestMessage{})); }

TEST(Filter, JsonIsReadOnlyWhenAConditionNeedsIt) {
  TestMessage m;
  m.value = "not json";
  EvalStats stats;
  EXPECT_FALSE(Matches(R"(json.a = 1 AND key = "nobody")", m, &stats));
  EXPECT_EQ(stats.values_not_json, 0u);  // the key condition ran first and decided
}

TEST(Filter, CopiesShareTheExpressionAndWorkAcrossThreads) {
  absl::StatusOr<Filter> parsed = Filter::Parse(R"(json.nested.x[1].y = "deep")");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  std::vector<std::thread> threads;
  std::atomic<int> matched{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([filter = *parsed, &matched, t] {
      TestMessage m;
      for (int i = 0; i < 2000; ++i) {
        m.value =
            (i + t) % 2 ? R"({"nested": {"x": [0, {"y": "deep"}]}})" : R"({"nested": 1})";
        matched += filter.Matches(m.View());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(matched.load(), 4 * 1000);
}

}  // namespace
}  // namespace ferry::filter
