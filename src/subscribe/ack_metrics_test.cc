#include "subscribe/ack_metrics.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "metrics/registry.h"

namespace ferry::subscribe {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'000'000);

class AckMetricsTest : public ::testing::Test {
 protected:
  // The value of a rendered series ("name{labels}"), -1 when absent.
  double Rendered(std::string_view series) {
    const std::string text = registry_.Render();
    const size_t at = text.find(std::string(series) + " ");
    return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 1));
  }
  double Series(std::string_view name, std::string_view topic) {
    return Rendered(std::string(name) + "{group=\"g\",topic=\"" + std::string(topic) +
                    "\"}");
  }

  metrics::Registry registry_;
  GroupMetrics metrics_{&registry_, "g"};
};

TEST_F(AckMetricsTest, CountsEveryAckOnceFlushedWhateverTheRuns) {
  TopicMetrics& orders = metrics_.For("orders");
  TopicMetrics& users = metrics_.For("users");
  AckMetrics observed(kNow);
  const int64_t published = absl::ToUnixMillis(kNow - absl::Seconds(2));
  // Runs of equal times, broken by another time and by another topic.
  for (int i = 0; i < 3; ++i) {
    observed.Add(orders, kNow - absl::Milliseconds(1), published);
  }
  observed.Add(orders, kNow - absl::Seconds(1), published + 1);
  observed.Add(users, kNow - absl::Milliseconds(1), std::nullopt);
  observed.Add(orders, kNow - absl::Milliseconds(1), published);
  observed.Flush();

  EXPECT_EQ(Series("ferry_subscribe_acked_total", "orders"), 5);
  EXPECT_EQ(Series("ferry_subscribe_acked_total", "users"), 1);
  EXPECT_EQ(Series("ferry_subscribe_processing_seconds_count", "orders"), 5);
  EXPECT_NEAR(Series("ferry_subscribe_processing_seconds_sum", "orders"), 4 * 0.001 + 1.0,
              1e-6);
  EXPECT_EQ(Series("ferry_subscribe_processing_seconds_count", "users"), 1);
  EXPECT_EQ(Series("ferry_subscribe_end_to_end_seconds_count", "orders"), 5);
  EXPECT_NEAR(Series("ferry_subscribe_end_to_end_seconds_sum", "orders"), 4 * 2.0 + 1.999,
              1e-6);
  EXPECT_EQ(Series("ferry_subscribe_end_to_end_seconds_count", "users"), 0)
      << "no publish time, no end-to-end observation";
}

TEST_F(AckMetricsTest, FlushTwiceCountsNothingTwice) {
  TopicMetrics& orders = metrics_.For("orders");
  AckMetrics observed(kNow);
  observed.Add(orders, kNow, absl::ToUnixMillis(kNow));
  observed.Flush();
  observed.Flush();
  EXPECT_EQ(Series("ferry_subscribe_acked_total", "orders"), 1);
  EXPECT_EQ(Series("ferry_subscribe_processing_seconds_count", "orders"), 1);
  EXPECT_EQ(Series("ferry_subscribe_end_to_end_seconds_count", "orders"), 1);
}

}  // namespace
}  // namespace ferry::subscribe
