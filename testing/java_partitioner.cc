#include "testing/java_partitioner.h"

namespace ferry::testing {

int32_t JavaPartition(const std::string& key, int32_t partitions) {
  const uint32_t m = 0x5bd1e995;
  const int r = 24;
  const uint32_t length = static_cast<uint32_t>(key.size());
  uint32_t h = 0x9747b28c ^ length;
  const auto* data = reinterpret_cast<const uint8_t*>(key.data());
  const uint32_t blocks = length / 4;
  for (uint32_t i = 0; i < blocks; ++i) {
    uint32_t k = data[i * 4] | (data[i * 4 + 1] << 8) | (data[i * 4 + 2] << 16) |
                 (static_cast<uint32_t>(data[i * 4 + 3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const uint8_t* tail = data + blocks * 4;
  switch (length % 4) {
    case 3:
      h ^= tail[2] << 16;
      [[fallthrough]];
    case 2:
      h ^= tail[1] << 8;
      [[fallthrough]];
    case 1:
      h ^= tail[0];
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>((h & 0x7fffffff) % static_cast<uint32_t>(partitions));
}

}  // namespace ferry::testing
