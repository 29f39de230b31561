// DirectPublisher: publishes straight to a Kafka cluster with librdkafka when
// no Ferry node answers (fallback), with the guarantees of the Ferry path.
#ifndef FERRY_CLIENT_SRC_DIRECT_PUBLISHER_H_
#define FERRY_CLIENT_SRC_DIRECT_PUBLISHER_H_

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "ferry/client/publisher.h"

namespace ferry::client::internal {

struct DirectTarget {
  std::string cluster;
  std::string bootstrap;
  // The cluster's client properties as the node handed them out
  // (credentials withheld).
  std::map<std::string, std::string> properties;
};

// Producer settings: acks=all and the idempotent producer (no loss, no
// reordering or duplicates within a partition on retries), the Java client's
// murmur2 partitioner (a key lands where ferryd puts it; an ordering key
// partitions instead of the key, as in ferryd), `ferry.id` as a header.
//
// Threading: Publish and Flush from any thread; `done` callbacks run on the
// publisher's own poll thread, one at a time, and must not block.
class DirectPublisher {
 public:
  using Done = std::function<void(PublishResult)>;

  // `linger` and `delivery_timeout` map to linger.ms and message.timeout.ms.
  // INVALID_ARGUMENT naming the property librdkafka refused.
  static absl::StatusOr<std::unique_ptr<DirectPublisher>> Create(
      const DirectTarget& target, std::chrono::milliseconds linger,
      std::chrono::milliseconds delivery_timeout);
  // Flushes up to `close_timeout` given to Flush by the owner first; what is
  // left fails with UNAVAILABLE through its callback.
  ~DirectPublisher();

  DirectPublisher(const DirectPublisher&) = delete;
  DirectPublisher& operator=(const DirectPublisher&) = delete;

  // Queues the message; `done` gets its result (cluster, partition, offset).
  // Waits while librdkafka's queue is full.
  void Publish(const std::string& topic, Message message, std::string id, Done done);
  // True once every queued message has its result.
  bool Flush(std::chrono::milliseconds timeout);

 private:
  explicit DirectPublisher(std::string cluster) : cluster_(std::move(cluster)) {}
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);
  static int32_t Partition(const rd_kafka_topic_t* topic, const void* key,
                           size_t key_length, int32_t partition_count, void* topic_opaque,
                           void* message_opaque);

  const std::string cluster_;
  rd_kafka_t* producer_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::thread poller_;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_DIRECT_PUBLISHER_H_
