#include "backend/embedded/embedded_cluster.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "backend/record_batch.h"

namespace ferry::backend::embedded {

EmbeddedCluster::Options EmbeddedCluster::OptionsFrom(
    const config::ClusterConfig& config) {
  const absl::Duration retention = config.retention;
  return {
      .path = config.path,
      .durability = config.durability == "batch" ? Durability::kBatch : Durability::kSync,
      .group_commit = config.group_commit,
      .retention_ms = retention == absl::InfiniteDuration()
                          ? -1
                          : absl::ToInt64Milliseconds(retention),
      .retention_bytes = config.retention_bytes};
}

EmbeddedCluster::EmbeddedCluster(std::string name, const Options& options,
                                 std::unique_ptr<Store> store)
    : name_(std::move(name)), options_(options), store_(std::move(store)) {}

absl::StatusOr<std::unique_ptr<EmbeddedCluster>> EmbeddedCluster::Open(
    std::string name, const Options& options) {
  auto store = Store::Open({.path = options.path,
                            .retention_ms = options.retention_ms,
                            .retention_bytes = options.retention_bytes});
  if (!store.ok()) {
    return absl::Status(
        store.status().code(),
        fmt::format("clusters.{}: {}", name, std::string(store.status().message())));
  }
  std::unique_ptr<EmbeddedCluster> cluster(
      new EmbeddedCluster(std::move(name), options, *std::move(store)));
  cluster->writer_ = std::make_unique<Writer>(
      cluster->store_.get(),
      Writer::Options{.linger = options.durability == Durability::kBatch
                                    ? options.group_commit
                                    : absl::ZeroDuration(),
                      .max_batch_records = options.max_batch_records},
      [c = cluster.get()](const std::set<std::string>& topics) {
        c->coordinator_.WakeReaders(topics);
      });
  cluster->retention_thread_ = std::thread([c = cluster.get()] { c->RetentionLoop(); });
  return cluster;
}

EmbeddedCluster::~EmbeddedCluster() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  retention_thread_.join();
  writer_.reset();
}

ClusterStatus EmbeddedCluster::Status() const {
  // Open means up: there is nothing remote to lose, and no brokers to list.
  // Write failures (disk full) are reported per call.
  return {.state = ClusterState::kUp,
          .error = {},
          .brokers = {},
          .topics = {},
          .last_contact = absl::Now()};
}

ClusterStatus EmbeddedCluster::Describe(bool include_topics) {
  ClusterStatus status = Status();
  if (include_topics) status.topics = store_->ListTopics();
  return status;
}

void EmbeddedCluster::Publish(Record record, PublishCallback done) {
  writer_->Enqueue(std::move(record), std::move(done));
}

void EmbeddedCluster::PublishBatch(const RecordBatch& batch, BatchCallback done) {
  // Copied into the Records the store encodes from: this backend's cost is
  // its synced write, not a copy.
  std::vector<Record> records;
  records.reserve(batch.records.size());
  for (size_t i = 0; i < batch.records.size(); ++i) records.push_back(ToRecord(batch, i));
  writer_->EnqueueBatch(std::move(records), std::move(done));
}

absl::StatusOr<TopicInfo> EmbeddedCluster::DescribeTopic(const std::string& topic) {
  return store_->DescribeTopic(topic);
}

absl::Status EmbeddedCluster::CreateTopic(
    const std::string& topic, int partitions, int replication_factor,
    const std::map<std::string, std::string>& configs) {
  absl::Status status =
      store_->CreateTopic(topic, partitions, replication_factor, configs);
  // Members subscribed to a topic that did not exist take it now.
  if (status.ok()) coordinator_.WakeAll();
  return status;
}

absl::Status EmbeddedCluster::DeleteTopic(const std::string& topic) {
  absl::Status status = store_->DeleteTopic(topic);
  if (status.ok()) coordinator_.WakeAll();
  return status;
}

absl::StatusOr<std::unique_ptr<GroupMember>> EmbeddedCluster::JoinGroup(
    const GroupMemberOptions& options, GroupMemberListener* listener) {
  if (options.group.empty()) {
    return absl::InvalidArgumentError("join group: the group name is empty");
  }
  if (listener == nullptr) {
    return absl::InvalidArgumentError("join group: no listener");
  }
  if (absl::Status checked = CheckReaderOptions(options); !checked.ok()) return checked;
  return std::make_unique<EmbeddedGroupMember>(store_.get(), &coordinator_, options,
                                               listener, options_.fetch_limits);
}

absl::StatusOr<std::map<TopicPartition, int64_t>> EmbeddedCluster::CommittedOffsets(
    const std::string& group, const std::vector<std::string>& topics) {
  return store_->CommittedOffsets(group, topics);
}

absl::Status EmbeddedCluster::AlterCommittedOffsets(
    const std::string& group, const std::map<TopicPartition, int64_t>& offsets) {
  // As Kafka: a live group is moved by its members (Seek), not behind their
  // backs.
  if (const int members = coordinator_.MemberCount(group); members > 0) {
    return absl::FailedPreconditionError(fmt::format(
        "group {} has {} active member(s); seek the live group instead", group, members));
  }
  for (const auto& [partition, offset] : offsets) {
    auto watermarks = store_->Watermarks(partition.topic, partition.partition);
    if (!watermarks.ok()) return watermarks.status();
    if (offset < 0) {
      return absl::InvalidArgumentError(fmt::format("offset {} of {}/{} is negative",
                                                    offset, partition.topic,
                                                    partition.partition));
    }
  }
  return store_->Commit(group, offsets);
}

absl::StatusOr<std::map<TopicPartition, int64_t>> EmbeddedCluster::OffsetsForTime(
    const std::string& topic, int64_t timestamp_ms) {
  return store_->OffsetsForTime(topic, timestamp_ms);
}

absl::StatusOr<std::vector<std::string>> EmbeddedCluster::ListGroups() {
  std::vector<std::string> groups = store_->ListGroups();
  for (std::string& active : coordinator_.ActiveGroups()) {
    if (std::find(groups.begin(), groups.end(), active) == groups.end()) {
      groups.push_back(std::move(active));
    }
  }
  std::sort(groups.begin(), groups.end());
  return groups;
}

absl::StatusOr<GroupDescription> EmbeddedCluster::DescribeGroup(
    const std::string& group) {
  GroupDescription description;
  const std::vector<GroupCoordinator::MemberView> members = coordinator_.Members(group);
  for (size_t i = 0; i < members.size(); ++i) {
    GroupDescription::Member& out = description.members.emplace_back();
    out.member_id = fmt::format("{}-{}", group, i);
    out.client_id = members[i].client_id;
    out.host = "localhost";
    for (const std::string& topic : members[i].owned_topics) {
      std::optional<TopicMeta> meta = store_->FindTopic(topic);
      for (int32_t p = 0; meta.has_value() && p < meta->partitions; ++p) {
        out.assignment.push_back({topic, p});
      }
    }
  }
  if (!members.empty()) {
    description.state = "Stable";
  } else {
    const std::vector<std::string> stored = store_->ListGroups();
    const bool known = std::find(stored.begin(), stored.end(), group) != stored.end();
    description.state = known ? "Empty" : "Dead";
  }
  return description;
}

absl::StatusOr<int64_t> EmbeddedCluster::EnforceRetention() {
  return store_->EnforceRetention(absl::ToUnixMillis(absl::Now()));
}

void EmbeddedCluster::RetentionLoop() {
  absl::MutexLock lock(&mu_);
  auto stopping = [](EmbeddedCluster* c)
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) { return c->stopping_; };
  while (!mu_.AwaitWithTimeout(absl::Condition(+stopping, this),
                               options_.retention_check_interval)) {
    mu_.Unlock();
    absl::StatusOr<int64_t> deleted = EnforceRetention();
    if (!deleted.ok()) {
      spdlog::warn("cluster={} retention: {}", name_,
                   std::string(deleted.status().message()));
    } else if (*deleted > 0) {
      spdlog::debug("cluster={} retention deleted {} records", name_, *deleted);
    }
    mu_.Lock();
  }
}

}  // namespace ferry::backend::embedded
