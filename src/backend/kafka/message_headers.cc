#include "backend/kafka/message_headers.h"

#include <cstdint>

namespace ferry::backend::kafka {

bool HeaderCountFollowsValue(int library_version) {
  // 0xMMmmrrxx: major, minor, revision, pre-release.
  return library_version >= 0x02000000 && library_version < 0x02100000;
}

bool MayHaveHeaders(const rd_kafka_message_t& message, int library_version) {
  if (!HeaderCountFollowsValue(library_version) || message.payload == nullptr ||
      message.len == 0) {
    return true;
  }
  const auto* value = static_cast<const unsigned char*>(message.payload);
  // A legacy value ends its record (maybe its buffer): never read past it.
  const uint32_t legacy_length = (uint32_t{value[-4]} << 24) |
                                 (uint32_t{value[-3]} << 16) |
                                 (uint32_t{value[-2]} << 8) | uint32_t{value[-1]};
  if (legacy_length == message.len) return true;
  return value[message.len] != 0;
}

}  // namespace ferry::backend::kafka
