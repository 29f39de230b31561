#pragma once

// The subscribe path's Prometheus series for one consumer group on this node:
// per-topic delivery counters and latency histograms, a lag gauge per owned
// partition of each cluster the group reads, and filter evaluation figures.
//
// Threading: the methods are not thread-safe (the dispatcher calls them
// under its lock); the counters, gauges and histograms they return are.
// Cost: For() and Lag() are map lookups; the first call per topic / partition
// creates the series under the registry's lock.

#include <map>
#include <string>
#include <utility>

#include "backend/cluster.h"
#include "metrics/registry.h"

namespace ferry::subscribe {

struct TopicMetrics {
  metrics::Counter* delivered;
  metrics::Counter* redelivered;
  metrics::Counter* acked;
  metrics::Counter* nacked;
  metrics::Counter* expired;
  metrics::Counter* dead_lettered;
  metrics::Counter* dead_letter_failures;
  metrics::Counter* filtered;
  metrics::Histogram* processing;
  metrics::Histogram* end_to_end;
};

class GroupMetrics {
 public:
  // `registry` must outlive this object.
  GroupMetrics(metrics::Registry* registry, std::string group);

  // The topic's series, created on first use. The pointer stays valid for
  // this object's lifetime.
  TopicMetrics& For(const std::string& topic);
  // Messages of `tp` on `cluster` not yet committed by the group.
  metrics::Gauge& Lag(const std::string& cluster, const backend::TopicPartition& tp);
  // Filter evaluation, created on first use (groups without filters export
  // none).
  metrics::Counter& FilterErrors();
  metrics::Histogram& FilterEvalSeconds();

 private:
  metrics::Registry* const registry_;
  const std::string group_;
  std::map<std::string, TopicMetrics> topics_;
  // Looked up once per partition: past the registry's series bound every
  // lookup would count as another dropped series.
  std::map<std::pair<std::string, backend::TopicPartition>, metrics::Gauge*> lag_;
  metrics::Counter* filter_errors_ = nullptr;
  metrics::Histogram* filter_eval_seconds_ = nullptr;
};

}  // namespace ferry::subscribe
