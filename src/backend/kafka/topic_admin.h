#pragma once

#include <librdkafka/rdkafka.h>

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/cluster.h"

namespace ferry::backend::kafka {

// Topic administration over an existing librdkafka handle (any type). Each
// call blocks for at most `timeout`; errors come from the error-mapping
// table (errors.h) with the topic named in the message.

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

// NOT_FOUND for an unknown topic.
absl::Status DeleteTopic(rd_kafka_t* handle, const std::string& topic,
                         absl::Duration timeout);

}  // namespace ferry::backend::kafka
