#include "subscribe/dead_letterer.h"

#include <gtest/gtest.h>

#include <map>

namespace ferry::subscribe {
namespace {

TEST(DeadLettererTest, WritesToTheNamedTopicOrTopicDotDlq) {
  EXPECT_EQ(DeadLetterer("g", "").TopicFor("orders"), "orders.dlq");
  EXPECT_EQ(DeadLetterer("g", "parked").TopicFor("orders"), "parked");
}

TEST(DeadLettererTest, KeepsThePayloadAndSaysWhereItCameFrom) {
  backend::ConsumedRecord record{.topic = "orders",
                                 .partition = 3,
                                 .offset = 42,
                                 .key = "k",
                                 .value = "v",
                                 .headers = {{"ferry.id", "id-1"}},
                                 .timestamp_ms = 1234};
  backend::Record dead = DeadLetterer("g", "").Build(record, 5);
  EXPECT_EQ(dead.topic, "orders.dlq");
  EXPECT_EQ(dead.key, "k");
  EXPECT_EQ(dead.value, "v");
  EXPECT_EQ(dead.timestamp_ms, 1234);
  std::map<std::string, std::string> headers;
  for (const auto& h : dead.headers) headers[h.key] = h.value;
  EXPECT_EQ(headers["ferry.id"], "id-1");
  EXPECT_EQ(headers["ferry.dlq.topic"], "orders");
  EXPECT_EQ(headers["ferry.dlq.partition"], "3");
  EXPECT_EQ(headers["ferry.dlq.offset"], "42");
  EXPECT_EQ(headers["ferry.dlq.group"], "g");
  EXPECT_EQ(headers["ferry.dlq.attempts"], "5");
}

TEST(DeadLettererTest, RetryDelayDoublesUpToAMinute) {
  EXPECT_EQ(DeadLetterer::RetryDelay(1), absl::Seconds(1));
  EXPECT_EQ(DeadLetterer::RetryDelay(2), absl::Seconds(2));
  EXPECT_EQ(DeadLetterer::RetryDelay(6), absl::Seconds(32));
  EXPECT_EQ(DeadLetterer::RetryDelay(7), absl::Seconds(60));
  EXPECT_EQ(DeadLetterer::RetryDelay(1000), absl::Seconds(60));
}

}  // namespace
}  // namespace ferry::subscribe
