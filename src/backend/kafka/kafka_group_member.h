#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
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
//
// Standalone (GroupMemberOptions::standalone): no rd_kafka_subscribe; the
// member thread looks up the topics' partitions (metadata, retried every
// second while a topic is missing) and assigns them all (only `partitions`,
// when set) with rd_kafka_assign
// at resolved start offsets. librdkafka needs a group.id for that, but sends
// it to the broker only for group operations (joining, offset fetch and
// commit; librdkafka#593), none of which a standalone member does, so no
// group appears on the cluster. (Only its coordinator lookup names it, so an
// ACL must allow describing that group id.)
//
// Flow control without rd_kafka_pause_partitions: each owned partition's
// fetch queue is taken out of the consumer queue (rd_kafka_queue_forward to
// NULL) and read separately, so Pause() simply stops reading it. librdkafka
// then stops fetching that partition once its queue holds
// queued.max.messages.kbytes, and nothing it prefetched is thrown away.
// (Pausing in librdkafka purges the prefetched records, which are fetched
// again after the resume: that halved the broker's throughput and stalled
// consumption for up to a second per resume.) The consumer queue still
// carries rebalances and errors, and is read every turn of the loop.
//
// Fetch nudges: librdkafka 2.0.2 stops fetching a partition whose queue holds
// queued.max.messages.kbytes and looks at it again only when its broker
// thread wakes up, which an idle connection does once a second (2.2.0 made
// that fetch.queue.backoff.ms). A backlog drained faster than one queue per
// second thus stalled every second. While partitions are read in full
// batches (a deep queue), a nudger thread sends their leaders a ListOffsets
// request every 50 ms; the
// request wakes the broker thread, which then fetches the partitions that
// have room again. (The call blocks while a fetch holds the connection,
// hence a thread of its own.)
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
  int64_t HighWatermark(const TopicPartition& partition) const override;

 private:
  using Command = std::function<void()>;

  KafkaGroupMember(const GroupMemberOptions& member_options, const Options& options,
                   GroupMemberListener* listener);

  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque);
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static void OnCommitted(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* offsets, void* opaque);
  void Assign(rd_kafka_topic_partition_list_t* partitions);
  void Revoke(rd_kafka_topic_partition_list_t* partitions);
  // Where an assigned partition starts: the committed offset, or the start
  // position resolved and committed. Retries until it succeeds or the member
  // stops (returns false then).
  bool ResolvePositions(rd_kafka_topic_partition_list_t* partitions);
  void Subscribe(const std::vector<std::string>& topics);
  // Standalone: assigns every partition of the pending topics, replacing the
  // current assignment, once their metadata is known.
  void AssignStandalone();
  // Revokes every owned partition (standalone: the listener's offsets are
  // dropped).
  void RevokeAll();
  void CommitNow(const std::map<TopicPartition, int64_t>& offsets, bool async);
  void Enqueue(Command command);
  void RunLoop();
  void RunCommands();
  // Applies the seeks that are due (one call); a refused one stays for a
  // later turn.
  void RunSeeks();
  // How long the loop may sleep when idle: until the next seek retry is
  // due, at most 100 ms.
  absl::Duration IdleWait() const;
  // Serves the consumer queue (rebalances, errors) and reads the partitions
  // that are not paused; returns whether anything was read.
  bool PollRecords();
  bool ReadPartitionQueues();
  // Turns messages read in one call into pending records that share them (or
  // reports their errors); takes ownership of the messages.
  void Take(rd_kafka_message_t* const* messages, size_t count);
  // A record of an owned partition came through the consumer queue.
  void ReclaimQueue(const rd_kafka_message_t* message);
  // Blocks until librdkafka or Enqueue() signals new work, or `timeout`.
  void WaitForWork(absl::Duration timeout);
  void Wake();
  // Takes over / gives back the fetch queue of an owned partition.
  void OpenQueue(const TopicPartition& partition);
  void CloseQueue(const TopicPartition& partition);
  // Reads a queue empty, destroying what it held.
  static void Drain(rd_kafka_queue_t* queue);
  // Hands the records polled so far to the listener.
  void FlushRecords();
  bool stopping() const;
  // Asks the nudger to wake the leader of a partition being read.
  void NudgeFetch(const TopicPartition& partition);
  void RunNudger();

  const GroupMemberOptions member_options_;
  const Options options_;
  GroupMemberListener* const listener_;
  // Shared with the messages records hold (see Take): librdkafka's handle must
  // outlive every message taken from it.
  std::shared_ptr<rd_kafka_t> handle_;
  // Owned partitions; member thread only.
  std::set<TopicPartition> assigned_;
  // Fetch queues of owned partitions and the paused ones; member thread only.
  std::map<TopicPartition, rd_kafka_queue_t*> queues_;
  std::set<TopicPartition> paused_;
  // Fetch queues given back (partitions revoked), still held: a fetch stop
  // leaves a queue forwarded nowhere (and once Ferry took it over,
  // librdkafka never forwards it again), so the barriers of the stop and
  // resume that follow a revoke stay there, each holding a reference to the
  // partition. For a partition of a deleted topic nothing else frees
  // it, nor the leader broker it references, and rd_kafka_destroy waited
  // for that broker's thread forever (librdkafka 2.0.2, fixed in 2.6.1 by
  // librdkafka#4724). Drained at each assignment, drained and destroyed
  // after the close; member thread only.
  std::map<TopicPartition, rd_kafka_queue_t*> given_back_;
  // Where the next ReadPartitionQueues() starts, so partitions share fairly.
  size_t next_queue_ = 0;
  // An eventfd that librdkafka (a queue turned non-empty) and Enqueue() write.
  int wake_fd_ = -1;
  // Seeks of owned partitions librdkafka has not accepted yet; member thread
  // only.
  struct PendingSeek {
    int64_t offset = 0;
    absl::Time next_try;
  };
  std::map<TopicPartition, PendingSeek> seeks_;
  // Revokes so far; queued commits computed before a revoke are dropped.
  std::atomic<uint64_t> revokes_{0};
  // Records polled but not yet handed over; member thread only.
  std::vector<ConsumedRecord> pending_;
  // Standalone: topics to assign next (none pending: nullopt) and when the
  // next metadata lookup is due; member thread only.
  std::optional<std::vector<std::string>> standalone_topics_;
  absl::Time next_standalone_try_ = absl::InfinitePast();

  mutable absl::Mutex mu_;
  std::deque<Command> commands_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;

  absl::Mutex nudge_mu_;
  std::set<TopicPartition> nudge_ ABSL_GUARDED_BY(nudge_mu_);
  bool nudger_stopping_ ABSL_GUARDED_BY(nudge_mu_) = false;
  std::thread nudger_;
};

}  // namespace ferry::backend::kafka
