// Compaction of cleanup.policy=compact topics (Store::CompactIfDue): the
// control topic's heartbeats would otherwise grow by one record per node
// every few seconds, forever, and every node start replays them all.
#include <fmt/format.h>
#include <rocksdb/write_batch.h>

#include <map>
#include <set>

#include "backend/embedded/bounded_iterator.h"
#include "backend/embedded/store.h"

namespace ferry::backend::embedded {
absl::StatusOr<int64_t> Store::CompactIfDue(const std::string& name,
                                            const TopicMeta& topic, int32_t partition) {
  PartitionMeta meta;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = topics_.find(name);
    if (it == topics_.end() || it->second.meta.id != topic.id) return 0;
    meta = it->second.partitions[partition];
  }
  CompactionMark& mark = compaction_marks_[{topic.id, partition}];
  const int64_t appended = meta.high - std::max(mark.high, meta.low);
  if (appended < std::max(options_.compact_min_records, mark.live)) return 0;
  return Compact(name, topic, partition, meta);
}

absl::StatusOr<int64_t> Store::Compact(const std::string& name, const TopicMeta& topic,
                                       int32_t partition, PartitionMeta meta) {
  const std::string context = fmt::format("compaction of {}/{}", name, partition);
  // The last offset of each key; keyless records are never superseded.
  std::map<std::string, int64_t> latest;
  std::set<int64_t> survivors;
  std::map<int64_t, int64_t> sizes;  // offset -> encoded size, of keyed records
  {
    const BoundedIterator it(*db_, RecordKey(topic.id, partition, meta.high));
    for (it->Seek(RecordKey(topic.id, partition, meta.low)); it->Valid(); it->Next()) {
      ConsumedRecord record;
      const int64_t offset = OffsetOfRecordKey(AsView(it->key()));
      if (!DecodeRecord(AsView(it->value()), record)) {
        return absl::DataLossError(
            fmt::format("{}: record {} is corrupt", context, offset));
      }
      survivors.insert(offset);
      if (record.key.empty()) continue;
      sizes[offset] = static_cast<int64_t>(it->value().size());
      auto [entry, inserted] = latest.try_emplace(std::string(record.key), offset);
      if (!inserted) {
        survivors.erase(entry->second);
        entry->second = offset;
      }
    }
    if (!it->status().ok()) {
      return absl::UnavailableError(
          fmt::format("{}: read: {}", context, it->status().ToString()));
    }
  }

  rocksdb::WriteBatch batch;
  int64_t deleted = 0;
  for (const auto& [offset, size] : sizes) {
    if (survivors.contains(offset)) continue;
    batch.Delete(RecordKey(topic.id, partition, offset));
    meta.bytes -= size;
    ++deleted;
  }
  // An index entry (timestamp, offset) of a deleted record moves to the next
  // survivor, unless the next entry already answers for it.
  {
    const std::string start = IndexPartitionStart(topic.id, partition);
    const BoundedIterator it(*db_, PrefixEnd(start));
    std::vector<std::pair<int64_t, int64_t>> entries;  // offset, timestamp
    for (it->Seek(start); it->Valid(); it->Next()) {
      entries.emplace_back(OffsetOfIndexKey(AsView(it->key())),
                           TimestampOfIndexKey(AsView(it->key())));
    }
    for (size_t i = 0; i < entries.size(); ++i) {
      const auto [offset, timestamp] = entries[i];
      if (survivors.contains(offset) || offset < meta.low) continue;
      batch.Delete(IndexKey(topic.id, partition, timestamp, offset));
      auto next = survivors.upper_bound(offset);
      const int64_t next_entry =
          i + 1 < entries.size() ? entries[i + 1].first : meta.high;
      if (next != survivors.end() && *next < next_entry) {
        batch.Put(IndexKey(topic.id, partition, timestamp, *next), "");
      }
    }
  }
  // Readers below the first survivor continue from it.
  meta.low = survivors.empty() ? meta.high : *survivors.begin();
  batch.Put(PartitionKey(topic.id, partition), EncodePartitionMeta(meta));
  if (deleted > 0) {
    if (absl::Status s = Write(batch, context); !s.ok()) return s;
    absl::MutexLock lock(&mu_);
    auto it = topics_.find(name);
    if (it != topics_.end() && it->second.meta.id == topic.id) {
      it->second.partitions[partition] = meta;
    }
  }
  compaction_marks_[{topic.id, partition}] = {
      .high = meta.high, .live = static_cast<int64_t>(survivors.size())};
  return deleted;
}

}  // namespace ferry::backend::embedded
