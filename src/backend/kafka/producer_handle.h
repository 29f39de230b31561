#pragma once

#include <librdkafka/rdkafka.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/kafka/client_factory.h"

namespace ferry::backend::kafka {

// A producer and the topic handles it publishes with, so records are produced
// by rd_kafka_topic_t rather than by name: by name, librdkafka 2.0.2 takes
// the handle's write lock and scans every topic the handle knows
// (rd_kafka_topic_new0 -> rd_kafka_topic_find) for each record, which with
// 1,000 topics is 1,000 string compares per record under a lock its broker
// threads need too. A topic handle lives as long as the producer (librdkafka
// keeps a topic it produced to until the producer is destroyed anyway).
//
// Learning new topics. rd_kafka_topic_new sends a Metadata request naming
// the one topic whenever the producer does not know it yet (v2.0.2
// rdkafka_topic.c:519). 1,000 new topics at once queued ~700 such requests
// behind the produce traffic, and librdkafka's broker thread walked that
// queue for each never-written partition on every wake-up: 57-73 % of
// ferryd (bench/RESULTS.md, scale5). So a topic's first record goes by name,
// which creates librdkafka's topic without a request (rdkafka_msg.c:386,
// rd_kafka_topic_new0); Open() then takes a handle to that topic
// (rd_kafka_topic_new finds it, :288, and asks nothing), and
// LearnOpenedTopics() learns all topics opened since its last call in one
// request (naming the topic when there is one, else every topic the
// producer knows: the public call names one or all, so its caller spaces
// such rounds out). The records wait in librdkafka's unassigned queue meanwhile, as
// they did for the one-topic request; a topic the cluster lacks fails as it
// did (librdkafka's 1-s topic scan asks again, rdkafka_topic.c:1506, until
// topic.metadata.propagation.max.ms has passed).
//
// Thread-safe.
class ProducerHandle {
 public:
  explicit ProducerHandle(RdKafkaPtr producer) : producer_(std::move(producer)) {}
  ProducerHandle(const ProducerHandle&) = delete;
  ProducerHandle& operator=(const ProducerHandle&) = delete;
  // Destroys the topic handles, then the producer.
  ~ProducerHandle();

  rd_kafka_t* get() const { return producer_.get(); }

  // The handle of `topic` once Open() returned one, else null: produce by
  // name (RD_KAFKA_V_TOPIC) until then.
  rd_kafka_topic_t* Topic(const std::string& topic);
  // Call once a record went to `topic` by name (librdkafka then knows the
  // topic, so no Metadata request is sent): the handle of `topic`, with the
  // producer's default topic configuration; null when librdkafka refuses
  // the name. A topic opened here for the first time waits for the next
  // LearnOpenedTopics().
  rd_kafka_topic_t* Open(const std::string& topic);
  // One Metadata request for the topics opened since the last call: naming
  // the topic when there is one, else every topic the producer knows
  // (rd_kafka_metadata with all_topics=0, rdkafka_metadata.c:66-76, a
  // forced request). Its answer gives those topics their partitions and
  // leaders. Blocks up to `timeout`, so it belongs on a thread of its own;
  // when it fails librdkafka's 1-s topic scan asks for the topics instead.
  void LearnOpenedTopics(absl::Duration timeout);
  // For a topic just created: librdkafka keeps a topic it was told does not
  // exist as such, failing its records at once (NOT_FOUND), until its next
  // 1-s topic scan. Asks for `topic`'s metadata, with a growing pause, until
  // the answer shows it without error and with partitions (another broker,
  // or a slow one, may not have heard of it yet) or `deadline` passes
  // (logged as a warning); true once shown. Does nothing (false) when the
  // producer has no handle for the topic yet, e.g. its first record was
  // refused on the spot: the 1-s topic scan covers that case.
  bool RelearnTopic(const std::string& topic, absl::Time deadline);

 private:
  // rd_kafka_metadata naming `only` (null: every topic the producer knows);
  // null on failure (logged; the 1-s topic scan asks again).
  MetadataPtr AskMetadata(rd_kafka_topic_t* only, absl::Duration timeout,
                          std::string_view what);

  RdKafkaPtr producer_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, rd_kafka_topic_t*> topics_ ABSL_GUARDED_BY(mu_);
  // Opened since the last LearnOpenedTopics; owned by topics_.
  std::vector<rd_kafka_topic_t*> unlearned_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::backend::kafka
