#pragma once

#include <librdkafka/rdkafka.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/cluster.h"

namespace ferry::backend::kafka {

// Topic administration over an existing librdkafka handle (any type). Each
// call blocks for at most `timeout`; errors come from the error-mapping
// table (errors.h) with the topic named in the message.

// Milliseconds left until `deadline`, rounded up, at least 1: the int
// librdkafka's calls take, where 0 means "do not wait" (RD_POLL_NOWAIT) or
// "no timeout" to some of them.
int MillisUntil(absl::Time deadline);

// The partition count of `topic`, from one metadata request (no watermarks,
// unlike DescribeTopic). NOT_FOUND for an unknown topic.
absl::StatusOr<int> PartitionCount(rd_kafka_t* handle, const std::string& topic,
                                   absl::Time deadline);

// Partitions with leader, replicas, ISR and low/high watermarks. NOT_FOUND
// for an unknown topic.
absl::StatusOr<TopicInfo> DescribeTopic(rd_kafka_t* handle, const std::string& topic,
                                        absl::Duration timeout);

// Creates the topic (partitions/replication_factor <= 0: the broker's
// defaults) and returns once its metadata shows every partition with a
// leader, so it can be used at once. ALREADY_EXISTS if it exists.
absl::Status CreateTopic(rd_kafka_t* handle, const std::string& topic, int partitions,
                         int replication_factor,
                         const std::map<std::string, std::string>& configs,
                         absl::Duration timeout);

// Partition count of every topic but Kafka's internal ones (__consumer_offsets,
// __transaction_state).
absl::StatusOr<std::map<std::string, int>> PartitionCounts(rd_kafka_t* handle,
                                                           absl::Duration timeout);

// Asks for `topic`'s metadata (a request naming it), with a pause growing
// from 50 ms to 1 s, until `not_ready` returns an empty string, or
// `deadline` passes: then DEADLINE_EXCEEDED (via the error table) quoting
// `not_ready`'s last reason after `done_what` ("created, but 1 of 3
// partitions have no leader"). `not_ready` gets the topic's entry, nullptr
// when the answer says the topic does not exist. The request names the
// topic, so `handle` must set allow.auto.create.topics=false (KafkaCluster's
// administration handle and its producers do, kafka_publish.cc): otherwise
// asking for a missing topic (one deleted meanwhile) could create it.
absl::Status AwaitMetadata(
    rd_kafka_t* handle, const std::string& topic, absl::Time deadline,
    std::string_view context, std::string_view done_what,
    const std::function<std::string(const rd_kafka_metadata_topic_t*)>& not_ready);

// NOT_FOUND for an unknown topic.
absl::Status DeleteTopic(rd_kafka_t* handle, const std::string& topic,
                         absl::Duration timeout);

}  // namespace ferry::backend::kafka
