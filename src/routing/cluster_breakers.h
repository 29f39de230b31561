#pragma once

// Every cluster's write breaker on this node (circuit_breaker.h), with the
// locking, the metrics, the log lines and the probing around them.
//
// The publish path asks Choose(route.write) for each batch and records the
// batch's outcomes into the chosen ClusterBreaker once the batch is done. A watcher
// thread per cluster (Start) checks the cluster's metadata probe every tick, moves open
// breakers to half-open, sends the half-open probe messages (to kProbeTopic on
// the cluster, created with one partition when missing) and, when a breaker
// opened because its cluster is unhealthy, fails the publishes still waiting
// on that cluster (Cluster::FailPendingPublishes: UNAVAILABLE, retryable), so
// their clients resend them now and they land on the next cluster (routes
// without one resend to the same cluster rather than wait out the publish
// timeout of a cluster that stopped answering; a duplicate is possible if it
// was only slow, which the ferry.id header lets consumers drop). Drained
// breakers do not fail them: a healthy cluster acknowledges them in
// milliseconds, and failing them would only make duplicates.
//
// Threading: thread-safe. Record() and Choose() are the hot path, once per
// batch: Choose() reads atomics; Record() reads the clock and takes the
// breaker's lock for a few counter updates (not while the breaker is not
// closed). breaker_bench measures them. No lock is held across a call into a
// cluster, since a publish may complete inline.
//
// Lifetime: the clusters must outlive this object; Stop() (or the destructor)
// joins the watchers, after which the object may still take Record() calls
// and probe outcomes, so it must outlive the clusters' last callbacks.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "backend/cluster.h"
#include "config/config.h"
#include "metrics/registry.h"
#include "routing/circuit_breaker.h"

namespace ferry::routing {

// Where half-open breakers send their probe messages, on their own cluster.
inline constexpr char kProbeTopic[] = "__ferry_probe";

class ClusterBreakers;

// One cluster's breaker.
class ClusterBreaker {
 public:
  backend::Cluster* cluster() const { return cluster_; }
  BreakerState state() const { return state_.load(std::memory_order_acquire); }

  // Outcomes of writes sent to this cluster (one batch's): `outcomes` in
  // all, `failures` of them counting against the cluster
  // (PublishOutcome::counts_against_cluster), `failure` the status of one.
  void Record(int64_t outcomes, int64_t failures, const absl::Status& failure);

 private:
  friend class ClusterBreakers;
  ClusterBreaker(ClusterBreakers* owner, backend::Cluster* cluster,
                 const config::BreakerConfig& config, metrics::Registry* registry);

  // Logs, counts and publishes the new state; after a trip the watcher fails
  // the cluster's pending publishes. Called without mu_.
  void Announce(const BreakerTransition& transition, bool cluster_unhealthy);
  void OnProbe(const absl::Status& status);

  ClusterBreakers* const owner_;
  backend::Cluster* const cluster_;
  metrics::Counter& failovers_;
  std::atomic<BreakerState> state_{BreakerState::kClosed};
  absl::Mutex mu_;
  CircuitBreaker breaker_ ABSL_GUARDED_BY(mu_);
  bool probe_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool probe_topic_ready_ ABSL_GUARDED_BY(mu_) = false;
  // Set by a trip for unhealthiness; the watcher fails pending publishes.
  std::atomic<bool> fail_pending_{false};
};

class ClusterBreakers {
 public:
  using Clock = std::function<absl::Time()>;

  // Every breaker starts closed. `registry` must outlive this object.
  ClusterBreakers(const config::BreakerConfig& config,
                  const std::vector<backend::Cluster*>& clusters,
                  metrics::Registry* registry, Clock clock = absl::Now);
  ~ClusterBreakers();

  ClusterBreakers(const ClusterBreakers&) = delete;
  ClusterBreakers& operator=(const ClusterBreakers&) = delete;

  // Starts one watcher thread per cluster, each running Watch every `tick`.
  void Start(absl::Duration tick);
  // Joins the watchers. Idempotent.
  void Stop();

  // The breaker of the first cluster of `write` whose breaker is closed;
  // when none is, the first known one (a write is tried rather than failed
  // fast). Null only when `write` names no known cluster.
  ClusterBreaker* Choose(const std::vector<std::string>& write) const;
  // Null for an unknown cluster.
  ClusterBreaker* Find(std::string_view cluster) const;

  // Maintenance: a drained cluster's breaker stays open (writes leave it now)
  // until it is undrained, then half-open. NOT_FOUND for an unknown cluster.
  absl::Status SetDrained(std::string_view cluster, bool drained);

  // One round of the watcher of `breaker`, on the calling thread: checks the
  // cluster's status, fails pending publishes after a trip, sends the next
  // probe message while half-open. May block (probe-topic creation, bounded by
  // the cluster's admin timeout). Tests call it with a fake clock instead of
  // Start().
  void Watch(ClusterBreaker& breaker);
  // Watch for every cluster, in turn.
  void WatchAll();

 private:
  friend class ClusterBreaker;
  void SendProbe(ClusterBreaker& breaker);

  const Clock clock_;
  std::map<std::string, std::unique_ptr<ClusterBreaker>, std::less<>> breakers_;
  absl::Mutex stop_mu_;
  bool stopping_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::vector<std::thread> watchers_;
};

}  // namespace ferry::routing
