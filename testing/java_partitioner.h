#pragma once

#include <cstdint>
#include <string>

namespace ferry::testing {

// Java's murmur2 partitioner (org.apache.kafka.common.utils.Utils.murmur2 and
// toPositive), written from its published definition and independent of
// Ferry's own (src/backend/murmur2): tests check that keys land where Java
// producers put them, on every backend.
int32_t JavaPartition(const std::string& key, int32_t partitions);

}  // namespace ferry::testing
