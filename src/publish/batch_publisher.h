#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "backend/cluster.h"
#include "common/stage_trace.h"
#include "config/config.h"
#include "metrics/registry.h"
#include "publish/inflight_limiter.h"
#include "publish/publish_wire.h"
#include "publish/sojourn_gate.h"
#include "publish/topic_auto_creator.h"
#include "publish/write_hold.h"
#include "routing/cluster_breakers.h"
#include "routing/route_table.h"

namespace ferry::publish {

// A batch that passed the call-level checks.
struct PreparedBatch {
  backend::Cluster* cluster = nullptr;
  // The cluster's breaker, which takes every outcome of the batch.
  routing::ClusterBreaker* breaker = nullptr;
  // The route lets publishing create the topic when it is missing.
  bool auto_create_topic = false;
  // Bytes the batch holds in memory until answered (for the limiter).
  int64_t bytes = 0;
};

// The publish path shared by the unary and the streaming RPC: checks a
// batch, routes it to its write cluster, publishes every message and
// collects one result per message. Thread-safe; holds no per-call state.
class BatchPublisher {
 public:
  // `routes`, `breakers` (whose clusters are the ones written), `registry`,
  // `limiter` and `hold` (none when null) must outlive the publisher.
  BatchPublisher(config::PublishConfig limits, const routing::RouteTable* routes,
                 routing::ClusterBreakers* breakers, metrics::Registry* registry,
                 InflightLimiter* limiter, WriteHold* hold = nullptr);
  ~BatchPublisher();

  // Call-level checks before any message is attempted: INVALID_ARGUMENT
  // (empty batch, bad topic name, too many messages or bytes), NOT_FOUND (no
  // route for the topic), UNAVAILABLE (the route names no usable cluster).
  // The batch goes to the first cluster of the route's write list whose
  // circuit breaker is closed, else to the first one (tried rather than
  // failed fast); all of it to that one cluster, so a key's messages keep
  // their order within each cluster.
  absl::StatusOr<PreparedBatch> Prepare(const PublishRequestView& request) const;

  // Publishes a prepared batch whose bytes the caller already took from the
  // limiter. `request` (and the bytes it views) and `answer` stay the
  // caller's and must live until `done` runs: the backend writes keys,
  // values and headers from where they lie in the received request (one
  // Cluster::PublishBatch per batch), and `answer` gets one result per
  // message in request order. Messages failing per-message checks (size, reserved
  // headers) are answered without being sent. `done` runs exactly once,
  // after the bytes were released; it runs on a backend thread or this one
  // and must not block. While the topic is write-held the batch waits (up to
  // publish.timeout, then fails UNAVAILABLE), and is routed afresh when
  // released.
  void Publish(const PublishRequestView* request, BatchResults* answer,
               PreparedBatch batch, std::function<void()> done);

 private:
  struct TopicMetrics;
  struct ClusterAdmission;
  struct Call;
  // Publish, past the write hold.
  void PublishAdmitted(const PublishRequestView* request, BatchResults* answer,
                       PreparedBatch batch, std::function<void()> done);
  // `done`, then the hold learns the batch's writes completed.
  std::function<void()> CountedDone(const std::string& topic, std::function<void()> done);
  // Answers every message with `status` and releases the batch's bytes.
  void FailAll(const PublishRequestView& request, BatchResults* answer,
               const PreparedBatch& batch, const absl::Status& status,
               const std::function<void()>& done);
  // Publishes the messages of a batch whose topic exists (or is not ours to
  // create), or refuses the whole batch unwritten while the topic's oldest
  // unanswered batch on its cluster has waited longer than
  // publish.drain_share of publish.timeout (RESOURCE_EXHAUSTED, retryable).
  void Dispatch(const PublishRequestView* request, BatchResults* answer,
                PreparedBatch batch, std::function<void()> done);
  TopicMetrics& MetricsFor(const std::string& topic, const std::string& cluster);
  ClusterAdmission& AdmissionFor(const backend::Cluster& cluster);
  // Counts and logs a refusal; returns the status each message gets.
  absl::Status Refuse(const PublishRequestView& request, const std::string& cluster,
                      ClusterAdmission& admission, absl::Duration oldest_wait,
                      absl::Time now);
  absl::Status CheckMessage(const PublishRequestView& request,
                            const MessageView& message) const;

  const config::PublishConfig limits_;
  const routing::RouteTable* routes_;
  routing::ClusterBreakers* breakers_;
  metrics::Registry* registry_;
  InflightLimiter* limiter_;
  WriteHold* hold_;
  // FERRY_STAGE_TRACE (stage_trace.h): a row per batch; null when off.
  const std::unique_ptr<stage_trace::Tracer> trace_;

  absl::Mutex metrics_mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<TopicMetrics>>
      topic_metrics_ ABSL_GUARDED_BY(metrics_mu_);
  absl::Mutex admissions_mu_;
  std::map<const backend::Cluster*, std::unique_ptr<ClusterAdmission>> admissions_
      ABSL_GUARDED_BY(admissions_mu_);
  // Last: its worker may still dispatch while it is being destroyed, which
  // uses everything above.
  TopicAutoCreator auto_creator_;
};

}  // namespace ferry::publish
