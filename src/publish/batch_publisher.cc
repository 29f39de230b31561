#include "publish/batch_publisher.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "api/retry.h"
#include "common/topic_name.h"

namespace ferry::publish {
namespace {

constexpr size_t kMaxIdLength = 256;
// Refusals are logged at most this often per cluster.
constexpr absl::Duration kRefusalLogInterval = absl::Seconds(10);
constexpr char kIdHeader[] = "ferry.id";

// Nonzero and random: backend::Record::keyless_group of one batch.
uint32_t NewKeylessGroup() {
  thread_local std::mt19937 random{std::random_device{}()};
  return std::uniform_int_distribution<uint32_t>(1)(random);
}

}  // namespace

struct BatchPublisher::TopicMetrics {
  metrics::Counter& messages;
  metrics::Counter& bytes;
  metrics::Histogram& latency;
};

// A cluster's admission by wait, and what an operator sees of it.
struct BatchPublisher::ClusterAdmission {
  ClusterAdmission(absl::Duration budget, metrics::Counter& refused)
      : gate(budget), refused(refused) {}

  SojournGate gate;
  metrics::Counter& refused;
  absl::Mutex log_mu;
  absl::Time logged ABSL_GUARDED_BY(log_mu) = absl::InfinitePast();
  int64_t unlogged ABSL_GUARDED_BY(log_mu) = 0;
};

BatchPublisher::BatchPublisher(config::PublishConfig limits,
                               const routing::RouteTable* routes,
                               routing::ClusterBreakers* breakers,
                               metrics::Registry* registry, InflightLimiter* limiter,
                               WriteHold* hold)
    : limits_(limits),
      routes_(routes),
      breakers_(breakers),
      registry_(registry),
      limiter_(limiter),
      hold_(hold),
      trace_(stage_trace::Tracer::Open(
          "ferryd-publish", "batch\tmessages\tdispatched_ns\treported_ns\tanswered_ns")) {
}

BatchPublisher::~BatchPublisher() = default;

absl::StatusOr<PreparedBatch> BatchPublisher::Prepare(
    const PublishRequestView& request) const {
  if (absl::Status s = ValidateTopicName(request.topic); !s.ok()) return s;
  const auto count = static_cast<int64_t>(request.messages.size());
  if (count == 0) return absl::InvalidArgumentError("batch has no messages");
  if (count > limits_.max_batch_messages) {
    return absl::InvalidArgumentError(
        fmt::format("batch has {} messages, more than publish.max_batch_messages {}",
                    count, limits_.max_batch_messages));
  }
  PreparedBatch batch;
  for (const MessageView& m : request.messages) batch.bytes += m.bytes;
  if (batch.bytes > limits_.max_batch_bytes) {
    return absl::InvalidArgumentError(
        fmt::format("batch has {} bytes, more than publish.max_batch_bytes {}",
                    batch.bytes, limits_.max_batch_bytes));
  }
  auto route = routes_->Current()->Resolve(request.topic);
  if (!route.ok()) return route.status();
  routing::ClusterBreaker* breaker = breakers_->Choose(route->write);
  if (breaker == nullptr) {
    return absl::UnavailableError(
        fmt::format("route \"{}\" names no usable write cluster", route->pattern));
  }
  batch.cluster = breaker->cluster();
  batch.breaker = breaker;
  batch.auto_create_topic = route->auto_create_topics;
  return batch;
}

absl::Status BatchPublisher::CheckMessage(const PublishRequestView& request,
                                          const MessageView& message) const {
  if (message.bytes > limits_.max_message_bytes) {
    return absl::InvalidArgumentError(
        fmt::format("message of {} bytes exceeds publish.max_message_bytes {}",
                    message.bytes, limits_.max_message_bytes));
  }
  if (message.id.size() > kMaxIdLength) {
    return absl::InvalidArgumentError(fmt::format("id of {} characters is longer than {}",
                                                  message.id.size(), kMaxIdLength));
  }
  for (uint32_t h = 0; h < message.header_count; ++h) {
    if (request.headers[message.first_header + h].key == kIdHeader) {
      return absl::InvalidArgumentError(
          "header ferry.id is reserved: set the message's id field instead");
    }
  }
  if (message.has_timestamp && !message.timestamp_in_range) {
    return absl::InvalidArgumentError("timestamp is out of range");
  }
  if (message.has_timestamp && message.timestamp_ms < 0) {
    return absl::InvalidArgumentError("timestamp is before 1970-01-01");
  }
  return absl::OkStatus();
}

BatchPublisher::TopicMetrics& BatchPublisher::MetricsFor(const std::string& topic,
                                                         const std::string& cluster) {
  absl::MutexLock lock(&metrics_mu_);
  auto& slot = topic_metrics_[{topic, cluster}];
  if (slot == nullptr) {
    metrics::Labels labels = {{"topic", topic}, {"cluster", cluster}};
    slot.reset(new TopicMetrics{
        registry_->GetCounter("ferry_publish_messages_total",
                              "Messages acknowledged by the broker.", labels),
        registry_->GetCounter("ferry_publish_bytes_total",
                              "Bytes of messages acknowledged by the broker.", labels),
        registry_->GetHistogram("ferry_publish_latency_seconds",
                                "From request received to the broker's acknowledgement "
                                "of the batch's last message.",
                                metrics::LatencyBuckets(), labels)});
  }
  return *slot;
}

BatchPublisher::ClusterAdmission& BatchPublisher::AdmissionFor(
    const backend::Cluster& cluster) {
  {
    absl::ReaderMutexLock lock(&admissions_mu_);
    auto it = admissions_.find(&cluster);
    if (it != admissions_.end()) return *it->second;
  }
  absl::MutexLock lock(&admissions_mu_);
  auto& slot = admissions_[&cluster];
  if (slot == nullptr) {
    slot = std::make_unique<ClusterAdmission>(
        limits_.timeout * limits_.drain_share,
        registry_->GetCounter(
            "ferry_publish_refused_messages_total",
            "Messages refused RESOURCE_EXHAUSTED (retryable, never written) because "
            "their topic's oldest unacknowledged batch had waited longer than "
            "publish.drain_share of publish.timeout.",
            {{"cluster", cluster.name()}}));
  }
  return *slot;
}

absl::Status BatchPublisher::Refuse(const PublishRequestView& request,
                                    const std::string& cluster,
                                    ClusterAdmission& admission,
                                    absl::Duration oldest_wait, absl::Time now) {
  const auto messages = static_cast<int64_t>(request.messages.size());
  admission.refused.Inc(static_cast<double>(messages));
  {
    absl::MutexLock lock(&admission.log_mu);
    admission.unlogged += messages;
    if (now - admission.logged >= kRefusalLogInterval) {
      spdlog::warn(
          "cluster {}: refusing publishes RESOURCE_EXHAUSTED ({} messages since the last "
          "note): the oldest batch of topic {} has waited {} for the broker, more than "
          "{} (publish.drain_share of publish.timeout)",
          cluster, admission.unlogged, request.topic, absl::FormatDuration(oldest_wait),
          absl::FormatDuration(admission.gate.budget()));
      admission.logged = now;
      admission.unlogged = 0;
    }
  }
  return absl::ResourceExhaustedError(fmt::format(
      "topic {}: its oldest batch on cluster {} has waited {} for the broker, more than "
      "{} (publish.drain_share of publish.timeout); retry later",
      request.topic, cluster, absl::FormatDuration(oldest_wait),
      absl::FormatDuration(admission.gate.budget())));
}

// One batch from Dispatch until its answer. The request and answer are
// the caller's (alive until `done` ran): the backend batch views keys, values
// and headers where they lie in the received request. Deletes itself once
// answered.
struct BatchPublisher::Call {
  BatchPublisher* publisher = nullptr;
  const PublishRequestView* request = nullptr;
  BatchResults* answer = nullptr;
  int64_t bytes = 0;
  absl::Time started;
  // With a stage trace only (steady clock).
  int64_t dispatched_ns = 0;
  std::function<void()> done;
  const std::string* cluster = nullptr;  // the cluster's name; it outlives us
  routing::ClusterBreaker* breaker = nullptr;
  SojournGate* gate = nullptr;
  SojournGate::Ticket admitted;
  // The messages that passed CheckMessage, as the backend writes them, and
  // the request index of each.
  backend::RecordBatch batch;
  std::vector<int> message_of;

  // Per cluster and code only: topic names come from clients, and a typo
  // must not create series that live forever.
  void Fail(int i, const absl::Status& status, bool retryable) {
    MessageResult& result = answer->results[i];
    result.status = status;
    result.retryable = retryable;
    publisher->registry_
        ->GetCounter(
            "ferry_publish_errors_total", "Messages that failed, by status code.",
            {{"cluster", *cluster}, {"code", absl::StatusCodeToString(status.code())}})
        .Inc();
  }

  // Fills the results of the written messages, then answers. The breaker,
  // the counters and the latency histogram are updated once per batch: the
  // breaker reads the clock and takes a lock, a floating-point counter's
  // increment is a CAS loop, the histogram takes a lock.
  void Completed(std::span<const backend::PublishOutcome> outcomes) {
    const int64_t reported_ns = dispatched_ns != 0 ? stage_trace::NowNs() : 0;
    int64_t attempted = 0, cluster_failures = 0, acked = 0, acked_bytes = 0;
    absl::Status cluster_failure;
    for (size_t j = 0; j < outcomes.size(); ++j) {
      const backend::PublishOutcome& outcome = outcomes[j];
      const int i = message_of[j];
      // Messages held back behind their key's failure never reached the
      // cluster: the breaker does not count them.
      if (!outcome.behind_failed_key) ++attempted;
      if (outcome.counts_against_cluster) {
        ++cluster_failures;
        cluster_failure = outcome.status;
      }
      if (!outcome.status.ok()) {
        Fail(i, outcome.status, outcome.retryable);
        continue;
      }
      MessageResult& result = answer->results[i];
      result.partition = outcome.partition;
      result.offset = outcome.offset;
      result.timestamp_ms = outcome.timestamp_ms;
      ++acked;
      acked_bytes += request->messages[i].bytes;
    }
    if (attempted > 0) breaker->Record(attempted, cluster_failures, cluster_failure);
    gate->Done(admitted);
    if (acked > 0) {
      // Series appear with the first acknowledged message, so only topics
      // that exist get them.
      TopicMetrics& m = publisher->MetricsFor(request->topic, *cluster);
      m.messages.Inc(static_cast<double>(acked));
      m.bytes.Inc(static_cast<double>(acked_bytes));
      // The answer carries every result at once: each message's latency is
      // the batch's.
      m.latency.Observe(absl::ToDoubleSeconds(absl::Now() - started),
                        static_cast<uint64_t>(acked));
    }
    publisher->limiter_->Release(bytes);
    if (dispatched_ns != 0) {
      publisher->trace_->Row(request->messages.empty() ? "" : request->messages[0].id,
                             {static_cast<int64_t>(request->messages.size()),
                              dispatched_ns, reported_ns, stage_trace::NowNs()});
    }
    // The request and answer may be gone once `done` returned.
    std::function<void()> answer = std::move(done);
    delete this;
    answer();
  }
};

void BatchPublisher::Publish(const PublishRequestView* request, BatchResults* answer,
                             PreparedBatch batch, std::function<void()> done) {
  if (hold_ == nullptr) {
    PublishAdmitted(request, answer, batch, std::move(done));
    return;
  }
  const std::string topic = request->topic;
  if (hold_->TryEnter(topic)) {
    PublishAdmitted(request, answer, batch, CountedDone(topic, std::move(done)));
    return;
  }
  auto answer_done = std::make_shared<std::function<void()>>(std::move(done));
  hold_->Enqueue(
      topic, absl::Now() + limits_.timeout,
      [this, request, answer, batch, done = answer_done, topic] {
        auto counted = CountedDone(topic, std::move(*done));
        // The route may have changed while held (a migration moves writes).
        absl::StatusOr<PreparedBatch> fresh = Prepare(*request);
        if (!fresh.ok()) {
          FailAll(*request, answer, batch, fresh.status(), counted);
          return;
        }
        fresh->bytes = batch.bytes;
        PublishAdmitted(request, answer, *fresh, std::move(counted));
      },
      [this, request, answer, batch, done = answer_done](absl::Status status) {
        FailAll(*request, answer, batch, status, *done);
      });
}

std::function<void()> BatchPublisher::CountedDone(const std::string& topic,
                                                  std::function<void()> done) {
  return [hold = hold_, topic, done = std::move(done)] {
    done();
    hold->Done(topic);
  };
}

void BatchPublisher::FailAll(const PublishRequestView& request, BatchResults* answer,
                             const PreparedBatch& batch, const absl::Status& status,
                             const std::function<void()>& done) {
  // The status carries its code, not a backend's retry flag: the one table
  // decides from the code.
  answer->cluster.clear();
  MessageResult failed;
  failed.status = status;
  failed.retryable = api::IsRetryable(status.code());
  answer->results.assign(request.messages.size(), failed);
  limiter_->Release(batch.bytes);
  done();
}

void BatchPublisher::PublishAdmitted(const PublishRequestView* request,
                                     BatchResults* answer, PreparedBatch batch,
                                     std::function<void()> done) {
  if (!batch.auto_create_topic) {
    Dispatch(request, answer, batch, std::move(done));
    return;
  }
  const std::string topic = request->topic;
  auto_creator_.EnsureExists(
      batch.cluster, topic,
      [this, request, answer, batch, done = std::move(done)](absl::Status status) {
        if (status.ok()) {
          Dispatch(request, answer, batch, done);
          return;
        }
        FailAll(*request, answer, batch, status, done);
      });
}

void BatchPublisher::Dispatch(const PublishRequestView* request, BatchResults* answer,
                              PreparedBatch batch, std::function<void()> done) {
  const int64_t dispatched_ns = trace_ != nullptr ? stage_trace::NowNs() : 0;
  ClusterAdmission& admission = AdmissionFor(*batch.cluster);
  const absl::Time now = absl::Now();
  absl::Duration oldest_wait;
  std::optional<SojournGate::Ticket> admitted =
      admission.gate.TryAdmit(request->topic, now, &oldest_wait);
  if (!admitted.has_value()) {
    // Never written, so the breaker takes no outcome: the cluster did not fail.
    FailAll(*request, answer, batch,
            Refuse(*request, batch.cluster->name(), admission, oldest_wait, now), done);
    return;
  }
  const auto count = static_cast<int>(request->messages.size());
  auto* call = new Call;
  call->publisher = this;
  call->request = request;
  call->answer = answer;
  call->bytes = batch.bytes;
  call->started = now;
  call->dispatched_ns = dispatched_ns;
  call->done = std::move(done);
  call->cluster = &batch.cluster->name();
  call->breaker = batch.breaker;
  call->gate = &admission.gate;
  call->admitted = *admitted;
  answer->cluster = batch.cluster->name();
  answer->results.assign(count, MessageResult{});

  backend::RecordBatch& records = call->batch;
  records.topic = request->topic;
  records.keyless_group = NewKeylessGroup();
  records.records.reserve(count);
  // Most messages carry an id, which becomes a header.
  records.headers.reserve(count);
  call->message_of.reserve(count);
  for (int i = 0; i < count; ++i) {
    const MessageView& message = request->messages[i];
    if (absl::Status s = CheckMessage(*request, message); !s.ok()) {
      call->Fail(i, s, /*retryable=*/false);
      continue;
    }
    const auto first_header = static_cast<uint32_t>(records.headers.size());
    for (uint32_t h = 0; h < message.header_count; ++h) {
      const HeaderView& header = request->headers[message.first_header + h];
      records.headers.push_back({header.key, header.value});
    }
    if (!message.id.empty()) records.headers.push_back({kIdHeader, message.id});
    records.records.push_back(backend::RecordView{
        .key = message.key,
        .value = message.value,
        .ordering_key = message.ordering_key,
        .first_header = first_header,
        .header_count = static_cast<uint32_t>(records.headers.size()) - first_header,
        .timestamp_ms = message.has_timestamp ? message.timestamp_ms : 0});
    call->message_of.push_back(i);
  }
  if (records.records.empty()) {
    call->Completed({});
    return;
  }
  // May complete (and delete the call) before it returns.
  batch.cluster->PublishBatch(records,
                              [call](std::span<const backend::PublishOutcome> outcomes) {
                                call->Completed(outcomes);
                              });
}

}  // namespace ferry::publish
