#pragma once

#include <cstdint>
#include <string_view>

namespace ferry::backend {

// Kafka's partitioner hash: the Java client's Utils.murmur2 (seed 0x9747b28c),
// which librdkafka's murmur2 partitioner reproduces. Backends that choose
// partitions themselves use it so keys land where Java producers put them.
int32_t Murmur2(std::string_view data);

// The Java client's partition for a keyed record:
// toPositive(murmur2(key)) % partition_count. `partition_count` > 0.
int32_t Murmur2Partition(std::string_view key, int32_t partition_count);

}  // namespace ferry::backend
