#pragma once

#include <rocksdb/db.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "backend/cluster.h"
#include "backend/embedded/encoding.h"
#include "backend/group_member.h"

namespace ferry::backend::embedded {

// The embedded store's data on one RocksDB database: topics of partitioned
// logs with dense offsets, a timestamp index, watermarks and committed group
// offsets (key layout: encoding.h). Thread-safe. Writes (Append, topic
// administration, offsets, retention) are serialized by one lock and are
// synced to disk before they return; reads never wait for writes.
//
// Errors carry gRPC-compatible codes: NOT_FOUND for an unknown topic,
// ALREADY_EXISTS, INVALID_ARGUMENT; UNAVAILABLE when the disk refuses a
// write (full, read-only), with the store's path in the message.
class Store {
 public:
  struct Options {
    std::string path = "./ferry-data";
    // Topic defaults when CreateTopic's configs do not set retention.ms /
    // retention.bytes; -1 is unlimited.
    int64_t retention_ms = -1;
    int64_t retention_bytes = -1;
    // A compacted topic's partition is compacted once this many records
    // (and at least as many as survived the last compaction) were appended.
    int64_t compact_min_records = 1000;
  };

  // Opens or creates the database in `options.path`. Fails (naming the path)
  // when the directory cannot be created or written, when another process
  // holds it (RocksDB's LOCK file) or when it is not a Ferry store.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const Options& options);

  const std::string& path() const { return options_.path; }

  // Topics. `partitions` <= 0 means 1; the replication factor must be <= 1
  // (one node). `configs` may set retention.ms and retention.bytes.
  absl::Status CreateTopic(const std::string& topic, int partitions,
                           int replication_factor,
                           const std::map<std::string, std::string>& configs);
  absl::Status DeleteTopic(const std::string& topic);
  std::optional<TopicMeta> FindTopic(const std::string& topic) const;
  std::vector<std::string> ListTopics() const;
  absl::StatusOr<TopicInfo> DescribeTopic(const std::string& topic) const;

  // Appends records in one synced WriteBatch and returns one outcome per
  // record, in order. Chooses each record's partition (murmur2 of the
  // ordering key or key, like the Java client; keyless records round-robin)
  // and assigns offsets in call order. A record for an unknown topic fails
  // alone (NOT_FOUND); a failed write fails them all (UNAVAILABLE).
  std::vector<PublishOutcome> Append(const std::vector<Record>& records, int64_t now_ms);

  // Up to `max_records` / about `max_bytes` (at least one record) of
  // `topic`'s partition from `offset` on. An offset below the low watermark
  // reads from the low watermark; at the high watermark the result is empty.
  // NOT_FOUND when the topic does not exist or is no longer the one with
  // id `topic_id` (deleted and re-created).
  struct Fetched {
    std::vector<ConsumedRecord> records = {};
    int64_t next_offset = 0;
  };
  absl::StatusOr<Fetched> Fetch(const std::string& topic, uint64_t topic_id,
                                int32_t partition, int64_t offset, int max_records,
                                int64_t max_bytes) const;

  // {low, high} watermarks of a partition.
  absl::StatusOr<std::pair<int64_t, int64_t>> Watermarks(const std::string& topic,
                                                         int32_t partition) const;
  // The first offset of each partition with timestamp >= `timestamp_ms`
  // (high watermark if none). Exact for the records still stored; after
  // retention deleted the head, records older than a deleted record's
  // timestamp may be answered with the low watermark.
  absl::StatusOr<std::map<TopicPartition, int64_t>> OffsetsForTime(
      const std::string& topic, int64_t timestamp_ms) const;

  // Committed offsets of `group` for every partition of `topics` (-1 when
  // none). NOT_FOUND for an unknown topic.
  absl::StatusOr<std::map<TopicPartition, int64_t>> CommittedOffsets(
      const std::string& group, const std::vector<std::string>& topics) const;
  // Stores committed offsets; NOT_FOUND (and nothing stored) if a topic is
  // unknown.
  absl::Status Commit(const std::string& group,
                      const std::map<TopicPartition, int64_t>& offsets);
  // Groups with committed offsets.
  std::vector<std::string> ListGroups() const;

  // Deletes records from the head of each partition that are older than the
  // topic's retention.ms (by record timestamp, relative to `now_ms`) or
  // beyond its retention.bytes; the low watermarks move up. Compacts the
  // partitions of compacted topics that grew enough (see CompactIfDue).
  // Returns how many records were deleted.
  absl::StatusOr<int64_t> EnforceRetention(int64_t now_ms);

 private:
  struct Topic {
    TopicMeta meta;
    std::vector<PartitionMeta> partitions;
    uint64_t next_round_robin = 0;
  };
  // Per compacted partition: the high watermark and live record count after
  // its last compaction (in memory: after a restart the first check scans).
  struct CompactionMark {
    int64_t high = 0;
    int64_t live = 0;
  };

  Store(Options options, std::unique_ptr<rocksdb::DB> db);
  absl::Status Load();
  absl::Status Write(rocksdb::WriteBatch& batch, std::string_view what) const;
  absl::Status NotFound(const std::string& topic) const;
  int32_t ChoosePartition(const Record& record, Topic& topic)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<TopicMeta> FindTopicLocked(const std::string& topic) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The first offset of a partition whose running maximum timestamp reaches
  // `timestamp_ms` (index lookup), clamped to [low, high].
  int64_t OffsetForTime(const TopicMeta& topic, int32_t partition,
                        const PartitionMeta& meta, int64_t timestamp_ms) const;
  // Deletes [meta.low, new_low) of one partition, with its index entries.
  absl::Status TruncateHead(const std::string& name, const TopicMeta& topic,
                            int32_t partition, PartitionMeta meta, int64_t new_low)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  // Compaction (store_compaction.cc): once the partition grew by
  // max(compact_min_records, live records at the last compaction), deletes
  // every keyed record that a later record with the same key supersedes.
  // Offsets never change; readers skip the gaps. Returns the records deleted.
  absl::StatusOr<int64_t> CompactIfDue(const std::string& name, const TopicMeta& topic,
                                       int32_t partition)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::StatusOr<int64_t> Compact(const std::string& name, const TopicMeta& topic,
                                  int32_t partition, PartitionMeta meta)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  const Options options_;
  const std::unique_ptr<rocksdb::DB> db_;
  // Serializes writers, so offsets, partition metadata and the topic id
  // counter are read-modify-written by one thread at a time. Held during the
  // synced write; readers use only mu_.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // Guards the in-memory copy of topic and partition metadata. Watermarks
  // advance only after the write that made them true is durable, so readers
  // never see an offset that is not on disk.
  mutable absl::Mutex mu_;
  std::map<std::string, Topic> topics_ ABSL_GUARDED_BY(mu_);
  uint64_t next_topic_id_ ABSL_GUARDED_BY(write_mu_) = 1;
  std::map<std::pair<uint64_t, int32_t>, CompactionMark> compaction_marks_
      ABSL_GUARDED_BY(write_mu_);
};

}  // namespace ferry::backend::embedded
