#include "direct_publisher.h"

#include <fmt/format.h>

#include "convert.h"

namespace ferry::client::internal {
namespace {

constexpr char kIdHeader[] = "ferry.id";
constexpr int kUnavailable = 14;
constexpr int kInvalidArgument = 3;

// Owns the message until its delivery report: librdkafka copies key and value
// (RD_KAFKA_MSG_F_COPY) but the partitioner reads the ordering key.
struct InFlight {
  std::string cluster;
  std::string id;
  std::string ordering_key;
  DirectPublisher::Done done;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DirectPublisher>> DirectPublisher::Create(
    const DirectTarget& target, std::chrono::milliseconds linger,
    std::chrono::milliseconds delivery_timeout) {
  std::unique_ptr<DirectPublisher> publisher(new DirectPublisher(target.cluster));
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::map<std::string, std::string> properties = target.properties;
  // After the cluster's properties: these make the guarantees.
  properties["bootstrap.servers"] = target.bootstrap;
  properties["acks"] = "all";
  properties["enable.idempotence"] = "true";
  properties["linger.ms"] = std::to_string(linger.count());
  properties["message.timeout.ms"] = std::to_string(delivery_timeout.count());
  properties["allow.auto.create.topics"] = "false";
  // Keyless records would otherwise skip the partitioner (see Partition).
  properties["sticky.partitioning.linger.ms"] = "0";
  char error[512];
  for (const auto& [name, value] : properties) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof(error)) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(fmt::format(
          "fallback producer for cluster {}: {}: {}", target.cluster, name, error));
    }
  }
  // Topic-level properties set above (message.timeout.ms, ...) live in the
  // default topic conf: add the partitioner to it rather than replacing it.
  rd_kafka_topic_conf_t* topic_conf = rd_kafka_conf_get_default_topic_conf(conf);
  if (topic_conf == nullptr) {
    topic_conf = rd_kafka_topic_conf_new();
    rd_kafka_conf_set_default_topic_conf(conf, topic_conf);
  }
  rd_kafka_topic_conf_set_partitioner_cb(topic_conf, &DirectPublisher::Partition);
  rd_kafka_conf_set_dr_msg_cb(conf, &DirectPublisher::OnDelivery);
  publisher->producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  if (publisher->producer_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(
        fmt::format("fallback producer for cluster {}: {}", target.cluster, error));
  }
  // Delivery reports fire only from rd_kafka_poll.
  publisher->poller_ = std::thread([p = publisher.get()] {
    while (!p->stopping_.load()) rd_kafka_poll(p->producer_, 50);
  });
  return publisher;
}

DirectPublisher::~DirectPublisher() {
  rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_flush(producer_, 1000);  // serves the purged messages' reports
  stopping_ = true;
  poller_.join();
  rd_kafka_destroy(producer_);
}

int32_t DirectPublisher::Partition(const rd_kafka_topic_t* topic, const void* key,
                                   size_t key_length, int32_t partition_count,
                                   void* topic_opaque, void* message_opaque) {
  const auto* in_flight = static_cast<const InFlight*>(message_opaque);
  if (in_flight != nullptr && !in_flight->ordering_key.empty()) {
    return rd_kafka_msg_partitioner_murmur2_random(
        topic, in_flight->ordering_key.data(), in_flight->ordering_key.size(),
        partition_count, topic_opaque, message_opaque);
  }
  // The Java client's partitioner, as ferryd's (src/backend/kafka).
  return rd_kafka_msg_partitioner_murmur2_random(topic, key, key_length, partition_count,
                                                 topic_opaque, message_opaque);
}

void DirectPublisher::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void*) {
  std::unique_ptr<InFlight> in_flight(static_cast<InFlight*>(message->_private));
  PublishResult result;
  result.id = in_flight->id;
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    result.cluster = in_flight->cluster;
    result.partition = message->partition;
    result.offset = message->offset;
  } else {
    result = Failure(kUnavailable,
                     fmt::format("fallback to cluster {}: {}", in_flight->cluster,
                                 rd_kafka_err2str(message->err)),
                     in_flight->id);
  }
  result.direct = true;
  in_flight->done(std::move(result));
}

void DirectPublisher::Publish(const std::string& topic, Message message, std::string id,
                              Done done) {
  rd_kafka_headers_t* headers = rd_kafka_headers_new(message.headers.size() + 1);
  for (const Header& h : message.headers) {
    rd_kafka_header_add(headers, h.key.data(), static_cast<ssize_t>(h.key.size()),
                        h.value.data(), static_cast<ssize_t>(h.value.size()));
  }
  rd_kafka_header_add(headers, kIdHeader, -1, id.data(), static_cast<ssize_t>(id.size()));
  const int64_t timestamp_ms =
      message.timestamp ? std::chrono::duration_cast<std::chrono::milliseconds>(
                              message.timestamp->time_since_epoch())
                              .count()
                        : 0;
  auto* in_flight = new InFlight{.cluster = cluster_,
                                 .id = id,
                                 .ordering_key = std::move(message.ordering_key),
                                 .done = std::move(done)};
  for (;;) {
    rd_kafka_resp_err_t err =
        rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(topic.c_str()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_KEY(message.key.data(), message.key.size()),
                          RD_KAFKA_V_VALUE(message.value.data(), message.value.size()),
                          RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_HEADERS(headers),
                          RD_KAFKA_V_OPAQUE(in_flight), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;  // headers now librdkafka's
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      // The poll thread serves reports; wait for room as librdkafka advises.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    rd_kafka_headers_destroy(headers);
    std::unique_ptr<InFlight> failed(in_flight);
    PublishResult result = Failure(
        kInvalidArgument,
        fmt::format("fallback to cluster {}: {}", cluster_, rd_kafka_err2str(err)), id);
    result.direct = true;
    failed->done(std::move(result));
    return;
  }
}

bool DirectPublisher::Flush(std::chrono::milliseconds timeout) {
  return rd_kafka_flush(producer_, static_cast<int>(timeout.count())) ==
         RD_KAFKA_RESP_ERR_NO_ERROR;
}

}  // namespace ferry::client::internal
