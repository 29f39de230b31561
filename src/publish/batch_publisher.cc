#include "publish/batch_publisher.h"

#include <fmt/format.h>

#include <atomic>
#include <optional>

#include "api/convert.h"
#include "common/topic_name.h"

namespace ferry::publish {
namespace {

constexpr size_t kMaxIdLength = 256;
constexpr char kIdHeader[] = "ferry.id";

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
                               const routing::Router* router,
                               std::map<std::string, backend::Cluster*> clusters,
                               metrics::Registry* registry, InflightLimiter* limiter)
    : limits_(limits),
      router_(router),
      clusters_(std::move(clusters)),
      registry_(registry),
      limiter_(limiter) {}

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
  auto route = router_->Resolve(request.topic());
  if (!route.ok()) return route.status();
  // The first cluster of the write list; circuit breakers (failover to the
  // next one) come with the routing issue.
  auto it = route->write.empty() ? clusters_.end() : clusters_.find(route->write.front());
  if (it == clusters_.end()) {
    return absl::UnavailableError(
        fmt::format("route \"{}\" names no usable write cluster", route->pattern));
  }
  batch.cluster = it->second;
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

namespace {

// Collects the results of one batch; the last message to finish answers.
struct BatchCall {
  v1::PublishResponse response;
  std::atomic<int> remaining;
  int64_t bytes;
  absl::Time started;
  std::function<void(v1::PublishResponse)> done;
  std::string topic;
  std::string cluster;

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

  absl::Mutex mu;
  std::map<std::string, std::pair<absl::Status, bool>> failed_keys ABSL_GUARDED_BY(mu);
};

}  // namespace

void BatchPublisher::Publish(v1::PublishRequest request, PreparedBatch batch,
                             std::function<void(v1::PublishResponse)> done) {
  if (!batch.auto_create_topic) {
    Dispatch(std::move(request), batch, std::move(done));
    return;
  }
  auto shared = std::make_shared<v1::PublishRequest>(std::move(request));
  const std::string topic = shared->topic();
  auto_creator_.EnsureExists(
      batch.cluster, topic,
      [this, shared, batch, done = std::move(done)](absl::Status status) mutable {
        if (status.ok()) {
          Dispatch(std::move(*shared), batch, std::move(done));
          return;
        }
        const bool retryable = status.code() == absl::StatusCode::kUnavailable ||
                               status.code() == absl::StatusCode::kDeadlineExceeded;
        v1::PublishResponse response;
        response.set_request_id(shared->request_id());
        for (const v1::OutgoingMessage& message : shared->messages()) {
          v1::PublishResult* result = response.add_results();
          result->set_id(message.id());
          api::ToProtoStatus(status, retryable, result->mutable_status());
        }
        limiter_->Release(batch.bytes);
        done(std::move(response));
      });
}

void BatchPublisher::Dispatch(v1::PublishRequest request, PreparedBatch batch,
                              std::function<void(v1::PublishResponse)> done) {
  const int count = request.messages_size();
  auto call = std::make_shared<BatchCall>();
  call->response.set_request_id(request.request_id());
  for (int i = 0; i < count; ++i) call->response.add_results();
  call->remaining = count;
  call->bytes = batch.bytes;
  call->started = absl::Now();
  call->done = std::move(done);
  call->topic = request.topic();
  call->cluster = batch.cluster->name();

  auto finish_one = [this, call] {
    if (call->remaining.fetch_sub(1) == 1) {
      limiter_->Release(call->bytes);
      call->done(std::move(call->response));
    }
  };
  // Per cluster and code only: topic names come from clients, and a typo
  // must not create series that live forever.
  auto fail = [this, call, finish_one](v1::PublishResult* result,
                                       const absl::Status& status, bool retryable) {
    api::ToProtoStatus(status, retryable, result->mutable_status());
    registry_
        ->GetCounter("ferry_publish_errors_total",
                     "Messages that failed, by status code.",
                     {{"cluster", call->cluster},
                      {"code", absl::StatusCodeToString(status.code())}})
        .Inc();
    finish_one();
  };

  for (int i = 0; i < count; ++i) {
    v1::OutgoingMessage* message = request.mutable_messages(i);
    v1::PublishResult* result = call->response.mutable_results(i);
    result->set_id(message->id());
    if (absl::Status s = CheckMessage(*message); !s.ok()) {
      fail(result, s, /*retryable=*/false);
      continue;
    }
    std::string order_key =
        message->ordering_key().empty() ? message->key() : message->ordering_key();
    if (auto earlier = call->FailureOf(order_key)) {
      // A later message of a key must not be written after an earlier one
      // failed: a retry of the earlier one would land behind it.
      fail(result, earlier->first, earlier->second);
      continue;
    }
    const int64_t bytes = MessageBytes(*message);
    backend::Record record{.topic = request.topic(),
                           .key = std::move(*message->mutable_key()),
                           .value = std::move(*message->mutable_value()),
                           .ordering_key = std::move(*message->mutable_ordering_key()),
                           .timestamp_ms = message->has_timestamp()
                                               ? api::ToUnixMillis(message->timestamp())
                                               : 0};
    for (v1::Header& h : *message->mutable_headers()) {
      record.headers.push_back(
          {std::move(*h.mutable_key()), std::move(*h.mutable_value())});
    }
    if (!message->id().empty()) record.headers.push_back({kIdHeader, message->id()});
    batch.cluster->Publish(
        std::move(record), [this, call, result, bytes, order_key = std::move(order_key),
                            fail, finish_one](backend::PublishOutcome outcome) {
          if (!outcome.status.ok()) {
            call->RecordFailure(order_key, outcome.status, outcome.retryable);
            fail(result, outcome.status, outcome.retryable);
            return;
          }
          api::ToProtoStatus(outcome.status, false, result->mutable_status());
          result->set_cluster(call->cluster);
          result->set_partition(outcome.partition);
          result->set_offset(outcome.offset);
          api::FromUnixMillis(outcome.timestamp_ms, result->mutable_timestamp());
          // Series appear with the first acknowledged message, so only
          // topics that exist get them.
          TopicMetrics& metrics = MetricsFor(call->topic, call->cluster);
          metrics.messages.Inc();
          metrics.bytes.Inc(static_cast<double>(bytes));
          metrics.latency.Observe(absl::ToDoubleSeconds(absl::Now() - call->started));
          finish_one();
        });
  }
}

}  // namespace ferry::publish
