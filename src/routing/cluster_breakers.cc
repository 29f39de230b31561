#include "routing/cluster_breakers.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace ferry::routing {

ClusterBreaker::ClusterBreaker(ClusterBreakers* owner, backend::Cluster* cluster,
                               const config::BreakerConfig& config,
                               metrics::Registry* registry)
    : owner_(owner),
      cluster_(cluster),
      failovers_(registry->GetCounter(
          "ferry_cluster_failovers_total",
          "Times writes left this cluster: its breaker opened (or it was drained) "
          "while closed.",
          {{"cluster", cluster->name()}})),
      breaker_(config, owner->clock_()) {
  registry->AddGaugeCallback(
      "ferry_cluster_breaker_state",
      "Write circuit breaker of the cluster: 0 closed (takes writes), 1 half-open "
      "(probing), 2 open (writes go to the next cluster of their route).",
      {{"cluster", cluster->name()}},
      [this] { return static_cast<double>(static_cast<int>(state())); });
}

void ClusterBreaker::Record(int64_t outcomes, int64_t failures,
                            const absl::Status& failure) {
  // Outcomes count only while closed; after a trip the purged publishes of
  // the cluster would otherwise queue on the lock.
  if (state() != BreakerState::kClosed) return;
  const absl::Time now = owner_->clock_();
  std::optional<BreakerTransition> transition;
  {
    absl::MutexLock lock(&mu_);
    transition = breaker_.RecordOutcomes(now, outcomes, failures, failure);
    state_.store(breaker_.state(), std::memory_order_release);
  }
  if (transition) Announce(*transition, /*cluster_unhealthy=*/true);
}

void ClusterBreaker::Announce(const BreakerTransition& transition,
                              bool cluster_unhealthy) {
  if (transition.from == BreakerState::kClosed) failovers_.Inc();
  if (cluster_unhealthy && transition.to == BreakerState::kOpen) {
    fail_pending_.store(true, std::memory_order_release);
  }
  auto level =
      transition.to == BreakerState::kClosed ? spdlog::level::info : spdlog::level::warn;
  spdlog::log(level, "cluster {} breaker {}->{}: {}", cluster_->name(),
              ToString(transition.from), ToString(transition.to), transition.reason);
}

void ClusterBreaker::OnProbe(const absl::Status& status) {
  const absl::Time now = owner_->clock_();
  std::optional<BreakerTransition> transition;
  {
    absl::MutexLock lock(&mu_);
    probe_in_flight_ = false;
    transition = breaker_.RecordProbe(now, status);
    state_.store(breaker_.state(), std::memory_order_release);
  }
  if (transition) Announce(*transition, /*cluster_unhealthy=*/false);
}

ClusterBreakers::ClusterBreakers(const config::BreakerConfig& config,
                                 const std::vector<backend::Cluster*>& clusters,
                                 metrics::Registry* registry, Clock clock)
    : clock_(std::move(clock)) {
  for (backend::Cluster* cluster : clusters) {
    breakers_.emplace(cluster->name(), std::unique_ptr<ClusterBreaker>(new ClusterBreaker(
                                           this, cluster, config, registry)));
  }
}

ClusterBreakers::~ClusterBreakers() { Stop(); }

void ClusterBreakers::Start(absl::Duration tick) {
  for (auto& [name, breaker] : breakers_) {
    watchers_.emplace_back([this, tick, b = breaker.get()] {
      while (true) {
        Watch(*b);
        absl::MutexLock lock(&stop_mu_);
        if (stop_mu_.AwaitWithTimeout(absl::Condition(&stopping_), tick)) return;
      }
    });
  }
}

void ClusterBreakers::Stop() {
  {
    absl::MutexLock lock(&stop_mu_);
    stopping_ = true;
  }
  for (std::thread& watcher : watchers_) watcher.join();
  watchers_.clear();
}

ClusterBreaker* ClusterBreakers::Choose(const std::vector<std::string>& write) const {
  ClusterBreaker* first = nullptr;
  for (const std::string& name : write) {
    ClusterBreaker* breaker = Find(name);
    if (breaker == nullptr) continue;
    if (breaker->state() == BreakerState::kClosed) return breaker;
    if (first == nullptr) first = breaker;
  }
  return first;
}

ClusterBreaker* ClusterBreakers::Find(std::string_view cluster) const {
  auto it = breakers_.find(cluster);
  return it == breakers_.end() ? nullptr : it->second.get();
}

absl::Status ClusterBreakers::SetDrained(std::string_view cluster, bool drained) {
  ClusterBreaker* breaker = Find(cluster);
  if (breaker == nullptr) {
    return absl::NotFoundError(fmt::format("unknown cluster \"{}\"", cluster));
  }
  const absl::Time now = clock_();
  std::optional<BreakerTransition> transition;
  {
    absl::MutexLock lock(&breaker->mu_);
    transition = breaker->breaker_.SetDrained(now, drained);
    breaker->state_.store(breaker->breaker_.state(), std::memory_order_release);
  }
  if (transition) breaker->Announce(*transition, /*cluster_unhealthy=*/false);
  return absl::OkStatus();
}

void ClusterBreakers::Watch(ClusterBreaker& breaker) {
  const backend::ClusterStatus status = breaker.cluster_->Status();
  const absl::Time now = clock_();
  std::optional<BreakerTransition> transition;
  bool probe = false;
  {
    absl::MutexLock lock(&breaker.mu_);
    transition = breaker.breaker_.ObserveCluster(now, status);
    breaker.state_.store(breaker.breaker_.state(), std::memory_order_release);
    probe =
        breaker.breaker_.state() == BreakerState::kHalfOpen && !breaker.probe_in_flight_;
    if (probe) breaker.probe_in_flight_ = true;
  }
  if (transition) breaker.Announce(*transition, /*cluster_unhealthy=*/true);
  if (breaker.fail_pending_.exchange(false, std::memory_order_acq_rel)) {
    breaker.cluster_->FailPendingPublishes();
  }
  if (probe) SendProbe(breaker);
}

void ClusterBreakers::WatchAll() {
  for (auto& [name, breaker] : breakers_) Watch(*breaker);
}

void ClusterBreakers::SendProbe(ClusterBreaker& breaker) {
  bool topic_ready = false;
  {
    absl::MutexLock lock(&breaker.mu_);
    topic_ready = breaker.probe_topic_ready_;
  }
  if (!topic_ready) {
    backend::Cluster* cluster = breaker.cluster_;
    absl::Status exists = cluster->DescribeTopic(kProbeTopic).status();
    if (absl::IsNotFound(exists)) {
      exists = cluster->CreateTopic(kProbeTopic, /*partitions=*/1,
                                    /*replication_factor=*/-1, {});
      if (absl::IsAlreadyExists(exists)) exists = absl::OkStatus();
    }
    if (!exists.ok()) {
      breaker.OnProbe(exists);
      return;
    }
    absl::MutexLock lock(&breaker.mu_);
    breaker.probe_topic_ready_ = true;
  }
  breaker.cluster_->Publish(
      backend::Record{.topic = kProbeTopic, .value = "probe"},
      [b = &breaker](backend::PublishOutcome outcome) { b->OnProbe(outcome.status); });
}

}  // namespace ferry::routing
