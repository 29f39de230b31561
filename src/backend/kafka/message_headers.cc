#include "backend/kafka/message_headers.h"

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
  return static_cast<const char*>(message.payload)[message.len] != 0;
}

}  // namespace ferry::backend::kafka
