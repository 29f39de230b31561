#include "backend/kafka/topic_admin.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <set>
#include <string_view>
#include <vector>

#include "backend/kafka/client_factory.h"
#include "backend/kafka/errors.h"
#include "common/topic_name.h"

namespace ferry::backend::kafka {
namespace {

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* queue) const { rd_kafka_queue_destroy(queue); }
};
struct AdminOptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* options) const {
    rd_kafka_AdminOptions_destroy(options);
  }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* event) const { rd_kafka_event_destroy(event); }
};
struct NewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* topic) const { rd_kafka_NewTopic_destroy(topic); }
};
struct DeleteTopicDeleter {
  void operator()(rd_kafka_DeleteTopic_t* topic) const {
    rd_kafka_DeleteTopic_destroy(topic);
  }
};
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using AdminOptionsPtr = std::unique_ptr<rd_kafka_AdminOptions_t, AdminOptionsDeleter>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;
using NewTopicPtr = std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter>;
using DeleteTopicPtr = std::unique_ptr<rd_kafka_DeleteTopic_t, DeleteTopicDeleter>;

// KafkaStatus, plus the broker's or librdkafka's own explanation when it
// says more than the code's description, e.g. INVALID_REPLICATION_FACTOR's
// "Unable to replicate the partition 3 time(s): ... only 1 broker(s) are
// registered."
absl::Status KafkaStatusWithDetail(rd_kafka_resp_err_t err, std::string_view context,
                                   std::string_view detail) {
  absl::Status status = KafkaStatus(err, context);
  if (status.ok() || detail.empty() || detail == rd_kafka_err2str(err)) return status;
  return absl::Status(status.code(),
                      fmt::format("{} ({})", std::string(status.message()), detail));
}

absl::Status TimedOut(std::string_view context, std::string_view detail) {
  return KafkaStatusWithDetail(RD_KAFKA_RESP_ERR__TIMED_OUT, context, detail);
}

struct TopicDeleter {
  void operator()(rd_kafka_topic_t* topic) const { rd_kafka_topic_destroy(topic); }
};
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;

// Metadata of all topics (for listings).
absl::StatusOr<MetadataPtr> FetchMetadata(rd_kafka_t* handle, absl::Time deadline,
                                          std::string_view context) {
  if (absl::Now() >= deadline) return TimedOut(context, "no time left for metadata");
  const rd_kafka_metadata_t* metadata = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(handle, /*all_topics=*/1, nullptr,
                                                    &metadata, MillisUntil(deadline));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaStatus(err, context);
  return MetadataPtr(metadata);
}

// Metadata naming only `topic`: checking one topic must not cost a response
// listing every topic of the cluster (creating 1,000 topics one by one asked
// for 500,000 topic entries). The handle must set
// allow.auto.create.topics=false (KafkaCluster's administration handle does),
// or naming a missing topic could create it.
absl::StatusOr<MetadataPtr> FetchTopicMetadata(rd_kafka_t* handle,
                                               const std::string& topic,
                                               absl::Time deadline,
                                               std::string_view context) {
  if (absl::Now() >= deadline) return TimedOut(context, "no time left for metadata");
  TopicPtr only(rd_kafka_topic_new(handle, topic.c_str(), nullptr));
  if (only == nullptr) return KafkaStatus(rd_kafka_last_error(), context);
  const rd_kafka_metadata_t* metadata = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(handle, /*all_topics=*/0, only.get(),
                                                    &metadata, MillisUntil(deadline));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaStatus(err, context);
  return MetadataPtr(metadata);
}

// The topic's entry; nullptr when the cluster does not have it (a response
// naming it answers UNKNOWN_TOPIC_OR_PART for a missing topic).
const rd_kafka_metadata_topic_t* FindTopic(const rd_kafka_metadata_t& metadata,
                                           const std::string& topic) {
  for (int i = 0; i < metadata.topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& found = metadata.topics[i];
    if (topic != found.topic) continue;
    if (found.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) return nullptr;
    return &found;
  }
  return nullptr;
}

// `topic`'s entry in its metadata, fetched into `metadata` (which the entry
// lives in). NOT_FOUND for an unknown topic. A topic-level error with
// partitions (e.g. LEADER_NOT_AVAILABLE while a leader is elected) still
// describes the topic; without any, it is the answer.
absl::StatusOr<const rd_kafka_metadata_topic_t*> FetchTopicEntry(rd_kafka_t* handle,
                                                                 const std::string& topic,
                                                                 absl::Time deadline,
                                                                 std::string_view context,
                                                                 MetadataPtr& metadata) {
  absl::StatusOr<MetadataPtr> fetched =
      FetchTopicMetadata(handle, topic, deadline, context);
  if (!fetched.ok()) return fetched.status();
  metadata = *std::move(fetched);
  const rd_kafka_metadata_topic_t* found = FindTopic(*metadata, topic);
  if (found == nullptr) {
    return KafkaStatus(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, context);
  }
  if (found->err != RD_KAFKA_RESP_ERR_NO_ERROR && found->partition_cnt == 0) {
    return KafkaStatus(found->err, context);
  }
  return found;
}

// Submits one admin request (through `submit`, which calls e.g.
// rd_kafka_CreateTopics with the options and queue it is given) and waits
// for its result event until `deadline`. The request timeout makes librdkafka
// post a result by then; the broker is asked to answer within half of it, so
// that its own verdict (e.g. REQUEST_TIMED_OUT for a slow controller) arrives
// before the client gives up. Fails on a request-level error; the caller
// checks the per-topic results.
absl::StatusOr<EventPtr> RunAdminRequest(
    rd_kafka_t* handle, rd_kafka_admin_op_t op, absl::Time deadline,
    std::string_view context,
    const std::function<void(const rd_kafka_AdminOptions_t*, rd_kafka_queue_t*)>&
        submit) {
  AdminOptionsPtr options(rd_kafka_AdminOptions_new(handle, op));
  if (options == nullptr) {
    return absl::InternalError(fmt::format("{}: cannot create admin options", context));
  }
  const int timeout_ms = MillisUntil(deadline);
  char errstr[512] = "";
  rd_kafka_resp_err_t err = rd_kafka_AdminOptions_set_request_timeout(
      options.get(), timeout_ms, errstr, sizeof(errstr));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaStatusWithDetail(err, context, errstr);
  }
  // Only topic-changing operations take an operation timeout.
  if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS) {
    err = rd_kafka_AdminOptions_set_operation_timeout(
        options.get(), std::max(1, timeout_ms / 2), errstr, sizeof(errstr));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaStatusWithDetail(err, context, errstr);
    }
  }

  // A queue of our own: the result does not mix with the handle's delivery
  // reports and other events, and destroying it (also on early return)
  // discards a result that arrives late.
  QueuePtr queue(rd_kafka_queue_new(handle));
  submit(options.get(), queue.get());
  EventPtr event(rd_kafka_queue_poll(queue.get(), MillisUntil(deadline)));
  if (event == nullptr) return TimedOut(context, "no answer from the cluster");
  err = rd_kafka_event_error(event.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* detail = rd_kafka_event_error_string(event.get());
    return KafkaStatusWithDetail(err, context, detail == nullptr ? "" : detail);
  }
  return event;
}

// The first failed per-topic result of an admin request; OK if all succeeded.
// An empty result list is an error too: the topic was not answered for.
absl::Status TopicResultsStatus(const rd_kafka_topic_result_t** results, size_t count,
                                std::string_view context) {
  if (count == 0) {
    return absl::InternalError(fmt::format("{}: the result names no topic", context));
  }
  for (size_t i = 0; i < count; ++i) {
    const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    const char* detail = rd_kafka_topic_result_error_string(results[i]);
    return KafkaStatusWithDetail(err, context, detail == nullptr ? "" : detail);
  }
  return absl::OkStatus();
}

// The offset at `end` (RD_KAFKA_OFFSET_BEGINNING or _END) of each of
// `partitions`, in their order, retrying retryable errors until `deadline`.
absl::StatusOr<std::vector<int64_t>> ListOffsets(
    rd_kafka_t* handle, const std::string& topic,
    const std::vector<PartitionInfo*>& partitions, int64_t end, absl::Time deadline,
    std::string_view context) {
  absl::Duration pause = absl::Milliseconds(50);
  while (true) {
    if (absl::Now() >= deadline) return TimedOut(context, "no time left");
    PartitionListPtr list(
        rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
    for (const PartitionInfo* p : partitions) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p->id)->offset = end;
    }
    rd_kafka_resp_err_t err =
        rd_kafka_offsets_for_times(handle, list.get(), MillisUntil(deadline));
    std::vector<int64_t> offsets;
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; ++i) {
      err = list->elems[i].err;
      // Unanswered by the deadline: the call returns no error and leaves the
      // asked-for position (negative) in place.
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR && list->elems[i].offset < 0) {
        err = RD_KAFKA_RESP_ERR__TIMED_OUT;
      }
      offsets.push_back(list->elems[i].offset);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return offsets;
    if (!Classify(err).retryable || absl::Now() + pause >= deadline) {
      return KafkaStatus(err, context);
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Seconds(1));
  }
}

}  // namespace

int MillisUntil(absl::Time deadline) {
  const int64_t ms = absl::ToInt64Milliseconds(
      absl::Ceil(deadline - absl::Now(), absl::Milliseconds(1)));
  return static_cast<int>(std::clamp<int64_t>(ms, 1, std::numeric_limits<int>::max()));
}

absl::StatusOr<int> PartitionCount(rd_kafka_t* handle, const std::string& topic,
                                   absl::Time deadline) {
  if (absl::Status valid = ValidateTopicName(topic); !valid.ok()) return valid;
  MetadataPtr metadata;
  absl::StatusOr<const rd_kafka_metadata_topic_t*> found = FetchTopicEntry(
      handle, topic, deadline, fmt::format("partitions of topic {}", topic), metadata);
  if (!found.ok()) return found.status();
  return (*found)->partition_cnt;
}

absl::Status AwaitMetadata(
    rd_kafka_t* handle, const std::string& topic, absl::Time deadline,
    std::string_view context, std::string_view done_what,
    const std::function<std::string(const rd_kafka_metadata_topic_t*)>& not_ready) {
  absl::Duration pause = absl::Milliseconds(50);
  std::string why;
  while (true) {
    absl::StatusOr<MetadataPtr> metadata =
        FetchTopicMetadata(handle, topic, deadline, context);
    if (metadata.ok()) {
      why = not_ready(FindTopic(**metadata, topic));
      if (why.empty()) return absl::OkStatus();
    } else {
      why = std::string(metadata.status().message());
    }
    if (absl::Now() + pause >= deadline) {
      return TimedOut(context, fmt::format("{}, but {}", done_what, why));
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Seconds(1));
  }
}

// Watermarks are asked for all partitions at once, one ListOffsets request
// per leader and end (librdkafka 2.0.2 has no ListOffsets admin call), with
// rd_kafka_offsets_for_times, which returns when its timeout is over:
// rd_kafka_query_watermark_offsets waits for the broker's answer whatever
// timeout it is given (a broker that accepted the request and stalls held
// a stopping node for the request timeout). A partition without a leader
// cannot answer, so its watermarks stay -1 rather than failing the
// description an operator needs most in that situation. Retryable errors are
// retried until the deadline: metadata names a new leader (after a creation
// or an election) a moment before that broker serves the partition, and
// answers NOT_LEADER_FOR_PARTITION meanwhile.
absl::StatusOr<TopicInfo> DescribeTopic(rd_kafka_t* handle, const std::string& topic,
                                        absl::Duration timeout) {
  if (absl::Status valid = ValidateTopicName(topic); !valid.ok()) return valid;
  const absl::Time deadline = absl::Now() + timeout;
  const std::string context = fmt::format("describe topic {}", topic);

  TopicInfo info;
  info.name = topic;
  {
    MetadataPtr metadata;
    absl::StatusOr<const rd_kafka_metadata_topic_t*> entry =
        FetchTopicEntry(handle, topic, deadline, context, metadata);
    if (!entry.ok()) return entry.status();
    const rd_kafka_metadata_topic_t* found = *entry;
    for (int i = 0; i < found->partition_cnt; ++i) {
      const rd_kafka_metadata_partition_t& p = found->partitions[i];
      PartitionInfo& out = info.partitions.emplace_back();
      out.id = p.id;
      out.leader = p.leader;
      out.replicas.assign(p.replicas, p.replicas + p.replica_cnt);
      out.in_sync_replicas.assign(p.isrs, p.isrs + p.isr_cnt);
    }
  }
  std::sort(info.partitions.begin(), info.partitions.end(),
            [](const PartitionInfo& a, const PartitionInfo& b) { return a.id < b.id; });

  std::vector<PartitionInfo*> led;
  for (PartitionInfo& partition : info.partitions) {
    if (partition.leader >= 0) led.push_back(&partition);
  }
  if (led.empty()) return info;
  for (const int64_t end : {RD_KAFKA_OFFSET_BEGINNING, RD_KAFKA_OFFSET_END}) {
    const std::string end_context = fmt::format(
        "{}: {} watermarks", context, end == RD_KAFKA_OFFSET_BEGINNING ? "low" : "high");
    absl::StatusOr<std::vector<int64_t>> offsets =
        ListOffsets(handle, topic, led, end, deadline, end_context);
    if (!offsets.ok()) return offsets.status();
    for (size_t i = 0; i < led.size(); ++i) {
      (end == RD_KAFKA_OFFSET_BEGINNING ? led[i]->low_watermark
                                        : led[i]->high_watermark) = (*offsets)[i];
    }
  }
  return info;
}

// partitions/replication_factor <= 0 are sent as -1, which librdkafka 2.0.2
// passes on in CreateTopics v4 (KIP-464, brokers >= 2.4) so the broker
// applies its num.partitions / default.replication.factor. This is simpler
// and more accurate than reading the broker's configuration first: the
// controller that creates the topic decides.
absl::Status CreateTopic(rd_kafka_t* handle, const std::string& topic, int partitions,
                         int replication_factor,
                         const std::map<std::string, std::string>& configs,
                         absl::Duration timeout) {
  if (absl::Status valid = ValidateTopicName(topic); !valid.ok()) return valid;
  const absl::Time deadline = absl::Now() + timeout;
  const std::string context = fmt::format("create topic {}", topic);

  char errstr[512] = "";
  NewTopicPtr new_topic(rd_kafka_NewTopic_new(
      topic.c_str(), partitions > 0 ? partitions : -1,
      replication_factor > 0 ? replication_factor : -1, errstr, sizeof(errstr)));
  if (new_topic == nullptr) {
    return KafkaStatusWithDetail(RD_KAFKA_RESP_ERR__INVALID_ARG, context, errstr);
  }
  for (const auto& [key, value] : configs) {
    const rd_kafka_resp_err_t err =
        rd_kafka_NewTopic_set_config(new_topic.get(), key.c_str(), value.c_str());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaStatus(err, fmt::format("{}: config {}={}", context, key, value));
    }
  }

  rd_kafka_NewTopic_t* topics[] = {new_topic.get()};
  absl::StatusOr<EventPtr> event = RunAdminRequest(
      handle, RD_KAFKA_ADMIN_OP_CREATETOPICS, deadline, context,
      [&](const rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
        rd_kafka_CreateTopics(handle, topics, 1, options, queue);
      });
  if (!event.ok()) return event.status();
  const rd_kafka_CreateTopics_result_t* result =
      rd_kafka_event_CreateTopics_result(event->get());
  if (result == nullptr) {
    return absl::InternalError(
        fmt::format("{}: the answer is not a CreateTopics result", context));
  }
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(result, &count);
  if (absl::Status status = TopicResultsStatus(results, count, context); !status.ok()) {
    return status;
  }

  // The controller has the topic now; brokers learn of its partitions and
  // leaders a moment later, and a producer that comes before that fails.
  return AwaitMetadata(
      handle, topic, deadline, context, "created",
      [&](const rd_kafka_metadata_topic_t* found) -> std::string {
        if (found == nullptr || found->partition_cnt == 0) {
          return "its metadata has not reached the brokers";
        }
        if (partitions > 0 && found->partition_cnt < partitions) {
          return fmt::format("metadata shows {} of {} partitions", found->partition_cnt,
                             partitions);
        }
        const int leaderless = std::count_if(
            found->partitions, found->partitions + found->partition_cnt,
            [](const rd_kafka_metadata_partition_t& p) { return p.leader < 0; });
        if (leaderless == 0) return "";
        return fmt::format("{} of {} partitions have no leader", leaderless,
                           found->partition_cnt);
      });
}

// Waits, like CreateTopic, until the brokers' metadata agrees, so that a
// describe or a create of the same name right after sees the topic gone.
absl::Status DeleteTopic(rd_kafka_t* handle, const std::string& topic,
                         absl::Duration timeout) {
  if (absl::Status valid = ValidateTopicName(topic); !valid.ok()) return valid;
  const absl::Time deadline = absl::Now() + timeout;
  const std::string context = fmt::format("delete topic {}", topic);

  DeleteTopicPtr delete_topic(rd_kafka_DeleteTopic_new(topic.c_str()));
  if (delete_topic == nullptr) {
    return absl::InternalError(fmt::format("{}: cannot create the request", context));
  }
  rd_kafka_DeleteTopic_t* topics[] = {delete_topic.get()};
  absl::StatusOr<EventPtr> event = RunAdminRequest(
      handle, RD_KAFKA_ADMIN_OP_DELETETOPICS, deadline, context,
      [&](const rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
        rd_kafka_DeleteTopics(handle, topics, 1, options, queue);
      });
  if (!event.ok()) return event.status();
  const rd_kafka_DeleteTopics_result_t* result =
      rd_kafka_event_DeleteTopics_result(event->get());
  if (result == nullptr) {
    return absl::InternalError(
        fmt::format("{}: the answer is not a DeleteTopics result", context));
  }
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_DeleteTopics_result_topics(result, &count);
  if (absl::Status status = TopicResultsStatus(results, count, context); !status.ok()) {
    return status;
  }

  return AwaitMetadata(handle, topic, deadline, context, "deleted",
                       [](const rd_kafka_metadata_topic_t* found) -> std::string {
                         return found == nullptr ? "" : "metadata still lists it";
                       });
}

absl::StatusOr<std::map<std::string, int>> PartitionCounts(rd_kafka_t* handle,
                                                           absl::Duration timeout) {
  absl::StatusOr<MetadataPtr> metadata =
      FetchMetadata(handle, absl::Now() + timeout, "list topics");
  if (!metadata.ok()) return metadata.status();
  std::map<std::string, int> counts;
  for (int i = 0; i < (*metadata)->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& topic = (*metadata)->topics[i];
    const std::string_view name = topic.topic;
    if (name == "__consumer_offsets" || name == "__transaction_state") continue;
    if (topic.err == RD_KAFKA_RESP_ERR_NO_ERROR)
      counts[topic.topic] = topic.partition_cnt;
  }
  return counts;
}

}  // namespace ferry::backend::kafka
