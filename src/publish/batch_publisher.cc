#include "publish/batch_publisher.h"

#include <fmt/format.h>

#include <atomic>
#include <optional>
#include <random>
#include <vector>

#include "api/convert.h"
#include "api/retry.h"
#include "common/topic_name.h"

namespace ferry::publish {
namespace {

constexpr size_t kMaxIdLength = 256;
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

int64_t MessageBytes(const v1::OutgoingMessage& message) {
  int64_t bytes =
      static_cast<int64_t>(message.key().size() + message.value().size() +
                           message.ordering_key().size() + message.id().size());
  for (const v1::Header& h : message.headers()) {
    bytes += static_cast<int64_t>(h.key().size() + h.value().size());
  }
  return bytes;
}

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
      hold_(hold) {}

BatchPublisher::~BatchPublisher() = default;

absl::StatusOr<PreparedBatch> BatchPublisher::Prepare(
    const v1::PublishRequest& request) const {
  if (absl::Status s = ValidateTopicName(request.topic()); !s.ok()) return s;
  const int count = request.messages_size();
  if (count == 0) return absl::InvalidArgumentError("batch has no messages");
  if (count > limits_.max_batch_messages) {
    return absl::InvalidArgumentError(
        fmt::format("batch has {} messages, more than publish.max_batch_messages {}",
                    count, limits_.max_batch_messages));
  }
  PreparedBatch batch;
  for (const v1::OutgoingMessage& m : request.messages()) batch.bytes += MessageBytes(m);
  if (batch.bytes > limits_.max_batch_bytes) {
    return absl::InvalidArgumentError(
        fmt::format("batch has {} bytes, more than publish.max_batch_bytes {}",
                    batch.bytes, limits_.max_batch_bytes));
  }
  auto route = routes_->Current()->Resolve(request.topic());
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

absl::Status BatchPublisher::CheckMessage(const v1::OutgoingMessage& message) const {
  const int64_t bytes = MessageBytes(message);
  if (bytes > limits_.max_message_bytes) {
    return absl::InvalidArgumentError(
        fmt::format("message of {} bytes exceeds publish.max_message_bytes {}", bytes,
                    limits_.max_message_bytes));
  }
  if (message.id().size() > kMaxIdLength) {
    return absl::InvalidArgumentError(fmt::format("id of {} characters is longer than {}",
                                                  message.id().size(), kMaxIdLength));
  }
  for (const v1::Header& h : message.headers()) {
    if (h.key() == kIdHeader) {
      return absl::InvalidArgumentError(
          "header ferry.id is reserved: set the message's id field instead");
    }
  }
  if (message.has_timestamp() && api::ToUnixMillis(message.timestamp()) < 0) {
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
                                "From request received to broker acknowledgement.",
                                metrics::LatencyBuckets(), labels)});
  }
  return *slot;
}

// One batch from Dispatch until its last result. The request and response
// are the caller's (alive until `done` ran): the backend reads keys and
// values from records moved out of the request, and the keys it keeps there
// name the ordering keys on failure. Deletes itself when the last message
// finished. Per-message callbacks capture only (call, index): small enough
// for std::function to hold without allocating.
struct BatchPublisher::Call {
  BatchPublisher* publisher = nullptr;
  v1::PublishRequest* request = nullptr;
  v1::PublishResponse* response = nullptr;
  // Messages not finished yet, plus one held by Dispatch while it still
  // iterates over the request.
  std::atomic<int> remaining;
  int64_t bytes = 0;
  // MessageBytes of each message, taken before its value moved out.
  std::vector<int64_t> message_bytes;
  absl::Time started;
  std::function<void()> done;
  std::string cluster;
  routing::ClusterBreaker* breaker = nullptr;
  // Set by the first acknowledged message (MetricsFor takes a lock).
  std::atomic<TopicMetrics*> metrics{nullptr};
  // Acknowledged messages and their bytes, added to the counters once per
  // batch: a per-message update of a floating-point counter is a CAS loop.
  std::atomic<int64_t> acked{0};
  std::atomic<int64_t> acked_bytes{0};

  // ordering_key if set, else key; empty: unordered.
  const std::string& OrderKey(int i) const {
    const v1::OutgoingMessage& m = request->messages(i);
    return m.ordering_key().empty() ? m.key() : m.ordering_key();
  }

  // The first failure of each ordering key in this batch.
  std::optional<std::pair<absl::Status, bool>> FailureOf(const std::string& key) {
    if (key.empty()) return std::nullopt;
    absl::MutexLock lock(&mu);
    auto it = failed_keys.find(key);
    if (it == failed_keys.end()) return std::nullopt;
    return it->second;
  }
  void RecordFailure(const std::string& key, const absl::Status& status, bool retryable) {
    if (key.empty()) return;
    absl::MutexLock lock(&mu);
    failed_keys.try_emplace(key, status, retryable);
  }

  void FinishOne() {
    if (remaining.fetch_sub(1) != 1) return;
    // Once per batch rather than per message: the breaker's clock read and
    // lock stay off the per-message cost.
    if (const int64_t outcomes = request->messages_size() - skipped; outcomes > 0) {
      absl::Status failure;
      {
        absl::MutexLock lock(&mu);
        failure = cluster_failure;
      }
      breaker->Record(outcomes, cluster_failures.load(std::memory_order_relaxed),
                      failure);
    }
    if (TopicMetrics* m = metrics.load(std::memory_order_acquire); m != nullptr) {
      m->messages.Inc(static_cast<double>(acked.load(std::memory_order_relaxed)));
      m->bytes.Inc(static_cast<double>(acked_bytes.load(std::memory_order_relaxed)));
    }
    publisher->limiter_->Release(bytes);
    // The request and response may be gone once `done` returned.
    std::function<void()> answer = std::move(done);
    delete this;
    answer();
  }

  // Per cluster and code only: topic names come from clients, and a typo
  // must not create series that live forever.
  void Fail(int i, const absl::Status& status, bool retryable) {
    api::ToProtoStatus(status, retryable, response->mutable_results(i)->mutable_status());
    publisher->registry_
        ->GetCounter(
            "ferry_publish_errors_total", "Messages that failed, by status code.",
            {{"cluster", cluster}, {"code", absl::StatusCodeToString(status.code())}})
        .Inc();
    FinishOne();
  }

  void Delivered(int i, const backend::PublishOutcome& outcome) {
    if (outcome.counts_against_cluster) {
      cluster_failures.fetch_add(1, std::memory_order_relaxed);
      absl::MutexLock lock(&mu);
      cluster_failure = outcome.status;
    }
    if (!outcome.status.ok()) {
      RecordFailure(OrderKey(i), outcome.status, outcome.retryable);
      Fail(i, outcome.status, outcome.retryable);
      return;
    }
    v1::PublishResult* result = response->mutable_results(i);
    api::ToProtoStatus(outcome.status, false, result->mutable_status());
    result->set_cluster(cluster);
    result->set_partition(outcome.partition);
    result->set_offset(outcome.offset);
    api::FromUnixMillis(outcome.timestamp_ms, result->mutable_timestamp());
    // Series appear with the first acknowledged message, so only topics
    // that exist get them.
    TopicMetrics* m = metrics.load(std::memory_order_acquire);
    if (m == nullptr) {
      m = &publisher->MetricsFor(request->topic(), cluster);
      metrics.store(m, std::memory_order_release);
    }
    acked.fetch_add(1, std::memory_order_relaxed);
    acked_bytes.fetch_add(message_bytes[i], std::memory_order_relaxed);
    m->latency.Observe(absl::ToDoubleSeconds(absl::Now() - started));
    FinishOne();
  }

  // For the breaker, when the batch ends: messages answered without reaching
  // the cluster (written by Dispatch alone, before it lets go of the call),
  // failures saying the cluster is unhealthy and the status of one of them.
  int skipped = 0;
  std::atomic<int64_t> cluster_failures{0};

  absl::Mutex mu;
  std::map<std::string, std::pair<absl::Status, bool>> failed_keys ABSL_GUARDED_BY(mu);
  absl::Status cluster_failure ABSL_GUARDED_BY(mu);
};

void BatchPublisher::Publish(v1::PublishRequest* request, v1::PublishResponse* response,
                             PreparedBatch batch, std::function<void()> done) {
  if (hold_ == nullptr) {
    PublishAdmitted(request, response, batch, std::move(done));
    return;
  }
  const std::string topic = request->topic();
  if (hold_->TryEnter(topic)) {
    PublishAdmitted(request, response, batch, CountedDone(topic, std::move(done)));
    return;
  }
  auto answer = std::make_shared<std::function<void()>>(std::move(done));
  hold_->Enqueue(
      topic, absl::Now() + limits_.timeout,
      [this, request, response, batch, answer, topic] {
        auto counted = CountedDone(topic, std::move(*answer));
        // The route may have changed while held (a migration moves writes).
        absl::StatusOr<PreparedBatch> fresh = Prepare(*request);
        if (!fresh.ok()) {
          FailAll(*request, response, batch, fresh.status(), counted);
          return;
        }
        fresh->bytes = batch.bytes;
        PublishAdmitted(request, response, *fresh, std::move(counted));
      },
      [this, request, response, batch, answer](absl::Status status) {
        FailAll(*request, response, batch, status, *answer);
      });
}

std::function<void()> BatchPublisher::CountedDone(const std::string& topic,
                                                  std::function<void()> done) {
  return [hold = hold_, topic, done = std::move(done)] {
    done();
    hold->Done(topic);
  };
}

void BatchPublisher::FailAll(const v1::PublishRequest& request,
                             v1::PublishResponse* response, const PreparedBatch& batch,
                             const absl::Status& status,
                             const std::function<void()>& done) {
  // The status carries its code, not a backend's retry flag: the one table
  // decides from the code.
  const bool retryable = api::IsRetryable(status.code());
  response->Clear();
  response->set_request_id(request.request_id());
  for (const v1::OutgoingMessage& message : request.messages()) {
    v1::PublishResult* result = response->add_results();
    result->set_id(message.id());
    api::ToProtoStatus(status, retryable, result->mutable_status());
  }
  limiter_->Release(batch.bytes);
  done();
}

void BatchPublisher::PublishAdmitted(v1::PublishRequest* request,
                                     v1::PublishResponse* response, PreparedBatch batch,
                                     std::function<void()> done) {
  if (!batch.auto_create_topic) {
    Dispatch(request, response, batch, std::move(done));
    return;
  }
  const std::string topic = request->topic();
  auto_creator_.EnsureExists(
      batch.cluster, topic,
      [this, request, response, batch, done = std::move(done)](absl::Status status) {
        if (status.ok()) {
          Dispatch(request, response, batch, done);
          return;
        }
        FailAll(*request, response, batch, status, done);
      });
}

void BatchPublisher::Dispatch(v1::PublishRequest* request, v1::PublishResponse* response,
                              PreparedBatch batch, std::function<void()> done) {
  const int count = request->messages_size();
  auto* call = new Call;
  call->publisher = this;
  call->request = request;
  call->response = response;
  call->remaining = count + 1;
  call->bytes = batch.bytes;
  call->started = absl::Now();
  call->done = std::move(done);
  call->cluster = batch.cluster->name();
  call->breaker = batch.breaker;
  response->set_request_id(request->request_id());
  response->mutable_results()->Reserve(count);
  for (int i = 0; i < count; ++i) response->add_results();
  call->message_bytes.resize(count);
  const uint32_t keyless_group = NewKeylessGroup();

  for (int i = 0; i < count; ++i) {
    v1::OutgoingMessage* message = request->mutable_messages(i);
    v1::PublishResult* result = response->mutable_results(i);
    result->set_id(message->id());
    if (absl::Status s = CheckMessage(*message); !s.ok()) {
      ++call->skipped;
      call->Fail(i, s, /*retryable=*/false);
      continue;
    }
    if (auto earlier = call->FailureOf(call->OrderKey(i))) {
      // A later message of a key must not be written after an earlier one
      // failed: a retry of the earlier one would land behind it.
      ++call->skipped;
      call->Fail(i, earlier->first, earlier->second);
      continue;
    }
    call->message_bytes[i] = MessageBytes(*message);
    // The value, headers and id move to the backend (an arena's strings too:
    // the arena owns only the string objects, not their buffers); key and
    // ordering key stay in the request (short, and needed for failures). The
    // result took its copy of the id above.
    backend::Record record{.topic = request->topic(),
                           .key = message->key(),
                           .value = std::move(*message->mutable_value()),
                           .ordering_key = message->ordering_key(),
                           .timestamp_ms = message->has_timestamp()
                                               ? api::ToUnixMillis(message->timestamp())
                                               : 0,
                           .keyless_group = keyless_group};
    record.headers.reserve(message->headers_size() + 1);
    for (v1::Header& h : *message->mutable_headers()) {
      record.headers.push_back(
          {std::move(*h.mutable_key()), std::move(*h.mutable_value())});
    }
    if (!message->id().empty()) {
      record.headers.push_back({kIdHeader, std::move(*message->mutable_id())});
    }
    batch.cluster->Publish(std::move(record), [call, i](backend::PublishOutcome outcome) {
      call->Delivered(i, outcome);
    });
  }
  call->FinishOne();  // Dispatch's own share: the call may go now.
}

}  // namespace ferry::publish
