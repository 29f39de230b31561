#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/cluster.h"
#include "backend/kafka/client_factory.h"
#include "backend/kafka/group_admin.h"
#include "backend/kafka/producer_handle.h"
#include "common/blocking_task_runner.h"
#include "config/config.h"

namespace ferry::backend::kafka {

// A Kafka cluster: owns a librdkafka handle for metadata and administration,
// a second one (the idempotent producer) for publishing, and a probe thread
// that refreshes the cluster's state every probe interval. An unreachable
// cluster is not an error: it is reported as down (with librdkafka's reason)
// and probed again.
//
// A fatal producer error (librdkafka gives an idempotent producer up, e.g.
// on a sequence gap the broker reports) replaces the producer: records it
// still held fail retryably (their clients publish them again, possibly
// duplicated and, for one key, possibly after a later record) and
// publishing goes on with a new producer.
class KafkaCluster final : public Cluster {
 public:
  // The nodes' bound on topic administration calls; the shutdown watchdog's
  // margin counts one such call (a start in progress).
  static constexpr absl::Duration kAdminTimeout = absl::Seconds(30);
  struct Options {
    absl::Duration probe_interval = absl::Seconds(5);
    absl::Duration probe_timeout = absl::Seconds(3);
    // Bound on topic administration calls (create, delete, describe).
    absl::Duration admin_timeout = kAdminTimeout;
    // How long a published record may wait for the broker's acknowledgement
    // (librdkafka message.timeout.ms) before it fails UNAVAILABLE.
    absl::Duration publish_timeout = absl::Seconds(10);
    // Group members: how long a member (node) may be silent before the
    // coordinator moves its partitions to others.
    absl::Duration group_session_timeout = absl::Seconds(10);
    // Least time between two topic learning rounds (see LearnTopicsSoon).
    absl::Duration topic_learning_interval = absl::Milliseconds(200);
  };

  // Fails with INVALID_ARGUMENT when a raw property is rejected by
  // librdkafka (the message names clusters.NAME.properties.KEY). Starts the
  // probe thread; the first probe runs immediately.
  static absl::StatusOr<std::unique_ptr<KafkaCluster>> Start(
      const config::ClusterConfig& config, const Options& options,
      ClientFactory& factory);

  // Stops the probe thread and destroys the handle.
  ~KafkaCluster() override;

  const std::string& name() const override { return name_; }
  std::string_view type() const override { return "kafka"; }
  const std::string& bootstrap() const override { return bootstrap_; }
  ClusterStatus Status() const override;
  ClusterStatus Describe(bool include_topics) override;
  // A batch of one (PublishBatch does the work).
  void Publish(Record record, PublishCallback done) override;
  void PublishBatch(const RecordBatch& batch, BatchCallback done) override;
  void FailPendingPublishes() override;
  absl::StatusOr<TopicInfo> DescribeTopic(const std::string& topic) override;
  absl::StatusOr<TopicInfo> DescribeTopicWithin(const std::string& topic,
                                                absl::Duration timeout) override;
  absl::Status CreateTopic(const std::string& topic, int partitions,
                           int replication_factor,
                           const std::map<std::string, std::string>& configs) override;
  absl::Status DeleteTopic(const std::string& topic) override;
  absl::StatusOr<std::unique_ptr<GroupMember>> JoinGroup(
      const GroupMemberOptions& options, GroupMemberListener* listener) override;
  // A member has its own broker client and nothing of the cluster's.
  bool MembersUseCluster() const override { return false; }
  absl::StatusOr<std::map<TopicPartition, int64_t>> CommittedOffsets(
      const std::string& group, const std::vector<std::string>& topics) override;
  absl::StatusOr<std::map<TopicPartition, int64_t>> CommittedOffsetsWithin(
      const std::string& group, const std::vector<std::string>& topics,
      absl::Duration timeout) override;
  absl::Status AlterCommittedOffsets(
      const std::string& group,
      const std::map<TopicPartition, int64_t>& offsets) override;
  absl::StatusOr<std::map<TopicPartition, int64_t>> OffsetsForTime(
      const std::string& topic, int64_t timestamp_ms) override;
  absl::StatusOr<std::vector<std::string>> ListGroups() override;
  absl::StatusOr<GroupDescription> DescribeGroup(const std::string& group) override;

 private:
  KafkaCluster(const config::ClusterConfig& config, const Options& options,
               ClientFactory& factory);

  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);
  static int32_t Partition(const rd_kafka_topic_t* topic, const void* key,
                           size_t key_length, int32_t partition_count, void* topic_opaque,
                           void* message_opaque);
  // Producer settings Ferry's guarantees depend on; they override the raw
  // properties (RequireDurableProducer rejects conflicting ones up front).
  static Properties ProducerProperties(const config::ClusterConfig& config,
                                       const Options& options);
  static absl::Status RequireDurableProducer(const Properties& properties,
                                             std::string_view key_prefix);
  // A producer handle with Ferry's settings over the raw properties.
  static absl::StatusOr<RdKafkaPtr> NewProducer(const config::ClusterConfig& config,
                                                const Options& options,
                                                ClientFactory& factory,
                                                KafkaCluster* opaque);
  std::shared_ptr<ProducerHandle> producer() const;
  // After a fatal error: a new producer takes over, the old one fails what
  // it still holds and is destroyed.
  void ReplaceProducer();
  void PollLoop();
  // Has the topic learner ask for the topics the producer opened (see
  // ProducerHandle::LearnOpenedTopics), on its own thread: one request at a
  // time, so topics that arrive together share one.
  void LearnTopicsSoon();
  // Every probe interval, a metadata request naming one topic: the broker
  // list is all the state needs. Naming none, rd_kafka_metadata(all_topics=0)
  // in librdkafka 2.0.2 asks for the topics the handle holds objects for,
  // and for all topics of the cluster when it holds none, as the
  // administration handle does: on 1,003 topics, "Caching full metadata with
  // 1 broker(s) and 1003 topic(s)" every second (10,000 partitions).
  void ProbeLoop();
  // The outcome of a record librdkafka refused or failed.
  PublishOutcome Failure(rd_kafka_resp_err_t err, int32_t partition) const;
  // The outcome of a record whose delivery report failed. A record that timed
  // out while the cluster acknowledged others waited in a busy queue (e.g.
  // 10,000 partitions draining slower than publish.timeout): retryable, but
  // not a sign of an unhealthy cluster, so it does not count towards its
  // breaker. A cluster that acknowledged nothing meanwhile is down or stuck.
  // The price: a partition without a leader among partitions that still
  // acknowledge does not move the cluster's writes either (its records fail
  // retryably, and the metadata probe still watches the cluster).
  PublishOutcome DeliveryFailure(const rd_kafka_message_t& message) const;
  // Waits up to `wait` for in-flight records, then purges the rest so every
  // Publish callback still runs (UNAVAILABLE, retryable).
  void FailOutstanding(rd_kafka_t* producer, absl::Duration wait);

  const std::string name_;
  const std::string bootstrap_;
  const Options options_;
  // The raw properties plus bootstrap.servers: the base of consumer handles.
  const Properties client_properties_;
  const config::ClusterConfig config_;
  ClientFactory& factory_;
  // Metadata, topic and group administration; never produces.
  RdKafkaPtr handle_;
  // The one topic the probe's metadata requests name (see ProbeLoop); owned,
  // destroyed before handle_.
  rd_kafka_topic_t* probe_topic_ = nullptr;
  std::unique_ptr<GroupAdmin> group_admin_;

  mutable absl::Mutex producer_mu_;
  // Publish takes a reference, so a replaced producer lives until the last
  // Publish that picked it returned.
  std::shared_ptr<ProducerHandle> producer_ ABSL_GUARDED_BY(producer_mu_);

  mutable absl::Mutex mu_;
  ClusterStatus status_ ABSL_GUARDED_BY(mu_);
  // librdkafka's latest connection error, e.g. "Connect to ipv4#127.0.0.1:9
  // failed: Connection refused"; explains a failed metadata request.
  std::string last_client_error_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Set when the producer raised a fatal error, until it was replaced; the
  // cluster is reported down meanwhile.
  std::string fatal_error_ ABSL_GUARDED_BY(mu_);
  // When the producer last had a record acknowledged (absl::GetCurrentTimeNanos);
  // 0 before the first. Written by delivery reports only.
  std::atomic<int64_t> last_ack_nanos_{0};
  std::thread poll_thread_;
  std::thread probe_thread_;
  // A learning task is posted and has not started yet.
  std::atomic<bool> learn_queued_{false};
  // When the last learning round ended; the learner's thread only.
  absl::Time last_learning_ = absl::InfinitePast();
  // A round that fails is not retried: librdkafka's 1-s topic scan asks
  // for the topics it still lacks.
  static constexpr absl::Duration kTopicLearningTimeout = absl::Seconds(1);
  // Last, so that it finishes its tasks (bounded by kTopicLearningTimeout)
  // while the producer they use still exists.
  BlockingTaskRunner topic_learner_{1};
};

}  // namespace ferry::backend::kafka
