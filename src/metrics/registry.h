// Dependency-free Prometheus metrics registry rendering the text exposition
// format 0.0.4.
//
// Programming errors (invalid names, a name reused with another type, help or
// bucket layout, a negative counter increment) abort the process with a
// message on stderr, in release builds too.
#ifndef FERRY_METRICS_REGISTRY_H_
#define FERRY_METRICS_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ferry::metrics {

// Label name/value pairs. Order does not matter: a series is identified by its
// labels sorted by name. Names must be unique within one series.
using Labels = std::vector<std::pair<std::string, std::string>>;

// Monotonically increasing value. Lock-free; safe from any thread.
class Counter {
 public:
  // v must be >= 0 (aborts otherwise).
  void Inc(double v = 1);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Value that can go up and down. Lock-free; safe from any thread.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Distribution of observations over fixed buckets. Observe() is thread-safe
// and takes a short per-histogram lock so that a scrape sees buckets, _sum and
// _count from the same instant.
class Histogram {
 public:
  // bounds: finite, strictly increasing upper bounds; "+Inf" is implicit.
  explicit Histogram(std::vector<double> bounds);

  // Counts v `times` times (one lock for a batch of equal observations) in
  // the first bucket with v <= bound (NaN lands in +Inf only).
  void Observe(double v, uint64_t times = 1);

 private:
  friend class Registry;
  struct Snapshot {
    std::vector<uint64_t> cumulative;  // One per bound, then +Inf (= count).
    double sum;
  };
  Snapshot Read() const;

  const std::vector<double> bounds_;
  mutable absl::Mutex mu_;
  // Per-bucket (non-cumulative) counts; the last entry is the +Inf bucket.
  std::vector<uint64_t> counts_ ABSL_GUARDED_BY(mu_);
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
};

// Owns metric families and renders them. All methods are thread-safe.
//
// Lifetime: a reference returned by GetCounter/GetGauge/GetHistogram stays
// valid until a RemoveSeries() that matches its series, or the registry's
// destruction. The caller must not use it once that RemoveSeries() started:
// whoever owns a label value (the subscribe path for {"group", g}) first
// makes sure nothing still holds or uses references to its series (its
// threads stopped, its objects destroyed), then removes them.
//
// Bound: a family holds at most Options::max_series_per_family series
// (callback gauges included), so label values chosen by clients (group
// names) cannot grow memory and /metrics without limit. Past the bound, a
// Get* that would create a series returns the family's overflow series
// instead: it works like any series of the family but is never rendered and
// never removed, so callers need no error path (what they count there is not
// exported). AddGaugeCallback or AddCounterCallback past the bound drops the callback.
// Each refusal increments ferry_metrics_series_dropped_total{family="<name>"} (a family
// exempt from the bound: one series per family at most). A caller keeps the
// overflow series it got even after RemoveSeries() made room; only a later
// Get* returns a real series.
class Registry {
 public:
  // metrics.max_series_per_family's default. It is a safety net against
  // label values invented by clients, not a capacity figure: a healthy node
  // stays well below it once series of departed groups are removed (its
  // largest family, per-partition lag, holds groups x owned partitions, e.g.
  // 200 groups x 50 partitions). At the bound a family costs (measured, three
  // 20-character labels): a histogram (14 buckets) 7.7 MB of memory and
  // 24 MB of /metrics text, a counter or gauge 4.6 MB and 1.3 MB.
  static constexpr size_t kDefaultMaxSeriesPerFamily = 10000;
  struct Options {
    // At least 1 (aborts otherwise).
    size_t max_series_per_family = kDefaultMaxSeriesPerFamily;
  };
  static constexpr std::string_view kDroppedSeriesName =
      "ferry_metrics_series_dropped_total";

  Registry();
  explicit Registry(Options options);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Return the series for (name, labels), creating family and series on first
  // use. A name keeps the type and help (and, for histograms, the bounds) it
  // was first registered with; a mismatch aborts. Takes the registry lock:
  // look series up once and keep the reference rather than calling per event.
  Counter& GetCounter(std::string_view name, std::string_view help,
                      const Labels& labels = {});
  Gauge& GetGauge(std::string_view name, std::string_view help,
                  const Labels& labels = {});
  // "le" is reserved and must not appear in labels.
  Histogram& GetHistogram(std::string_view name, std::string_view help,
                          std::vector<double> bounds, const Labels& labels = {});

  // A gauge computed at scrape time (e.g. uptime, connection state). fn is
  // called under the registry lock from Render(), possibly from any thread; it
  // must be cheap and must not call back into the registry (deadlock).
  // Registering the same (name, labels) twice, or a series that GetGauge()
  // already created, aborts. A callback is removed (and destroyed, outside the
  // registry lock) only by a RemoveSeries() that matches it: until then,
  // whatever fn captures must stay valid for as long as Render() may be
  // called.
  void AddGaugeCallback(std::string_view name, std::string_view help,
                        const Labels& labels, std::function<double()> fn);
  // The same for a counter kept elsewhere (rendered with "# TYPE counter"):
  // fn must never return less than it returned before.
  void AddCounterCallback(std::string_view name, std::string_view help,
                          const Labels& labels, std::function<double()> fn);

  // Removes every series, of every family, whose labels include all pairs of
  // `match` (e.g. {{"group", "g1"}} removes the group's series however many
  // other labels they have), frees them and returns how many it removed.
  // Removed series are no longer rendered; a later Get* with the same labels
  // creates a fresh series (a counter starts again at 0, which Prometheus
  // reads as a counter reset). Families stay registered with their type and
  // help; a family without series is not rendered. Overflow series are never
  // removed. An empty `match` removes nothing. Cost: one pass over every
  // series, under the registry lock.
  size_t RemoveSeries(const Labels& match);

  // Prometheus text format 0.0.4: families sorted by name, each with one
  // "# HELP" and "# TYPE" line, series sorted by labels.
  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series;
  struct Family;

  // The series for (name, labels), created if missing and within the bound;
  // past the bound, the family's overflow series (`*overflow` set true) and
  // the refusal counted.
  Series& GetSeries(std::string_view name, std::string_view help, Type type,
                    const std::vector<double>& bounds, const Labels& labels,
                    bool* overflow) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CountDropped(std::string_view family) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddCallback(std::string_view name, std::string_view help, Type type,
                   const Labels& labels, std::function<double()> fn);

  const Options options_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Family>, std::less<>> families_
      ABSL_GUARDED_BY(mu_);
};

// Default latency buckets in seconds, from 0.0005 to 10.
std::vector<double> LatencyBuckets();

}  // namespace ferry::metrics

#endif  // FERRY_METRICS_REGISTRY_H_
