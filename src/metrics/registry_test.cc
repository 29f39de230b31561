#include "metrics/registry.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace ferry::metrics {
namespace {

TEST(Registry, RendersCounterSeriesSortedByLabels) {
  Registry registry;
  registry
      .GetCounter("ferry_requests_total", "Requests handled.",
                  {{"method", "publish"}, {"code", "ok"}})
      .Inc(2);
  registry
      .GetCounter("ferry_requests_total", "Requests handled.",
                  {{"method", "publish"}, {"code", "error"}})
      .Inc();

  EXPECT_EQ(registry.Render(),
            "# HELP ferry_requests_total Requests handled.\n"
            "# TYPE ferry_requests_total counter\n"
            "ferry_requests_total{code=\"error\",method=\"publish\"} 1\n"
            "ferry_requests_total{code=\"ok\",method=\"publish\"} 2\n");
}

TEST(Registry, RendersGaugeAndFamiliesSortedByName) {
  Registry registry;
  Gauge& gauge = registry.GetGauge("ferry_z_inflight", "In flight.");
  gauge.Set(5);
  gauge.Add(-1.5);
  registry.GetCounter("ferry_a_total", "A.").Inc(0.25);

  EXPECT_EQ(registry.Render(),
            "# HELP ferry_a_total A.\n"
            "# TYPE ferry_a_total counter\n"
            "ferry_a_total 0.25\n"
            "# HELP ferry_z_inflight In flight.\n"
            "# TYPE ferry_z_inflight gauge\n"
            "ferry_z_inflight 3.5\n");
}

TEST(Registry, EvaluatesGaugeCallbackAtEachRender) {
  Registry registry;
  double uptime = 1;
  registry.AddGaugeCallback("ferry_uptime_seconds", "Uptime.", {{"instance", "a"}},
                            [&] { return uptime; });
  const std::string before = registry.Render();
  uptime = 42;

  EXPECT_EQ(before,
            "# HELP ferry_uptime_seconds Uptime.\n"
            "# TYPE ferry_uptime_seconds gauge\n"
            "ferry_uptime_seconds{instance=\"a\"} 1\n");
  EXPECT_EQ(registry.Render(),
            "# HELP ferry_uptime_seconds Uptime.\n"
            "# TYPE ferry_uptime_seconds gauge\n"
            "ferry_uptime_seconds{instance=\"a\"} 42\n");
}

TEST(Registry, RendersCounterCallbackAsACounter) {
  Registry registry;
  int64_t abandoned = 0;
  registry.AddCounterCallback("ferry_things_total", "Things.", {{"kind", "a"}},
                              [&] { return static_cast<double>(abandoned); });
  abandoned = 3;

  EXPECT_EQ(registry.Render(),
            "# HELP ferry_things_total Things.\n"
            "# TYPE ferry_things_total counter\n"
            "ferry_things_total{kind=\"a\"} 3\n");
}

TEST(RegistryDeathTest, CounterCallbackSeriesCannotBeIncrementedToo) {
  Registry registry;
  registry.AddCounterCallback("ferry_things_total", "Things.", {}, [] { return 1.0; });
  EXPECT_DEATH(registry.GetCounter("ferry_things_total", "Things."), "callback");
}

TEST(Registry, RendersHistogramBucketsCumulatively) {
  Registry registry;
  Histogram& histogram = registry.GetHistogram("ferry_latency_seconds", "Latency.",
                                               {0.5, 1, 2.5}, {{"op", "send"}});
  for (double v : {0.25, 1.0, 2.0, 7.0}) histogram.Observe(v);

  EXPECT_EQ(registry.Render(),
            "# HELP ferry_latency_seconds Latency.\n"
            "# TYPE ferry_latency_seconds histogram\n"
            "ferry_latency_seconds_bucket{op=\"send\",le=\"0.5\"} 1\n"
            "ferry_latency_seconds_bucket{op=\"send\",le=\"1\"} 2\n"
            "ferry_latency_seconds_bucket{op=\"send\",le=\"2.5\"} 3\n"
            "ferry_latency_seconds_bucket{op=\"send\",le=\"+Inf\"} 4\n"
            "ferry_latency_seconds_sum{op=\"send\"} 10.25\n"
            "ferry_latency_seconds_count{op=\"send\"} 4\n");
}

// A batch's observations of one value count like that many single ones.
TEST(Registry, ObservesAValueManyTimesAtOnce) {
  Registry registry;
  Histogram& histogram = registry.GetHistogram("ferry_h", "H.", {1});
  histogram.Observe(0.5, 3);
  histogram.Observe(2);

  EXPECT_EQ(registry.Render(),
            "# HELP ferry_h H.\n"
            "# TYPE ferry_h histogram\n"
            "ferry_h_bucket{le=\"1\"} 3\n"
            "ferry_h_bucket{le=\"+Inf\"} 4\n"
            "ferry_h_sum 3.5\n"
            "ferry_h_count 4\n");
}

TEST(Registry, EscapesLabelValuesAndHelp) {
  Registry registry;
  registry.GetCounter("ferry_errors_total", "Errors \\ by\ncause.",
                      {{"cause", "a\\b\"c\nd"}});

  EXPECT_EQ(registry.Render(),
            "# HELP ferry_errors_total Errors \\\\ by\\ncause.\n"
            "# TYPE ferry_errors_total counter\n"
            "ferry_errors_total{cause=\"a\\\\b\\\"c\\nd\"} 0\n");
}

TEST(Registry, ReturnsSameSeriesForSameNameAndLabelsInAnyOrder) {
  Registry registry;
  Counter& first = registry.GetCounter("ferry_c_total", "C.", {{"a", "1"}, {"b", "2"}});
  Counter& again = registry.GetCounter("ferry_c_total", "C.", {{"b", "2"}, {"a", "1"}});
  Counter& other = registry.GetCounter("ferry_c_total", "C.", {{"a", "2"}});

  EXPECT_EQ(&first, &again);
  EXPECT_NE(&first, &other);
}

TEST(Registry, SumsConcurrentIncrementsExactly) {
  Registry registry;
  Counter& counter = registry.GetCounter("ferry_c_total", "C.");
  Histogram& histogram = registry.GetHistogram("ferry_h", "H.", LatencyBuckets());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        counter.Inc();
        histogram.Observe(0.001);
      }
    });
  }
  std::thread scraper([&] {
    for (int i = 0; i < 100; ++i) registry.Render();
  });
  for (std::thread& thread : threads) thread.join();
  scraper.join();

  EXPECT_EQ(counter.Value(), 400000);
  EXPECT_NE(registry.Render().find("ferry_h_count 400000\n"), std::string::npos);
}

TEST(Registry, RemoveSeriesRemovesEveryMatchingSeriesOfEveryFamily) {
  Registry registry;
  registry.GetCounter("ferry_d_total", "D.", {{"group", "g1"}, {"topic", "a"}}).Inc();
  registry.GetCounter("ferry_d_total", "D.", {{"group", "g1"}, {"topic", "b"}}).Inc();
  registry.GetCounter("ferry_d_total", "D.", {{"group", "g2"}, {"topic", "a"}}).Inc(3);
  registry.GetHistogram("ferry_p_seconds", "P.", {1}, {{"group", "g1"}, {"topic", "a"}})
      .Observe(0.5);
  registry.GetGauge("ferry_lag", "L.", {{"group", "g1"}, {"partition", "0"}}).Set(7);
  registry.AddGaugeCallback("ferry_cb", "CB.", {{"group", "g1"}}, [] { return 1.0; });

  EXPECT_EQ(registry.RemoveSeries({{"group", "g1"}}), 5u);

  // Families left without series are not rendered.
  EXPECT_EQ(registry.Render(),
            "# HELP ferry_d_total D.\n"
            "# TYPE ferry_d_total counter\n"
            "ferry_d_total{group=\"g2\",topic=\"a\"} 3\n");
  EXPECT_EQ(registry.RemoveSeries({{"group", "g1"}}), 0u);
}

TEST(Registry, RemoveSeriesNeedsEveryPairOfTheMatch) {
  Registry registry;
  registry.GetCounter("ferry_d_total", "D.", {{"group", "g1"}, {"topic", "a"}});
  registry.GetCounter("ferry_d_total", "D.", {{"group", "g1"}, {"topic", "b"}});
  registry.GetCounter("ferry_d_total", "D.", {{"topic", "a"}});

  EXPECT_EQ(registry.RemoveSeries({}), 0u);
  EXPECT_EQ(registry.RemoveSeries({{"group", "g1"}, {"topic", "c"}}), 0u);
  EXPECT_EQ(registry.RemoveSeries({{"group", "a"}}), 0u);  // value of another label
  EXPECT_EQ(registry.RemoveSeries({{"topic", "a"}, {"group", "g1"}}), 1u);

  EXPECT_EQ(registry.Render(),
            "# HELP ferry_d_total D.\n"
            "# TYPE ferry_d_total counter\n"
            "ferry_d_total{group=\"g1\",topic=\"b\"} 0\n"
            "ferry_d_total{topic=\"a\"} 0\n");
}

TEST(Registry, SeriesGotAgainAfterRemovalStartsFresh) {
  Registry registry;
  registry.GetCounter("ferry_d_total", "D.", {{"group", "g1"}}).Inc(5);
  registry.GetHistogram("ferry_p_seconds", "P.", {1}, {{"group", "g1"}}).Observe(2);
  registry.RemoveSeries({{"group", "g1"}});

  Counter& counter = registry.GetCounter("ferry_d_total", "D.", {{"group", "g1"}});
  registry.GetHistogram("ferry_p_seconds", "P.", {1}, {{"group", "g1"}});

  EXPECT_EQ(counter.Value(), 0);
  EXPECT_EQ(registry.Render(),
            "# HELP ferry_d_total D.\n"
            "# TYPE ferry_d_total counter\n"
            "ferry_d_total{group=\"g1\"} 0\n"
            "# HELP ferry_p_seconds P.\n"
            "# TYPE ferry_p_seconds histogram\n"
            "ferry_p_seconds_bucket{group=\"g1\",le=\"1\"} 0\n"
            "ferry_p_seconds_bucket{group=\"g1\",le=\"+Inf\"} 0\n"
            "ferry_p_seconds_sum{group=\"g1\"} 0\n"
            "ferry_p_seconds_count{group=\"g1\"} 0\n");
}

TEST(Registry, SeriesPastTheBoundGoToAnUnrenderedOverflowAndAreCounted) {
  Registry registry({.max_series_per_family = 2});
  Counter& a = registry.GetCounter("ferry_d_total", "D.", {{"group", "a"}});
  registry.GetCounter("ferry_d_total", "D.", {{"group", "b"}}).Inc();
  registry.GetGauge("ferry_lag", "L.", {{"group", "a"}}).Set(1);

  // Refused: a third series of each family.
  Counter& c = registry.GetCounter("ferry_d_total", "D.", {{"group", "c"}});
  Counter& d = registry.GetCounter("ferry_d_total", "D.", {{"group", "d"}});
  c.Inc(10);
  registry.GetGauge("ferry_lag", "L.", {{"group", "b"}}).Set(2);
  registry.GetGauge("ferry_lag", "L.", {{"group", "c"}}).Set(3);
  registry.GetHistogram("ferry_p_seconds", "P.", {1}, {{"group", "a"}});
  registry.GetHistogram("ferry_p_seconds", "P.", {1}, {{"group", "b"}});
  registry.GetHistogram("ferry_p_seconds", "P.", {1}, {{"group", "c"}}).Observe(0.5);
  registry.AddGaugeCallback("ferry_lag", "L.", {{"group", "d"}}, [] { return 4.0; });

  EXPECT_EQ(&c, &d);  // one shared overflow series per family
  EXPECT_NE(&c, &a);
  // Existing series are still found past the bound.
  EXPECT_EQ(&registry.GetCounter("ferry_d_total", "D.", {{"group", "a"}}), &a);
  const std::string rendered = registry.Render();
  EXPECT_EQ(rendered,
            "# HELP ferry_d_total D.\n"
            "# TYPE ferry_d_total counter\n"
            "ferry_d_total{group=\"a\"} 0\n"
            "ferry_d_total{group=\"b\"} 1\n"
            "# HELP ferry_lag L.\n"
            "# TYPE ferry_lag gauge\n"
            "ferry_lag{group=\"a\"} 1\n"
            "ferry_lag{group=\"b\"} 2\n"
            "# HELP ferry_metrics_series_dropped_total Series not created because "
            "their family had reached metrics.max_series_per_family; their updates "
            "are not exported.\n"
            "# TYPE ferry_metrics_series_dropped_total counter\n"
            "ferry_metrics_series_dropped_total{family=\"ferry_d_total\"} 2\n"
            "ferry_metrics_series_dropped_total{family=\"ferry_lag\"} 2\n"
            "ferry_metrics_series_dropped_total{family=\"ferry_p_seconds\"} 1\n"
            "# HELP ferry_p_seconds P.\n"
            "# TYPE ferry_p_seconds histogram\n"
            "ferry_p_seconds_bucket{group=\"a\",le=\"1\"} 0\n"
            "ferry_p_seconds_bucket{group=\"a\",le=\"+Inf\"} 0\n"
            "ferry_p_seconds_sum{group=\"a\"} 0\n"
            "ferry_p_seconds_count{group=\"a\"} 0\n"
            "ferry_p_seconds_bucket{group=\"b\",le=\"1\"} 0\n"
            "ferry_p_seconds_bucket{group=\"b\",le=\"+Inf\"} 0\n"
            "ferry_p_seconds_sum{group=\"b\"} 0\n"
            "ferry_p_seconds_count{group=\"b\"} 0\n");
}

TEST(Registry, RemovalMakesRoomUnderTheBound) {
  Registry registry({.max_series_per_family = 1});
  registry.GetCounter("ferry_d_total", "D.", {{"group", "a"}});
  Counter& refused = registry.GetCounter("ferry_d_total", "D.", {{"group", "b"}});
  refused.Inc();
  registry.RemoveSeries({{"group", "a"}});

  Counter& b = registry.GetCounter("ferry_d_total", "D.", {{"group", "b"}});
  b.Inc(2);

  EXPECT_NE(&b, &refused);
  EXPECT_NE(registry.Render().find("ferry_d_total{group=\"b\"} 2\n"), std::string::npos);
}

TEST(Registry, TheDefaultBoundIsTheDocumentedOne) {
  Registry registry;
  for (size_t i = 0; i <= Registry::kDefaultMaxSeriesPerFamily; ++i) {
    registry.GetCounter("ferry_d_total", "D.", {{"group", std::to_string(i)}});
  }

  EXPECT_NE(registry.Render().find(
                "ferry_metrics_series_dropped_total{family=\"ferry_d_total\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(registry.RemoveSeries({{"group", "0"}}), 1u);
}

TEST(RegistryDeathTest, DiesOnTypeClash) {
  Registry registry;
  registry.GetCounter("ferry_x", "X.");

  EXPECT_DEATH(registry.GetGauge("ferry_x", "X."),
               "ferry_x: registered again with another type");
}

TEST(RegistryDeathTest, DiesOnHelpOrBoundsClash) {
  Registry registry;
  registry.GetHistogram("ferry_h", "H.", {1, 2});

  EXPECT_DEATH(registry.GetHistogram("ferry_h", "Other.", {1, 2}), "another help");
  EXPECT_DEATH(registry.GetHistogram("ferry_h", "H.", {1, 3}), "other histogram bounds");
}

TEST(RegistryDeathTest, DiesOnInvalidNamesAndLabels) {
  Registry registry;

  EXPECT_DEATH(registry.GetCounter("1bad", "B."), "invalid metric name");
  EXPECT_DEATH(registry.GetCounter("ok", "B.", {{"a", "1"}, {"a", "2"}}),
               "duplicate label");
  EXPECT_DEATH(registry.GetHistogram("h", "H.", {1}, {{"le", "1"}}),
               "\"le\" is reserved");
  EXPECT_DEATH(registry.GetHistogram("h", "H.", {2, 1}), "strictly increasing");
}

TEST(RegistryDeathTest, DiesOnAZeroBound) {
  EXPECT_DEATH(Registry({.max_series_per_family = 0}),
               "max_series_per_family must be at least 1");
}

TEST(RegistryDeathTest, DiesOnNegativeCounterIncrement) {
  Counter counter;

  EXPECT_DEATH(counter.Inc(-1), "increment must be >= 0");
}

}  // namespace
}  // namespace ferry::metrics
