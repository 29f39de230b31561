#include "metrics/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace ferry::metrics {
namespace {

static_assert(std::atomic<double>::is_always_lock_free);

[[noreturn]] void Die(std::string_view metric, std::string_view what) {
  std::fprintf(stderr, "ferry::metrics: %.*s: %.*s\n", static_cast<int>(metric.size()),
               metric.data(), static_cast<int>(what.size()), what.data());
  std::abort();
}

bool IsValidName(std::string_view name, bool allow_colon) {
  auto valid = [&](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (allow_colon && c == ':') || (!first && c >= '0' && c <= '9');
  };
  if (name.empty() || !valid(name[0], true)) return false;
  return std::all_of(name.begin() + 1, name.end(),
                     [&](char c) { return valid(c, false); });
}

// Sorted by name so that label order does not create distinct series.
Labels CanonicalLabels(std::string_view metric, Labels labels, bool histogram) {
  std::sort(labels.begin(), labels.end());
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string& key = labels[i].first;
    if (!IsValidName(key, false) || key.starts_with("__")) {
      Die(metric, "invalid label name \"" + key + "\"");
    }
    if (histogram && key == "le") Die(metric, "label \"le\" is reserved");
    if (i > 0 && labels[i - 1].first == key) {
      Die(metric, "duplicate label \"" + key + "\"");
    }
  }
  return labels;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, end);
}

// `quote` is true for label values; HELP text escapes only '\' and newline.
void AppendEscaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// Appends `name{labels,le="..."} value\n`; `le` is empty for non-buckets.
void AppendSample(std::string& out, std::string_view name, const Labels& labels,
                  std::string_view le, std::string_view value) {
  out += name;
  if (!labels.empty() || !le.empty()) {
    char sep = '{';
    for (const auto& [key, val] : labels) {
      out += sep;
      out += key;
      out += "=\"";
      AppendEscaped(out, val, true);
      out += '"';
      sep = ',';
    }
    if (!le.empty()) {
      out += sep;
      out += "le=\"";
      out += le;
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace

void Counter::Inc(double v) {
  if (!(v >= 0)) Die("counter", "increment must be >= 0");
  value_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i - 1] >= bounds_[i])) {
      Die("histogram", "bounds must be finite and strictly increasing");
    }
  }
}

void Histogram::Observe(double v, uint64_t times) {
  // First bound b with v <= b; NaN compares false everywhere and gets +Inf.
  size_t i = std::partition_point(bounds_.begin(), bounds_.end(),
                                  [v](double b) { return !(v <= b); }) -
             bounds_.begin();
  absl::MutexLock lock(&mu_);
  counts_[i] += times;
  sum_ += v * static_cast<double>(times);
}

Histogram::Snapshot Histogram::Read() const {
  absl::MutexLock lock(&mu_);
  Snapshot s{counts_, sum_};
  for (size_t i = 1; i < s.cumulative.size(); ++i) {
    s.cumulative[i] += s.cumulative[i - 1];
  }
  return s;
}

// Exactly one member is set, matching the family type (a counter family's
// series holds `counter` or `callback`, a gauge family's `gauge` or
// `callback`).
struct Registry::Series {
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
  std::function<double()> callback;
};

struct Registry::Family {
  Type type;
  std::string help;
  std::vector<double> bounds;       // Histograms only.
  std::map<Labels, Series> series;  // Keyed by canonical (sorted) labels.
  // Handed out past the bound; never rendered or removed. Created on the
  // first refusal.
  std::unique_ptr<Series> overflow;
};

Registry::Registry() : Registry(Options{}) {}

Registry::Registry(Options options) : options_(options) {
  if (options_.max_series_per_family < 1) {
    Die("registry", "max_series_per_family must be at least 1");
  }
}

Registry::~Registry() = default;

Registry::Series& Registry::GetSeries(std::string_view name, std::string_view help,
                                      Type type, const std::vector<double>& bounds,
                                      const Labels& labels, bool* overflow) {
  if (!IsValidName(name, true)) Die(name, "invalid metric name");
  auto it = families_.find(name);
  if (it == families_.end()) {
    auto family =
        std::make_unique<Family>(Family{type, std::string(help), bounds, {}, nullptr});
    it = families_.emplace(std::string(name), std::move(family)).first;
  }
  Family& family = *it->second;
  if (family.type != type) Die(name, "registered again with another type");
  if (family.help != help) Die(name, "registered again with another help");
  if (family.bounds != bounds) {
    Die(name, "registered again with other histogram bounds");
  }
  Labels canonical = CanonicalLabels(name, labels, type == Type::kHistogram);
  *overflow = false;
  if (auto found = family.series.find(canonical); found != family.series.end()) {
    return found->second;
  }
  // The dropped counter itself is exempt: one series per family at most.
  if (family.series.size() >= options_.max_series_per_family &&
      name != kDroppedSeriesName) {
    *overflow = true;
    CountDropped(name);
    if (family.overflow == nullptr) family.overflow = std::make_unique<Series>();
    return *family.overflow;
  }
  return family.series[std::move(canonical)];
}

void Registry::CountDropped(std::string_view family) {
  bool unused;
  Series& s = GetSeries(kDroppedSeriesName,
                        "Series not created because their family had reached "
                        "metrics.max_series_per_family; their updates are not exported.",
                        Type::kCounter, {}, {{"family", std::string(family)}}, &unused);
  if (!s.counter) s.counter = std::make_unique<Counter>();
  s.counter->Inc();
}

Counter& Registry::GetCounter(std::string_view name, std::string_view help,
                              const Labels& labels) {
  absl::MutexLock lock(&mu_);
  bool overflow;
  Series& s = GetSeries(name, help, Type::kCounter, {}, labels, &overflow);
  if (s.callback) Die(name, "series already registered as a callback");
  if (!s.counter) s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& Registry::GetGauge(std::string_view name, std::string_view help,
                          const Labels& labels) {
  absl::MutexLock lock(&mu_);
  bool overflow;
  Series& s = GetSeries(name, help, Type::kGauge, {}, labels, &overflow);
  if (s.callback) Die(name, "series already registered as a callback");
  if (!s.gauge) s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& Registry::GetHistogram(std::string_view name, std::string_view help,
                                  std::vector<double> bounds, const Labels& labels) {
  absl::MutexLock lock(&mu_);
  bool overflow;
  Series& s = GetSeries(name, help, Type::kHistogram, bounds, labels, &overflow);
  if (!s.histogram) s.histogram = std::make_unique<Histogram>(std::move(bounds));
  return *s.histogram;
}

void Registry::AddGaugeCallback(std::string_view name, std::string_view help,
                                const Labels& labels, std::function<double()> fn) {
  AddCallback(name, help, Type::kGauge, labels, std::move(fn));
}

void Registry::AddCounterCallback(std::string_view name, std::string_view help,
                                  const Labels& labels, std::function<double()> fn) {
  AddCallback(name, help, Type::kCounter, labels, std::move(fn));
}

void Registry::AddCallback(std::string_view name, std::string_view help, Type type,
                           const Labels& labels, std::function<double()> fn) {
  if (!fn) Die(name, "null callback");
  {
    absl::MutexLock lock(&mu_);
    bool overflow;
    Series& s = GetSeries(name, help, type, {}, labels, &overflow);
    if (!overflow) {
      if (s.counter || s.gauge || s.callback) Die(name, "series already registered");
      s.callback = std::move(fn);
      return;
    }
  }
  // Refused (counted): fn is destroyed here, outside the lock.
}

size_t Registry::RemoveSeries(const Labels& match) {
  if (match.empty()) return 0;
  Labels wanted = match;
  std::sort(wanted.begin(), wanted.end());
  // Destroyed after the lock is released: a callback's captures may run
  // arbitrary destructors.
  std::vector<Series> removed;
  absl::MutexLock lock(&mu_);
  for (auto& [name, family] : families_) {
    for (auto it = family->series.begin(); it != family->series.end();) {
      // Both sorted by (name, value), names unique within each.
      if (std::includes(it->first.begin(), it->first.end(), wanted.begin(),
                        wanted.end())) {
        removed.push_back(std::move(it->second));
        it = family->series.erase(it);
      } else {
        ++it;
      }
    }
  }
  return removed.size();
}

std::string Registry::Render() const {
  static constexpr std::string_view kTypeNames[] = {"counter", "gauge", "histogram"};
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, family] : families_) {
    if (family->series.empty()) continue;  // all removed
    out += "# HELP " + name;
    if (!family->help.empty()) out += ' ';
    AppendEscaped(out, family->help, false);
    out += "\n# TYPE " + name + " ";
    out += kTypeNames[static_cast<int>(family->type)];
    out += '\n';
    for (const auto& [labels, s] : family->series) {
      switch (family->type) {
        case Type::kCounter:
          AppendSample(out, name, labels, "",
                       FormatValue(s.callback ? s.callback() : s.counter->Value()));
          break;
        case Type::kGauge:
          AppendSample(out, name, labels, "",
                       FormatValue(s.callback ? s.callback() : s.gauge->Value()));
          break;
        case Type::kHistogram: {
          Histogram::Snapshot snap = s.histogram->Read();
          const std::vector<double>& bounds = family->bounds;
          for (size_t i = 0; i < snap.cumulative.size(); ++i) {
            AppendSample(out, name + "_bucket", labels,
                         i < bounds.size() ? FormatValue(bounds[i]) : "+Inf",
                         std::to_string(snap.cumulative[i]));
          }
          AppendSample(out, name + "_sum", labels, "", FormatValue(snap.sum));
          AppendSample(out, name + "_count", labels, "",
                       std::to_string(snap.cumulative.back()));
          break;
        }
      }
    }
  }
  return out;
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

}  // namespace ferry::metrics
