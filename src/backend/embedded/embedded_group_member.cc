#include "backend/embedded/embedded_group_member.h"

#include <fmt/format.h>

#include "common/thread_allocator_cache.h"

namespace ferry::backend::embedded {

EmbeddedGroupMember::EmbeddedGroupMember(Store* store, GroupCoordinator* coordinator,
                                         const GroupMemberOptions& options,
                                         GroupMemberListener* listener,
                                         const Limits& limits)
    : store_(store),
      coordinator_(coordinator),
      listener_(listener),
      group_(options.group),
      standalone_(options.standalone),
      start_(options.start),
      start_offsets_(options.start_offsets),   // standalone only: CheckReaderOptions
      chosen_partitions_(options.partitions),  // likewise
      fail_out_of_range_(options.fail_out_of_range),
      limits_(limits),
      topics_(options.topics) {
  if (standalone_) {
    coordinator_->Watch(this);
  } else {
    coordinator_->Join(group_, this, options.client_id);
  }
  thread_ = std::thread([this] { Run(); });
}

EmbeddedGroupMember::~EmbeddedGroupMember() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void EmbeddedGroupMember::SetTopics(std::vector<std::string> topics) {
  absl::MutexLock lock(&mu_);
  topics_ = std::move(topics);
  woken_ = true;
}

void EmbeddedGroupMember::Commit(std::map<TopicPartition, int64_t> offsets) {
  if (standalone_) return;
  absl::MutexLock lock(&mu_);
  for (auto& [partition, offset] : offsets) commits_[partition] = offset;
  woken_ = true;
}

void EmbeddedGroupMember::Pause(const std::vector<TopicPartition>& partitions) {
  absl::MutexLock lock(&mu_);
  paused_.insert(partitions.begin(), partitions.end());
}

void EmbeddedGroupMember::Resume(const std::vector<TopicPartition>& partitions) {
  absl::MutexLock lock(&mu_);
  for (const TopicPartition& partition : partitions) paused_.erase(partition);
  woken_ = true;
}

int64_t EmbeddedGroupMember::HighWatermark(const TopicPartition& partition) const {
  auto watermarks = store_->Watermarks(partition.topic, partition.partition);
  return watermarks.ok() ? watermarks->second : -1;
}

void EmbeddedGroupMember::Seek(const TopicPartition& partition, int64_t offset) {
  absl::MutexLock lock(&mu_);
  seeks_.emplace_back(partition, offset);
  woken_ = true;
}

void EmbeddedGroupMember::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

void EmbeddedGroupMember::Run() {
  // One such thread per group, mostly asleep: see the function's comment.
  DisableThreadAllocatorCache();
  // True while the last batch may have left records behind: read on
  // without waiting for a wake-up.
  bool more = false;
  while (true) {
    std::vector<std::string> topics;
    std::map<TopicPartition, int64_t> commits;
    std::vector<std::pair<TopicPartition, int64_t>> seeks;
    std::set<TopicPartition> paused;
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      if (!more) {
        mu_.Await(absl::Condition(
            +[](EmbeddedGroupMember* m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m->mu_) {
              return m->woken_ || m->stopping_;
            },
            this));
      }
      woken_ = false;
      topics = topics_;
      commits.swap(commits_);
      seeks.swap(seeks_);
      paused = paused_;
      stopping = stopping_;
    }
    if (!commits.empty()) CommitNow(commits);
    if (stopping) break;
    Rebalance(topics);
    ApplySeeks(std::move(seeks));
    more = DeliverBatch(paused);
  }
  std::vector<std::string> owned;
  for (const auto& [topic, unused] : owned_) owned.push_back(topic);
  Revoke(owned, /*commit=*/true);
  if (standalone_) {
    coordinator_->Unwatch(this);
  } else {
    coordinator_->Leave(group_, this);
  }
}

void EmbeddedGroupMember::CommitNow(const std::map<TopicPartition, int64_t>& offsets) {
  if (standalone_) return;
  // Offsets of topics deleted meanwhile are dropped, so a deleted topic's
  // offsets are not brought back.
  std::map<TopicPartition, int64_t> current;
  for (const auto& [partition, offset] : offsets) {
    std::optional<TopicMeta> meta = store_->FindTopic(partition.topic);
    auto owned = owned_.find(partition.topic);
    if (meta.has_value() && (owned == owned_.end() || owned->second.id == meta->id)) {
      current[partition] = offset;
    }
  }
  if (current.empty()) return;
  const absl::Status status = store_->Commit(group_, current);
  if (!status.ok()) listener_->OnError(status);
  for (const auto& [partition, offset] : current) {
    listener_->OnCommitted(partition, offset, status);
  }
}

void EmbeddedGroupMember::ApplySeeks(
    std::vector<std::pair<TopicPartition, int64_t>> seeks) {
  for (const auto& [partition, offset] : seeks) {
    auto position = positions_.find(partition);
    if (position == positions_.end()) continue;  // not owned
    position->second = offset;
    out_of_range_.erase(partition);
    listener_->OnSeekDone(partition, offset);
  }
}

void EmbeddedGroupMember::Rebalance(const std::vector<std::string>& subscription) {
  const std::set<std::string> mine =
      standalone_ ? std::set<std::string>(subscription.begin(), subscription.end())
                  : coordinator_->Subscribe(group_, this, subscription);
  std::vector<std::string> unwanted, deleted;
  for (const auto& [topic, owned] : owned_) {
    std::optional<TopicMeta> meta = store_->FindTopic(topic);
    if (!meta.has_value() || meta->id != owned.id) {
      deleted.push_back(topic);
    } else if (!mine.contains(topic)) {
      unwanted.push_back(topic);
    }
  }
  if (!unwanted.empty()) Revoke(unwanted, /*commit=*/true);
  if (!deleted.empty()) Revoke(deleted, /*commit=*/false);
  for (const std::string& topic : mine) {
    if (owned_.contains(topic)) continue;
    std::optional<TopicMeta> meta = store_->FindTopic(topic);
    if (!meta.has_value()) {
      if (reported_missing_.insert(topic).second) {
        listener_->OnError(absl::NotFoundError(fmt::format(
            "unknown topic {} (embedded store {}); its partitions are assigned once it "
            "is created",
            topic, store_->path())));
      }
      continue;
    }
    reported_missing_.erase(topic);
    if (standalone_ || coordinator_->TryTake(group_, this, topic)) Assign(topic, *meta);
  }
}

void EmbeddedGroupMember::Revoke(const std::vector<std::string>& topics, bool commit) {
  if (topics.empty()) return;
  std::vector<TopicPartition> partitions;
  for (const std::string& topic : topics) {
    for (int32_t p = 0; p < owned_.at(topic).partitions; ++p) {
      // Of a standalone member's chosen partitions, only those it owns.
      if (positions_.contains({topic, p})) partitions.push_back({topic, p});
    }
  }
  std::map<TopicPartition, int64_t> offsets = listener_->OnRevoked(partitions);
  if (commit) CommitNow(offsets);
  for (const TopicPartition& partition : partitions) positions_.erase(partition);
  for (const std::string& topic : topics) owned_.erase(topic);
  {
    absl::MutexLock lock(&mu_);
    for (const TopicPartition& partition : partitions) paused_.erase(partition);
  }
  if (!standalone_) coordinator_->Release(group_, this, topics);
}

void EmbeddedGroupMember::Assign(const std::string& topic, const TopicMeta& meta) {
  // A standalone member has no committed offsets: it starts at its start
  // offsets, or else at `start_`.
  std::map<TopicPartition, int64_t> committed;
  if (!standalone_) {
    auto stored = store_->CommittedOffsets(group_, {topic});
    if (!stored.ok()) {
      listener_->OnError(stored.status());
      coordinator_->Release(group_, this, {topic});
      return;
    }
    committed = *std::move(stored);
  }
  std::vector<AssignedPartition> assigned;
  std::map<TopicPartition, int64_t> start_positions;
  for (int32_t p = 0; p < meta.partitions; ++p) {
    const TopicPartition partition{topic, p};
    if (!IsChosen(chosen_partitions_, partition)) continue;
    auto stored = committed.find(partition);
    int64_t offset = stored == committed.end() ? -1 : stored->second;
    if (auto start = start_offsets_.find(partition); start != start_offsets_.end()) {
      // Where a seek would have moved it, unclamped as a seek is.
      offset = start->second;
    } else if (offset < 0) {
      offset = StartOffset(topic, p);
      start_positions[partition] = offset;
    } else if (auto watermarks = store_->Watermarks(topic, p); watermarks.ok()) {
      // Retention may have deleted past the committed offset.
      offset = std::clamp(offset, watermarks->first, watermarks->second);
    }
    positions_[partition] = offset;
    out_of_range_.erase(partition);
    assigned.push_back({.partition = partition, .next_offset = offset});
  }
  owned_[topic] = {.id = meta.id, .partitions = meta.partitions};
  {
    // A Pause() from before the assignment was for partitions not owned.
    absl::MutexLock lock(&mu_);
    for (const AssignedPartition& a : assigned) paused_.erase(a.partition);
  }
  // Committed before anything is delivered, so "latest" means the moment of
  // assignment even if this member dies before its first commit.
  CommitNow(start_positions);
  listener_->OnAssigned(assigned);
}

int64_t EmbeddedGroupMember::StartOffset(const std::string& topic, int32_t partition) {
  if (start_.kind == StartPosition::Kind::kTimestamp) {
    auto offsets = store_->OffsetsForTime(topic, start_.timestamp_ms);
    if (offsets.ok()) return offsets->at({topic, partition});
  }
  auto watermarks = store_->Watermarks(topic, partition);
  if (!watermarks.ok()) return 0;
  return start_.kind == StartPosition::Kind::kEarliest ? watermarks->first
                                                       : watermarks->second;
}

bool EmbeddedGroupMember::OutOfRange(const TopicPartition& partition) {
  if (!fail_out_of_range_) return false;
  if (out_of_range_.contains(partition)) return true;
  auto watermarks = store_->Watermarks(partition.topic, partition.partition);
  const int64_t position = positions_.at(partition);
  if (!watermarks.ok() || position >= watermarks->first) return false;
  out_of_range_.insert(partition);
  listener_->OnError(absl::OutOfRangeError(fmt::format(
      "{}/{}: offset {} is below the log start {} (embedded store {})", partition.topic,
      partition.partition, position, watermarks->first, store_->path())));
  return true;
}

bool EmbeddedGroupMember::DeliverBatch(const std::set<TopicPartition>& paused) {
  std::vector<TopicPartition> readable;
  for (const auto& [partition, unused] : positions_) {
    if (!paused.contains(partition) && !OutOfRange(partition))
      readable.push_back(partition);
  }
  if (readable.empty()) return false;
  std::vector<ConsumedRecord> batch;
  int64_t bytes = 0;
  for (size_t i = 0; i < readable.size(); ++i) {
    const int room = limits_.max_records - static_cast<int>(batch.size());
    if (room <= 0 || bytes >= limits_.max_bytes) break;
    const TopicPartition& partition = readable[(next_partition_ + i) % readable.size()];
    auto fetched =
        store_->Fetch(partition.topic, owned_.at(partition.topic).id, partition.partition,
                      positions_.at(partition), room, limits_.max_bytes - bytes);
    if (!fetched.ok()) {
      // A deleted topic is revoked by the next Rebalance (deletion wakes us).
      if (fetched.status().code() != absl::StatusCode::kNotFound) {
        listener_->OnError(fetched.status());
      }
      continue;
    }
    positions_[partition] = fetched->next_offset;
    for (ConsumedRecord& record : fetched->records) {
      bytes += static_cast<int64_t>(record.key.size() + record.value.size());
      batch.push_back(std::move(record));
    }
  }
  next_partition_ = (next_partition_ + 1) % readable.size();
  if (batch.empty()) return false;
  listener_->OnRecords(std::move(batch));
  return true;
}

}  // namespace ferry::backend::embedded
