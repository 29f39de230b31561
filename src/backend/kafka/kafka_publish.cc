// The publish half of KafkaCluster: producer settings, the partitioner and
// delivery reports.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <iterator>

#include "backend/batch_completion.h"
#include "backend/kafka/errors.h"
#include "backend/kafka/kafka_cluster.h"
#include "backend/record_batch.h"

namespace ferry::backend::kafka {

Properties KafkaCluster::ProducerProperties(const config::ClusterConfig& config,
                                            const Options& options) {
  Properties fixed = {
      {"bootstrap.servers", config.bootstrap},
      {"client.id", fmt::format("ferryd-{}", config.name)},
      // No message is acknowledged before every in-sync replica has it, and
      // retries neither duplicate nor reorder within a partition.
      {"acks", "all"},
      {"enable.idempotence", "true"},
      // A record not acknowledged in time fails (UNAVAILABLE) instead of
      // waiting forever for a dead cluster.
      {"message.timeout.ms",
       std::to_string(absl::ToInt64Milliseconds(options.publish_timeout))},
      // Records for a topic the cluster does not have fail after this
      // instead of the default 30 s.
      {"topic.metadata.propagation.max.ms", "2000"},
      // Topics are created by operators or by routes that allow it, never as
      // a side effect of publishing to a typo (librdkafka's producer default
      // would ask brokers with auto.create.topics.enable to create them).
      {"allow.auto.create.topics", "false"},
      // With sticky partitioning on, librdkafka places keyless records
      // without calling the partitioner, which would ignore ordering keys.
      {"sticky.partitioning.linger.ms", "0"},
  };
  // Records arrive in batches already (the SDK's), so librdkafka's default
  // 5 ms linger would be a second wait in series. publish_bench, 1 KiB at
  // 25k msgs/s: p99 added by the hop +0.8 ms at 1 ms, +7.7 ms at 5 ms; 0 ms
  // costs 60 % more CPU per message. The cluster's properties may set it.
  if (!config.properties.contains("linger.ms") &&
      !config.properties.contains("queue.buffering.max.ms")) {
    fixed.emplace("linger.ms", "1");
  }
  return fixed;
}

absl::Status KafkaCluster::RequireDurableProducer(const Properties& properties,
                                                  std::string_view key_prefix) {
  static const std::map<std::string, std::string> kRequired = {
      {"acks", "all"}, {"request.required.acks", "all"}, {"enable.idempotence", "true"}};
  for (const auto& [key, required] : kRequired) {
    auto it = properties.find(key);
    if (it != properties.end() && it->second != required &&
        !(required == "all" && it->second == "-1")) {
      return absl::InvalidArgumentError(fmt::format(
          "{}{}: Ferry requires {}={} (a message is acknowledged only after the "
          "broker confirmed it durably); remove the property",
          key_prefix, key, key, required));
    }
  }
  return absl::OkStatus();
}

int32_t KafkaCluster::Partition(const rd_kafka_topic_t* topic, const void* key,
                                size_t key_length, int32_t partition_count,
                                void* topic_opaque, void* message_opaque) {
  if (message_opaque != nullptr) {
    auto [completion, index] = BatchCompletion::FromToken(message_opaque);
    const std::string_view ordering_key = completion->batch().records[index].ordering_key;
    if (!ordering_key.empty()) {
      return rd_kafka_msg_partitioner_murmur2_random(topic, ordering_key.data(),
                                                     ordering_key.size(), partition_count,
                                                     topic_opaque, message_opaque);
    }
    // Keyless records of one group share a partition (random per group): a
    // batch spread over every partition would cost a ProduceRequest each.
    const uint32_t keyless_group = completion->batch().keyless_group;
    if (key_length == 0 && keyless_group != 0) {
      return static_cast<int32_t>(keyless_group % static_cast<uint32_t>(partition_count));
    }
  }
  // The Java client's partitioner: keyed records land where Java producers
  // put them, which matters when producers migrate to Ferry.
  return rd_kafka_msg_partitioner_murmur2_random(topic, key, key_length, partition_count,
                                                 topic_opaque, message_opaque);
}

void KafkaCluster::Publish(Record record, PublishCallback done) {
  PublishAsBatch(*this, std::move(record), std::move(done));
}

PublishOutcome KafkaCluster::Failure(rd_kafka_resp_err_t err, int32_t partition) const {
  const ErrorClass error_class = Classify(err);
  return PublishOutcome{
      .status = KafkaStatus(err, fmt::format("cluster {}", name_)),
      .retryable = error_class.retryable,
      .counts_against_cluster = error_class.counts_against_cluster,
      .partition = partition,
  };
}

PublishOutcome KafkaCluster::DeliveryFailure(const rd_kafka_message_t& message) const {
  PublishOutcome outcome = Failure(message.err, message.partition);
  if (message.err != RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) return outcome;
  // How long the record waited; librdkafka times records out at
  // message.timeout.ms after they were produced, give or take its 1 s scan.
  const int64_t latency_us = rd_kafka_message_latency(&message);
  const absl::Duration waited =
      latency_us >= 0 ? absl::Microseconds(latency_us) : options_.publish_timeout;
  const int64_t produced_nanos =
      absl::GetCurrentTimeNanos() - absl::ToInt64Nanoseconds(waited);
  if (last_ack_nanos_.load(std::memory_order_relaxed) > produced_nanos) {
    outcome.counts_against_cluster = false;
  }
  return outcome;
}

void KafkaCluster::PublishBatch(const RecordBatch& batch, BatchCallback done) {
  const std::shared_ptr<ProducerHandle> producer = this->producer();
  BatchCompletion* completion = BatchCompletion::Start(batch, std::move(done));
  // Null until a record went to the topic by name (see ProducerHandle).
  rd_kafka_topic_t* topic = producer->Topic(batch.topic);
  for (size_t i = 0; i < batch.records.size(); ++i) {
    if (completion->FailedBehindKey(i)) continue;
    const RecordView& r = batch.records[i];
    rd_kafka_headers_t* headers = nullptr;
    if (r.header_count > 0) {
      headers = rd_kafka_headers_new(r.header_count);
      for (const HeaderView& h : batch.HeadersOf(r)) {
        rd_kafka_header_add(headers, h.key.data(), static_cast<ssize_t>(h.key.size()),
                            h.value.data(), static_cast<ssize_t>(h.value.size()));
      }
    }
    // Key and value are referenced, not copied (no RD_KAFKA_MSG_F_COPY): the
    // caller keeps them alive until the batch's callback, which runs after
    // the last delivery report.
    rd_kafka_vu_t message[7];
    if (topic != nullptr) {
      message[0] = {.vtype = RD_KAFKA_VTYPE_RKT, .u = {.rkt = topic}};
    } else {
      message[0] = {.vtype = RD_KAFKA_VTYPE_TOPIC, .u = {.cstr = batch.topic.c_str()}};
    }
    message[1] = {.vtype = RD_KAFKA_VTYPE_PARTITION,
                  .u = {.i32 = r.partition >= 0 ? r.partition : RD_KAFKA_PARTITION_UA}};
    message[2] = {
        .vtype = RD_KAFKA_VTYPE_KEY,
        .u = {.mem = {.ptr = r.key.empty() ? nullptr : const_cast<char*>(r.key.data()),
                      .size = r.key.size()}}};
    message[3] = {
        .vtype = RD_KAFKA_VTYPE_VALUE,
        .u = {.mem = {.ptr = const_cast<char*>(r.value.data()), .size = r.value.size()}}};
    message[4] = {.vtype = RD_KAFKA_VTYPE_TIMESTAMP, .u = {.i64 = r.timestamp_ms}};
    message[5] = {.vtype = RD_KAFKA_VTYPE_HEADERS, .u = {.headers = headers}};
    message[6] = {.vtype = RD_KAFKA_VTYPE_OPAQUE, .u = {.ptr = completion->Token(i)}};
    if (rd_kafka_error_t* error =
            rd_kafka_produceva(producer->get(), message, std::size(message))) {
      // A fatal producer: produceva names the error that made it fatal,
      // producev answered __FATAL, which is what Failure treats as fatal.
      const rd_kafka_resp_err_t err = rd_kafka_error_is_fatal(error)
                                          ? RD_KAFKA_RESP_ERR__FATAL
                                          : rd_kafka_error_code(error);
      rd_kafka_error_destroy(error);
      // Ownership of headers passes to librdkafka only on success.
      if (headers != nullptr) rd_kafka_headers_destroy(headers);
      completion->Finish(i, Failure(err, -1));
      continue;
    }
    if (topic == nullptr) {
      topic = producer->Open(batch.topic);
      LearnTopicsSoon();
    }
  }
  completion->Submitted();
}

void KafkaCluster::LearnTopicsSoon() {
  // At most one learning queued: topics opened while it waits join it.
  if (learn_queued_.exchange(true, std::memory_order_acq_rel)) return;
  topic_learner_.Post([this] {
    {
      // A round naming several topics asks for every topic the producer
      // knows; spaced out, a stream of new topics costs a few a second, not
      // one per round trip. Shutdown ends the wait.
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(
          absl::Condition(&stopping_),
          last_learning_ + options_.topic_learning_interval - absl::Now());
      if (stopping_) return;
    }
    learn_queued_.store(false, std::memory_order_release);
    producer()->LearnOpenedTopics(kTopicLearningTimeout);
    last_learning_ = absl::Now();
  });
}

void KafkaCluster::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* message,
                              void* opaque) {
  auto [completion, index] = BatchCompletion::FromToken(message->_private);
  auto* self = static_cast<KafkaCluster*>(opaque);
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    completion->Finish(index, self->DeliveryFailure(*message));
    return;
  }
  self->last_ack_nanos_.store(absl::GetCurrentTimeNanos(), std::memory_order_relaxed);
  completion->Finish(index, PublishOutcome{.partition = message->partition,
                                           .offset = message->offset,
                                           .timestamp_ms = rd_kafka_message_timestamp(
                                               message, nullptr)});
}

void KafkaCluster::FailPendingPublishes() {
  // The poll thread serves the purged records' delivery reports.
  rd_kafka_purge(producer()->get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
}

void KafkaCluster::FailOutstanding(rd_kafka_t* producer, absl::Duration wait) {
  rd_kafka_flush(producer, static_cast<int>(absl::ToInt64Milliseconds(wait)));
  if (rd_kafka_outq_len(producer) > 0) {
    spdlog::warn("cluster={} failing {} unacknowledged records", name_,
                 rd_kafka_outq_len(producer));
    rd_kafka_purge(producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    // Purged records get their delivery reports (errors) on the next polls.
    rd_kafka_flush(producer, 5000);
  }
}

}  // namespace ferry::backend::kafka
