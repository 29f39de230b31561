#pragma once

// The circuit breaker of one cluster's writes on one node (DESIGN.md §2
// "Availability"): while it is closed the cluster takes the writes of every
// route that lists it first; while it is open or half-open they go to the
// next cluster of the route whose breaker is closed.
//
//   closed ──(failure rate over the window, or metadata probe down)──► open
//   open ──(open period over and the metadata probe answers)──► half-open
//   half-open ──(close_after probe messages acknowledged in a row)──► closed
//   half-open ──(a probe message failed)──► open, for twice as long (capped)
//   any ──(drained by an operator)──► open, until undrained (then half-open)
//
// The window is kBuckets buckets of window/kBuckets each (1 s by default):
// recording outcomes is O(1) and allocation-free, and only counted failures
// sum the buckets (O(kBuckets)) to decide whether to open. Outcomes count
// only while closed; closing starts an empty window.
//
// Backoff: each open lasts the current open period, at least
// breaker.open_for. A failed probe doubles it (up to kMaxOpenForFactor
// times open_for), and so does a trip within one open period after closing
// (a flapping cluster); staying closed longer than that resets it. So traffic
// never moves back to a cluster more often than once per open_for.
//
// Threading: not thread-safe; ClusterBreakers (cluster_breakers.h) wraps each
// one in a lock. Time is passed in, never read; `now` must not go backwards.
//
// Usage:
//   CircuitBreaker breaker(config, now);
//   if (auto t = breaker.RecordOutcomes(now, 100, 2, last_failure)) Log(*t);
//   if (auto t = breaker.ObserveCluster(now, cluster->Status())) Log(*t);
//   if (breaker.state() == BreakerState::kHalfOpen) SendProbe();
//   if (auto t = breaker.RecordProbe(now, probe_status)) Log(*t);

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backend/cluster.h"
#include "config/config.h"

namespace ferry::routing {

enum class BreakerState { kClosed = 0, kHalfOpen = 1, kOpen = 2 };

// "closed", "half-open", "open" (the admin API's Cluster.breaker).
std::string_view ToString(BreakerState state);

// A change of state and why, for the log line.
struct BreakerTransition {
  BreakerState from;
  BreakerState to;
  // E.g. "14/20 failed in the last 10s (UNAVAILABLE: ...)".
  std::string reason;
};

class CircuitBreaker {
 public:
  static constexpr int kBuckets = 10;
  static constexpr int kMaxOpenForFactor = 8;

  CircuitBreaker(const config::BreakerConfig& config, absl::Time now);

  BreakerState state() const { return state_; }
  bool drained() const { return drained_; }

  // `outcomes` publish outcomes of the cluster (e.g. a batch's), of which
  // `failures` count against it (PublishOutcome::counts_against_cluster);
  // `failure` says why one of them failed. May open the breaker.
  std::optional<BreakerTransition> RecordOutcomes(absl::Time now, int64_t outcomes,
                                                  int64_t failures,
                                                  const absl::Status& failure);

  // The cluster's last metadata probe (backend::Cluster::Status()), checked
  // periodically: opens a closed breaker whose cluster has not answered for
  // down_after; moves an open one whose period is over to half-open once the
  // cluster answers again.
  std::optional<BreakerTransition> ObserveCluster(absl::Time now,
                                                  const backend::ClusterStatus& status);

  // The outcome of a probe message sent while half-open (ignored otherwise).
  std::optional<BreakerTransition> RecordProbe(absl::Time now,
                                               const absl::Status& status);

  // Drained: open until undrained, whatever the cluster does; undrained:
  // half-open, so probes decide when writes come back.
  std::optional<BreakerTransition> SetDrained(absl::Time now, bool drained);

  // How long the current or next open lasts (for tests and the log).
  absl::Duration open_period() const { return open_period_; }

 private:
  struct Bucket {
    int64_t index = -1;  // which bucket-wide slice of time it counts
    int64_t total = 0;
    int64_t failed = 0;
  };
  BreakerTransition MoveTo(absl::Time now, BreakerState to, std::string reason);
  // Opens from closed, doubling the open period when the breaker closed less
  // than one open period ago.
  BreakerTransition Trip(absl::Time now, std::string reason);
  void ClearWindow();

  const config::BreakerConfig config_;
  const int64_t bucket_nanos_;
  BreakerState state_ = BreakerState::kClosed;
  bool drained_ = false;
  std::array<Bucket, kBuckets> buckets_;
  absl::Time entered_;  // when the current state began
  absl::Duration open_period_;
  // When probes last closed it; InfinitePast() if never.
  absl::Time last_closed_ = absl::InfinitePast();
  int64_t probe_successes_ = 0;
  // First time the cluster was seen down without ever having answered.
  absl::Time down_since_ = absl::InfiniteFuture();
};

}  // namespace ferry::routing
