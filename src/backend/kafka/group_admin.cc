#include "backend/kafka/group_admin.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <set>

#include "backend/kafka/consumer_protocol.h"
#include "backend/kafka/errors.h"
#include "backend/kafka/topic_admin.h"

namespace ferry::backend::kafka {
absl::StatusOr<GroupAdmin::GroupClientPtr> GroupAdmin::GroupClient(
    const std::string& group) {
  Properties properties = properties_;
  properties["group.id"] = group;
  properties["enable.auto.commit"] = "false";
  auto conf = BuildConf(properties, "");
  if (!conf.ok()) return conf.status();
  auto client = factory_.Create(RD_KAFKA_CONSUMER, *std::move(conf));
  if (!client.ok()) return client.status();
  return GroupClientPtr(client->release());
}

absl::StatusOr<std::map<TopicPartition, int64_t>> GroupAdmin::CommittedOffsets(
    const std::string& group, const std::vector<std::string>& requested,
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  // Without topics: ask for every partition of every topic and keep the
  // topics with a commit. Not ListConsumerGroupOffsets: librdkafka (2.0.2
  // up to at least 2.4) crashes when an admin handle gets NOT_COORDINATOR
  // for it, as a fresh cluster answers for a group it has not seen
  // (librdkafka#5040); rd_kafka_committed on a consumer handle retries.
  std::map<std::string, int> partitions;
  if (requested.empty()) {
    auto counts = PartitionCounts(handle_, deadline - absl::Now());
    if (!counts.ok()) return counts.status();
    partitions = *std::move(counts);
  }
  for (const std::string& topic : requested) {
    absl::StatusOr<int> count = PartitionCount(handle_, topic, deadline);
    if (!count.ok()) return count.status();
    partitions[topic] = *count;
  }
  PartitionListPtr list(rd_kafka_topic_partition_list_new(8));
  for (const auto& [topic, count] : partitions) {
    for (int p = 0; p < count; ++p) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
    }
  }
  std::map<TopicPartition, int64_t> offsets;
  if (list->cnt == 0) return offsets;
  auto client = GroupClient(group);
  if (!client.ok()) return client.status();
  rd_kafka_resp_err_t err =
      rd_kafka_committed(client->get(), list.get(), MillisUntil(deadline));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaStatus(err, fmt::format("committed offsets of group {}", group));
  }
  std::set<std::string> committed;
  for (int i = 0; i < list->cnt; ++i) {
    const auto& p = list->elems[i];
    offsets[{p.topic, p.partition}] = p.offset >= 0 ? p.offset : -1;
    if (p.offset >= 0) committed.insert(p.topic);
  }
  if (requested.empty()) {
    std::erase_if(offsets, [&](const auto& entry) {
      return !committed.contains(entry.first.topic);
    });
  }
  return offsets;
}

absl::Status GroupAdmin::AlterCommittedOffsets(
    const std::string& group, const std::map<TopicPartition, int64_t>& offsets) {
  PartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& [tp, offset] : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)
        ->offset = offset;
  }
  auto client = GroupClient(group);
  if (!client.ok()) return client.status();
  rd_kafka_resp_err_t err = rd_kafka_commit(client->get(), list.get(), /*async=*/0);
  for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; ++i) {
    err = list->elems[i].err;
  }
  if (err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
      err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
      err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION) {
    return absl::FailedPreconditionError(fmt::format(
        "group {} has active members elsewhere; its offsets move through them ({})",
        group, rd_kafka_err2str(err)));
  }
  return KafkaStatus(err, fmt::format("commit offsets of group {}", group));
}

absl::StatusOr<std::map<TopicPartition, int64_t>> GroupAdmin::OffsetsForTime(
    const std::string& topic, int64_t timestamp_ms) {
  absl::StatusOr<TopicInfo> info = DescribeTopic(handle_, topic, timeout_);
  if (!info.ok()) return info.status();
  PartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(info->partitions.size())));
  for (const PartitionInfo& p : info->partitions) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p.id)->offset =
        timestamp_ms;
  }
  rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(handle_, list.get(), timeout_ms());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaStatus(err, fmt::format("offsets for time in {}", topic));
  }
  std::map<TopicPartition, int64_t> offsets;
  for (int i = 0; i < list->cnt; ++i) {
    const auto& p = list->elems[i];
    if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaStatus(p.err,
                         fmt::format("offsets for time in {}/{}", topic, p.partition));
    }
    int64_t offset = p.offset;
    if (offset < 0) {  // no record at or after the time: the end
      int64_t low = 0;
      err = rd_kafka_query_watermark_offsets(handle_, topic.c_str(), p.partition, &low,
                                             &offset, timeout_ms());
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return KafkaStatus(err,
                           fmt::format("high watermark of {}/{}", topic, p.partition));
      }
    }
    offsets[{topic, p.partition}] = offset;
  }
  return offsets;
}

absl::StatusOr<std::vector<std::string>> GroupAdmin::ListGroups() {
  const rd_kafka_group_list* groups = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_list_groups(handle_, nullptr, &groups, timeout_ms());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaStatus(err, "list groups");
  std::vector<std::string> names;
  for (int i = 0; i < groups->group_cnt; ++i) names.push_back(groups->groups[i].group);
  rd_kafka_group_list_destroy(groups);
  return names;
}

absl::StatusOr<GroupDescription> GroupAdmin::DescribeGroup(const std::string& group) {
  const rd_kafka_group_list* groups = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_list_groups(handle_, group.c_str(), &groups, timeout_ms());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaStatus(err, fmt::format("describe group {}", group));
  }
  GroupDescription description{.state = "Dead"};
  for (int i = 0; i < groups->group_cnt; ++i) {
    const rd_kafka_group_info& info = groups->groups[i];
    if (group != info.group) continue;
    if (info.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_group_list_destroy(groups);
      return KafkaStatus(info.err, fmt::format("describe group {}", group));
    }
    description.state = info.state;
    for (int m = 0; m < info.member_cnt; ++m) {
      const rd_kafka_group_member_info& member = info.members[m];
      description.members.push_back(
          {.member_id = member.member_id,
           .client_id = member.client_id,
           .host = member.client_host,
           .assignment = DecodeAssignment(
               std::string_view(static_cast<const char*>(member.member_assignment),
                                static_cast<size_t>(member.member_assignment_size)))});
    }
  }
  rd_kafka_group_list_destroy(groups);
  return description;
}

}  // namespace ferry::backend::kafka
