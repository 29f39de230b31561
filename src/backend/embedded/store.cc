#include "backend/embedded/store.h"

#include <fmt/format.h>
#include <rocksdb/write_batch.h>

#include <filesystem>

#include "backend/embedded/bounded_iterator.h"
#include "backend/murmur2.h"
#include "common/strings.h"
#include "common/topic_name.h"

namespace ferry::backend::embedded {
namespace {

constexpr int32_t kMaxPartitions = 10000;

absl::Status ParseTopicLimit(const std::string& key, const std::string& value,
                             int64_t& out) {
  int64_t parsed = 0;
  if (!ParseInt(value, parsed) || parsed < -1) {
    return absl::InvalidArgumentError(fmt::format(
        "config {}={}: not a whole number >= -1 (-1 is unlimited)", key, value));
  }
  out = parsed;
  return absl::OkStatus();
}

bool Starts(const rocksdb::Iterator& it, std::string_view prefix) {
  return it.Valid() && AsView(it.key()).starts_with(prefix);
}

}  // namespace

Store::Store(Options options, std::unique_ptr<rocksdb::DB> db)
    : options_(std::move(options)), db_(std::move(db)) {}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const Options& options) {
  std::error_code error;
  std::filesystem::create_directories(options.path, error);
  if (error) {
    return absl::FailedPreconditionError(
        fmt::format("embedded store {}: cannot create the directory: {}", options.path,
                    error.message()));
  }
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.keep_log_file_num = 5;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status status = rocksdb::DB::Open(db_options, options.path, &raw);
  if (!status.ok()) {
    // RocksDB's message names the file (e.g. "While lock file: DIR/LOCK:
    // Resource temporarily unavailable" when another process has it open).
    return absl::FailedPreconditionError(fmt::format("embedded store {}: cannot open: {}",
                                                     options.path, status.ToString()));
  }
  std::unique_ptr<Store> store(new Store(options, std::unique_ptr<rocksdb::DB>(raw)));
  if (absl::Status loaded = store->Load(); !loaded.ok()) return loaded;
  return store;
}

absl::Status Store::Load() {
  absl::MutexLock write_lock(&write_mu_);
  absl::MutexLock lock(&mu_);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}));
  for (it->Seek(AsSlice(TopicKeyPrefix())); Starts(*it, TopicKeyPrefix()); it->Next()) {
    const std::string name(AsView(it->key()).substr(TopicKeyPrefix().size()));
    std::optional<TopicMeta> meta = DecodeTopicMeta(AsView(it->value()));
    if (!meta.has_value()) {
      return absl::DataLossError(fmt::format(
          "embedded store {}: metadata of topic {} is corrupt", path(), name));
    }
    Topic& topic = topics_[name];
    topic.meta = *meta;
    topic.partitions.resize(meta->partitions);
    for (int32_t p = 0; p < meta->partitions; ++p) {
      std::string value;
      rocksdb::Status s = db_->Get({}, PartitionKey(meta->id, p), &value);
      std::optional<PartitionMeta> partition =
          s.ok() ? DecodePartitionMeta(value) : std::nullopt;
      if (!partition.has_value()) {
        return absl::DataLossError(
            fmt::format("embedded store {}: metadata of topic {} partition {} is "
                        "missing or corrupt: {}",
                        path(), name, p, s.ToString()));
      }
      topic.partitions[p] = *partition;
    }
  }
  std::string next_id;
  if (db_->Get({}, NextTopicIdKey(), &next_id).ok()) {
    next_topic_id_ = static_cast<uint64_t>(DecodeFixed64(next_id).value_or(1));
  }
  return absl::OkStatus();
}

absl::Status Store::Write(rocksdb::WriteBatch& batch, std::string_view what) const {
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  rocksdb::Status status = db_->Write(write_options, &batch);
  if (status.ok()) return absl::OkStatus();
  // Disk full, I/O errors and a database RocksDB switched to read-only after
  // one: the caller may retry (elsewhere, or once space is freed).
  return absl::UnavailableError(
      fmt::format("embedded store {}: {} failed: {}", path(), what, status.ToString()));
}

absl::Status Store::NotFound(const std::string& topic) const {
  return absl::NotFoundError(
      fmt::format("unknown topic {} (embedded store {})", topic, path()));
}

std::optional<TopicMeta> Store::FindTopicLocked(const std::string& topic) const {
  auto it = topics_.find(topic);
  if (it == topics_.end()) return std::nullopt;
  return it->second.meta;
}

std::optional<TopicMeta> Store::FindTopic(const std::string& topic) const {
  absl::ReaderMutexLock lock(&mu_);
  return FindTopicLocked(topic);
}

std::vector<std::string> Store::ListTopics() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, unused] : topics_) {
    if (!name.starts_with("__")) names.push_back(name);
  }
  return names;
}

absl::Status Store::CreateTopic(const std::string& topic, int partitions,
                                int replication_factor,
                                const std::map<std::string, std::string>& configs) {
  if (absl::Status valid = ValidateTopicName(topic); !valid.ok()) return valid;
  const std::string context = fmt::format("create topic {}", topic);
  if (partitions > kMaxPartitions) {
    return absl::InvalidArgumentError(fmt::format("{}: {} partitions is more than {}",
                                                  context, partitions, kMaxPartitions));
  }
  if (replication_factor > 1) {
    return absl::InvalidArgumentError(
        fmt::format("{}: replication factor {} is not possible on the embedded store "
                    "(one node, one copy); use 1 or leave it unset",
                    context, replication_factor));
  }
  TopicMeta meta{.partitions = partitions > 0 ? partitions : 1,
                 .retention_ms = options_.retention_ms,
                 .retention_bytes = options_.retention_bytes};
  // std::map order: cleanup.policy comes before the retention.* that may
  // override what it implies.
  for (const auto& [key, value] : configs) {
    absl::Status parsed;
    if (key == "cleanup.policy" && value == "compact") {
      // No retention: compaction keeps the latest record of each key.
      meta.retention_ms = meta.retention_bytes = -1;
      meta.compact = true;
    } else if (key == "cleanup.policy" && value == "delete") {
      // Kafka's default: retention applies.
    } else if (key == "segment.ms") {
      // Accepted for Kafka's sake (the control topic sets it): nothing here
      // rolls segments.
    } else if (key == "retention.ms") {
      parsed = ParseTopicLimit(key, value, meta.retention_ms);
    } else if (key == "retention.bytes") {
      parsed = ParseTopicLimit(key, value, meta.retention_bytes);
    } else {
      parsed = absl::InvalidArgumentError(
          fmt::format("config {}: not supported by the embedded store (retention.ms, "
                      "retention.bytes, cleanup.policy and segment.ms are)",
                      key));
    }
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: {}", context, std::string(parsed.message())));
    }
  }

  absl::MutexLock write_lock(&write_mu_);
  if (FindTopic(topic).has_value()) {
    return absl::AlreadyExistsError(fmt::format("{}: the topic already exists", context));
  }
  meta.id = next_topic_id_;
  rocksdb::WriteBatch batch;
  batch.Put(TopicKey(topic), EncodeTopicMeta(meta));
  batch.Put(NextTopicIdKey(), EncodeFixed64(static_cast<int64_t>(meta.id + 1)));
  for (int32_t p = 0; p < meta.partitions; ++p) {
    batch.Put(PartitionKey(meta.id, p), EncodePartitionMeta({}));
  }
  if (absl::Status s = Write(batch, context); !s.ok()) return s;
  next_topic_id_ = meta.id + 1;
  absl::MutexLock lock(&mu_);
  topics_[topic] =
      Topic{.meta = meta, .partitions = std::vector<PartitionMeta>(meta.partitions)};
  return absl::OkStatus();
}

absl::Status Store::DeleteTopic(const std::string& topic) {
  if (absl::Status valid = ValidateTopicName(topic); !valid.ok()) return valid;
  absl::MutexLock write_lock(&write_mu_);
  std::optional<TopicMeta> meta = FindTopic(topic);
  if (!meta.has_value()) return NotFound(topic);
  rocksdb::WriteBatch batch;
  batch.Delete(TopicKey(topic));
  for (const std::string& prefix : {RecordKeyPrefix(meta->id), IndexKeyPrefix(meta->id),
                                    PartitionKeyPrefix(meta->id)}) {
    batch.DeleteRange(prefix, PrefixEnd(prefix));
  }
  // Like Kafka (KIP-496), a deleted topic's committed offsets go with it, so
  // a topic re-created under the name does not inherit them.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}));
  for (it->Seek(AsSlice(GroupKeysPrefix())); Starts(*it, GroupKeysPrefix()); it->Next()) {
    auto parts = ParseGroupOffsetKey(AsView(it->key()));
    if (parts.has_value() && parts->topic == topic) batch.Delete(it->key());
  }
  if (absl::Status s = Write(batch, fmt::format("delete topic {}", topic)); !s.ok()) {
    return s;
  }
  absl::MutexLock lock(&mu_);
  topics_.erase(topic);
  return absl::OkStatus();
}

absl::StatusOr<TopicInfo> Store::DescribeTopic(const std::string& topic) const {
  if (absl::Status valid = ValidateTopicName(topic); !valid.ok()) return valid;
  absl::ReaderMutexLock lock(&mu_);
  auto it = topics_.find(topic);
  if (it == topics_.end()) return NotFound(topic);
  TopicInfo info{.name = topic};
  for (int32_t p = 0; p < it->second.meta.partitions; ++p) {
    const PartitionMeta& meta = it->second.partitions[p];
    // One node: it leads every partition and is its only replica.
    info.partitions.push_back({.id = p,
                               .leader = 0,
                               .replicas = {0},
                               .in_sync_replicas = {0},
                               .low_watermark = meta.low,
                               .high_watermark = meta.high});
  }
  return info;
}

int32_t Store::ChoosePartition(const Record& record, Topic& topic) {
  if (record.partition >= 0) return record.partition;
  const std::string& key = record.ordering_key.empty() ? record.key : record.ordering_key;
  if (!key.empty()) return Murmur2Partition(key, topic.meta.partitions);
  return static_cast<int32_t>(topic.next_round_robin++ % topic.meta.partitions);
}

std::vector<PublishOutcome> Store::Append(const std::vector<Record>& records,
                                          int64_t now_ms) {
  std::vector<PublishOutcome> outcomes(records.size());
  absl::MutexLock write_lock(&write_mu_);
  // Partition metadata as it will be after the batch; published to readers
  // only once the batch is on disk.
  std::map<std::pair<std::string, int32_t>, PartitionMeta> touched;
  rocksdb::WriteBatch batch;
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < records.size(); ++i) {
      const Record& record = records[i];
      PublishOutcome& outcome = outcomes[i];
      auto topic = topics_.find(record.topic);
      if (topic == topics_.end()) {
        outcome.status = NotFound(record.topic);
        continue;
      }
      if (record.timestamp_ms < 0) {
        outcome.status = absl::InvalidArgumentError(
            fmt::format("timestamp {} is negative", record.timestamp_ms));
        continue;
      }
      const TopicMeta& meta = topic->second.meta;
      if (record.partition >= meta.partitions) {
        outcome.status = absl::InvalidArgumentError(
            fmt::format("topic {} has no partition {} (it has {})", record.topic,
                        record.partition, meta.partitions));
        continue;
      }
      outcome.partition = ChoosePartition(record, topic->second);
      auto [entry, inserted] = touched.try_emplace(
          {record.topic, outcome.partition}, topic->second.partitions[outcome.partition]);
      PartitionMeta& partition = entry->second;
      outcome.offset = partition.high++;
      outcome.timestamp_ms = record.timestamp_ms != 0 ? record.timestamp_ms : now_ms;
      std::string value =
          EncodeRecord(outcome.timestamp_ms, record.key, record.value, record.headers);
      partition.bytes += static_cast<int64_t>(value.size());
      batch.Put(RecordKey(meta.id, outcome.partition, outcome.offset), value);
      if (outcome.timestamp_ms > partition.max_timestamp_ms) {
        partition.max_timestamp_ms = outcome.timestamp_ms;
        batch.Put(
            IndexKey(meta.id, outcome.partition, outcome.timestamp_ms, outcome.offset),
            "");
      }
    }
    for (const auto& [where, partition] : touched) {
      batch.Put(PartitionKey(topics_.at(where.first).meta.id, where.second),
                EncodePartitionMeta(partition));
    }
  }
  if (touched.empty()) return outcomes;

  absl::Status written = Write(batch, "append");
  absl::MutexLock lock(&mu_);
  for (auto& [where, partition] : touched) {
    Topic& topic = topics_.at(where.first);  // deletion needs write_mu_
    if (written.ok()) topic.partitions[where.second] = partition;
  }
  if (!written.ok()) {
    for (PublishOutcome& outcome : outcomes) {
      if (!outcome.status.ok()) continue;
      outcome = {.status = written, .retryable = true, .partition = outcome.partition};
    }
  }
  return outcomes;
}

absl::StatusOr<Store::Fetched> Store::Fetch(const std::string& topic, uint64_t topic_id,
                                            int32_t partition, int64_t offset,
                                            int max_records, int64_t max_bytes) const {
  PartitionMeta meta;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = topics_.find(topic);
    if (it == topics_.end() || it->second.meta.id != topic_id) return NotFound(topic);
    if (partition < 0 || partition >= it->second.meta.partitions) {
      return absl::NotFoundError(
          fmt::format("topic {} has no partition {}", topic, partition));
    }
    meta = it->second.partitions[partition];
  }
  Fetched fetched{.next_offset = std::max(offset, meta.low)};
  if (fetched.next_offset >= meta.high) return fetched;

  const BoundedIterator it(*db_, RecordKey(topic_id, partition, meta.high));
  int64_t bytes = 0;
  for (it->Seek(RecordKey(topic_id, partition, fetched.next_offset));
       it->Valid() && static_cast<int>(fetched.records.size()) < max_records &&
       (fetched.records.empty() || bytes < max_bytes);
       it->Next()) {
    ConsumedRecord& record = fetched.records.emplace_back();
    record.topic = topic;
    record.partition = partition;
    record.offset = OffsetOfRecordKey(AsView(it->key()));
    // The record's views point into its own copy of the stored value.
    auto encoded = std::make_shared<const std::string>(AsView(it->value()));
    record.bytes = encoded;
    if (!DecodeRecord(*encoded, record)) {
      return absl::DataLossError(
          fmt::format("embedded store {}: record {}/{}/{} is corrupt", path(), topic,
                      partition, record.offset));
    }
    bytes += static_cast<int64_t>(it->value().size());
    fetched.next_offset = record.offset + 1;
  }
  if (!it->status().ok()) {
    return absl::UnavailableError(fmt::format("embedded store {}: read {}/{}: {}", path(),
                                              topic, partition, it->status().ToString()));
  }
  return fetched;
}

absl::StatusOr<std::pair<int64_t, int64_t>> Store::Watermarks(const std::string& topic,
                                                              int32_t partition) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = topics_.find(topic);
  if (it == topics_.end()) return NotFound(topic);
  if (partition < 0 || partition >= it->second.meta.partitions) {
    return absl::NotFoundError(
        fmt::format("topic {} has no partition {}", topic, partition));
  }
  const PartitionMeta& meta = it->second.partitions[partition];
  return std::make_pair(meta.low, meta.high);
}

int64_t Store::OffsetForTime(const TopicMeta& topic, int32_t partition,
                             const PartitionMeta& meta, int64_t timestamp_ms) const {
  const std::string start = IndexPartitionStart(topic.id, partition);
  const BoundedIterator it(*db_, PrefixEnd(start));
  it->Seek(IndexKey(topic.id, partition, timestamp_ms, 0));
  const int64_t offset = it->Valid() ? OffsetOfIndexKey(AsView(it->key())) : meta.high;
  return std::clamp(offset, meta.low, meta.high);
}

absl::StatusOr<std::map<TopicPartition, int64_t>> Store::OffsetsForTime(
    const std::string& topic, int64_t timestamp_ms) const {
  std::optional<TopicMeta> meta;
  std::vector<PartitionMeta> partitions;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = topics_.find(topic);
    if (it == topics_.end()) return NotFound(topic);
    meta = it->second.meta;
    partitions = it->second.partitions;
  }
  std::map<TopicPartition, int64_t> offsets;
  for (int32_t p = 0; p < meta->partitions; ++p) {
    offsets[{topic, p}] = OffsetForTime(*meta, p, partitions[p], timestamp_ms);
  }
  return offsets;
}

absl::StatusOr<std::map<TopicPartition, int64_t>> Store::CommittedOffsets(
    const std::string& group, const std::vector<std::string>& topics) const {
  std::map<TopicPartition, int64_t> offsets;
  for (const std::string& topic : topics) {
    std::optional<TopicMeta> meta = FindTopic(topic);
    if (!meta.has_value()) return NotFound(topic);
    for (int32_t p = 0; p < meta->partitions; ++p) {
      std::string value;
      rocksdb::Status s = db_->Get({}, GroupOffsetKey(group, topic, p), &value);
      if (!s.ok() && !s.IsNotFound()) {
        return absl::UnavailableError(
            fmt::format("embedded store {}: read offsets of group {}: {}", path(), group,
                        s.ToString()));
      }
      offsets[{topic, p}] = s.ok() ? DecodeFixed64(value).value_or(-1) : -1;
    }
  }
  return offsets;
}

absl::Status Store::Commit(const std::string& group,
                           const std::map<TopicPartition, int64_t>& offsets) {
  // Under write_mu_ so a topic cannot be deleted between the check and the
  // write, which would bring its offsets back.
  absl::MutexLock write_lock(&write_mu_);
  rocksdb::WriteBatch batch;
  for (const auto& [partition, offset] : offsets) {
    if (!FindTopic(partition.topic).has_value()) return NotFound(partition.topic);
    batch.Put(GroupOffsetKey(group, partition.topic, partition.partition),
              EncodeFixed64(offset));
  }
  return Write(batch, fmt::format("commit offsets of group {}", group));
}

std::vector<std::string> Store::ListGroups() const {
  std::vector<std::string> groups;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}));
  it->Seek(AsSlice(GroupKeysPrefix()));
  while (Starts(*it, GroupKeysPrefix())) {
    auto parts = ParseGroupOffsetKey(AsView(it->key()));
    if (!parts.has_value()) {
      it->Next();
      continue;
    }
    groups.push_back(parts->group);
    it->Seek(PrefixEnd(GroupKeyPrefix(parts->group)));  // skip the group's keys
  }
  return groups;
}

absl::StatusOr<int64_t> Store::EnforceRetention(int64_t now_ms) {
  absl::MutexLock write_lock(&write_mu_);
  std::vector<std::pair<std::string, Topic>> topics;
  {
    absl::ReaderMutexLock lock(&mu_);
    topics.assign(topics_.begin(), topics_.end());
  }
  int64_t deleted = 0;
  for (const auto& [name, topic] : topics) {
    for (int32_t p = 0; p < topic.meta.partitions; ++p) {
      const PartitionMeta& meta = topic.partitions[p];
      int64_t new_low = meta.low;
      if (topic.meta.retention_ms >= 0) {
        new_low = std::max(new_low, OffsetForTime(topic.meta, p, meta,
                                                  now_ms - topic.meta.retention_ms));
      }
      if (topic.meta.retention_bytes >= 0 && meta.bytes > topic.meta.retention_bytes) {
        // Drop from the head until the rest fits.
        int64_t excess = meta.bytes - topic.meta.retention_bytes;
        std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}));
        int64_t offset = meta.low;
        for (it->Seek(RecordKey(topic.meta.id, p, meta.low));
             excess > 0 && offset < meta.high && it->Valid(); it->Next()) {
          excess -= static_cast<int64_t>(it->value().size());
          offset = OffsetOfRecordKey(AsView(it->key())) + 1;
        }
        new_low = std::max(new_low, offset);
      }
      if (new_low > meta.low) {
        if (absl::Status s = TruncateHead(name, topic.meta, p, meta, new_low); !s.ok()) {
          return s;
        }
        deleted += new_low - meta.low;
      }
      if (topic.meta.compact) {
        absl::StatusOr<int64_t> compacted = CompactIfDue(name, topic.meta, p);
        if (!compacted.ok()) return compacted.status();
        deleted += *compacted;
      }
    }
  }
  return deleted;
}

absl::Status Store::TruncateHead(const std::string& name, const TopicMeta& topic,
                                 int32_t partition, PartitionMeta meta, int64_t new_low) {
  rocksdb::WriteBatch batch;
  {
    const std::string end = RecordKey(topic.id, partition, new_low);
    const BoundedIterator it(*db_, end);
    for (it->Seek(RecordKey(topic.id, partition, meta.low)); it->Valid(); it->Next()) {
      meta.bytes -= static_cast<int64_t>(it->value().size());
    }
    batch.DeleteRange(RecordKey(topic.id, partition, 0), end);
  }
  {
    // Index entries of deleted records go too. The last of them still tells
    // the running maximum timestamp at new_low, so it moves there (unless
    // the record at new_low has its own entry).
    const std::string start = IndexPartitionStart(topic.id, partition);
    const std::string end = PrefixEnd(start);
    const BoundedIterator it(*db_, end);
    std::optional<int64_t> last_deleted_timestamp;
    for (it->Seek(start); it->Valid() && OffsetOfIndexKey(AsView(it->key())) < new_low;
         it->Next()) {
      last_deleted_timestamp = TimestampOfIndexKey(AsView(it->key()));
    }
    const bool survivor_at_new_low =
        it->Valid() && OffsetOfIndexKey(AsView(it->key())) == new_low;
    batch.DeleteRange(start, it->Valid() ? it->key().ToString() : end);
    if (last_deleted_timestamp.has_value() && !survivor_at_new_low &&
        new_low < meta.high) {
      batch.Put(IndexKey(topic.id, partition, *last_deleted_timestamp, new_low), "");
    }
  }
  meta.low = new_low;
  // An empty partition starts a fresh index with its next record.
  if (meta.low == meta.high) meta.max_timestamp_ms = INT64_MIN;
  batch.Put(PartitionKey(topic.id, partition), EncodePartitionMeta(meta));
  if (absl::Status s = Write(batch, fmt::format("retention of {}/{}", name, partition));
      !s.ok()) {
    return s;
  }
  absl::MutexLock lock(&mu_);
  auto it = topics_.find(name);
  if (it != topics_.end()) it->second.partitions[partition] = meta;
  return absl::OkStatus();
}

}  // namespace ferry::backend::embedded
