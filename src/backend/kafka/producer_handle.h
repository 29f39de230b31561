#pragma once

#include <librdkafka/rdkafka.h>

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "backend/kafka/client_factory.h"

namespace ferry::backend::kafka {

// A producer and the topic handles it published to, so records are produced
// by rd_kafka_topic_t rather than by name: by name, librdkafka 2.0.2 takes
// the handle's write lock and scans every topic the handle knows
// (rd_kafka_topic_new0 -> rd_kafka_topic_find) for each record, which with
// 1,000 topics is 1,000 string compares per record under a lock its broker
// threads need too. A topic handle lives as long as the producer (librdkafka
// keeps a topic it produced to until the producer is destroyed anyway).
// Thread-safe.
class ProducerHandle {
 public:
  explicit ProducerHandle(RdKafkaPtr producer) : producer_(std::move(producer)) {}
  ProducerHandle(const ProducerHandle&) = delete;
  ProducerHandle& operator=(const ProducerHandle&) = delete;
  // Destroys the topic handles, then the producer.
  ~ProducerHandle();

  rd_kafka_t* get() const { return producer_.get(); }

  // The handle of `topic`, created with the producer's default topic
  // configuration on first use; null when librdkafka refuses the name.
  rd_kafka_topic_t* Topic(const std::string& topic);

 private:
  RdKafkaPtr producer_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, rd_kafka_topic_t*> topics_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::backend::kafka
