#pragma once

// Kafka's consumer protocol "Assignment" structure, as returned by the group
// coordinator for each member (DescribeGroups): which partitions a member owns.

#include <string_view>
#include <vector>

#include "backend/cluster.h"

namespace ferry::backend::kafka {

// Decodes version, [topic, [partition]], user data. Malformed or truncated
// input decodes to the partitions read so far (the coordinator is trusted;
// this is for display).
std::vector<TopicPartition> DecodeAssignment(std::string_view bytes);

}  // namespace ferry::backend::kafka
