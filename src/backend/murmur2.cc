#include "backend/murmur2.h"

namespace ferry::backend {

// Transcribed from org.apache.kafka.common.utils.Utils.murmur2. Unsigned
// arithmetic gives Java's wrap-around int multiplication and `>>>`.
int32_t Murmur2(std::string_view data) {
  constexpr uint32_t kSeed = 0x9747b28c;
  constexpr uint32_t kM = 0x5bd1e995;
  constexpr int kR = 24;
  const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
  const size_t length = data.size();
  uint32_t h = kSeed ^ static_cast<uint32_t>(length);
  const size_t whole_words = length / 4;
  for (size_t i = 0; i < whole_words; ++i) {
    const uint8_t* p = bytes + 4 * i;
    uint32_t k = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
    k *= kM;
    k ^= k >> kR;
    k *= kM;
    h *= kM;
    h ^= k;
  }
  const uint8_t* tail = bytes + (length & ~size_t{3});
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(tail[2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(tail[1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= tail[0];
      h *= kM;
  }
  h ^= h >> 13;
  h *= kM;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

int32_t Murmur2Partition(std::string_view key, int32_t partition_count) {
  // Java's toPositive masks the sign bit (not Math.abs, which overflows).
  return static_cast<int32_t>(static_cast<uint32_t>(Murmur2(key)) & 0x7fffffff) %
         partition_count;
}

}  // namespace ferry::backend
