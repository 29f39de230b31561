#pragma once

#include <librdkafka/rdkafka.h>

#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/group_member.h"
#include "backend/kafka/client_factory.h"

namespace ferry::backend::kafka {

// A Kafka consumer group member: one librdkafka high-level consumer and its
// member thread, which polls, runs rebalances and executes queued commands
// (commit, seek, topic changes) between polls.
//
// Assignment uses the eager "roundrobin" assignor, knowingly: librdkafka
// 2.0.2's cooperative-sticky can crash on close before the first rebalance
// (librdkafka#4312) and can lose an assignment after an illegal-generation
// commit error (#4908). Eager rebalances revoke every partition, so in-flight
// messages are redelivered on each rebalance; at-least-once holds either way.
//
// Offsets are never auto-committed or auto-stored: only Commit() and the
// revoke callback's offsets reach the broker.
class KafkaGroupMember final : public GroupMember {
 public:
  struct Options {
    absl::Duration session_timeout = absl::Seconds(10);
    // Bound on the blocking calls of an assignment (committed offsets,
    // watermarks, offsets-for-times); retried until they succeed.
    absl::Duration request_timeout = absl::Seconds(5);
    int max_batch_records = 500;
  };

  // `properties`: the cluster's raw librdkafka properties (bootstrap
  // included); Ferry's consumer settings override them.
  static absl::StatusOr<std::unique_ptr<KafkaGroupMember>> Join(
      const Properties& properties, std::string_view key_prefix,
      const GroupMemberOptions& member_options, const Options& options,
      GroupMemberListener* listener, ClientFactory& factory);

  ~KafkaGroupMember() override;

  void SetTopics(std::vector<std::string> topics) override;
  void Commit(std::map<TopicPartition, int64_t> offsets) override;
  void Pause(const std::vector<TopicPartition>& partitions) override;
  void Resume(const std::vector<TopicPartition>& partitions) override;
  void Seek(const TopicPartition& partition, int64_t offset) override;

 private:
  using Command = std::function<void()>;

  KafkaGroupMember(const GroupMemberOptions& member_options, const Options& options,
                   GroupMemberListener* listener);

  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque);
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  void Assign(rd_kafka_topic_partition_list_t* partitions);
  void Revoke(rd_kafka_topic_partition_list_t* partitions);
  // Where an assigned partition starts: the committed offset, or the start
  // position resolved and committed. Retries until it succeeds or the member
  // stops (returns false then).
  bool ResolvePositions(rd_kafka_topic_partition_list_t* partitions);
  void Subscribe(const std::vector<std::string>& topics);
  void CommitNow(const std::map<TopicPartition, int64_t>& offsets, bool async);
  void Enqueue(Command command);
  void RunLoop();
  void RunCommands();
  void PollRecords();
  // Hands the records polled so far to the listener.
  void FlushRecords();
  bool stopping() const;

  const GroupMemberOptions member_options_;
  const Options options_;
  GroupMemberListener* const listener_;
  RdKafkaPtr handle_;
  // Owned partitions; member thread only.
  std::set<TopicPartition> assigned_;
  // Records polled but not yet handed over; member thread only.
  std::vector<ConsumedRecord> pending_;

  mutable absl::Mutex mu_;
  std::deque<Command> commands_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ferry::backend::kafka
