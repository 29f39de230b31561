// libFuzzer target (scripts/fuzz): assignments come off the network.
#include <cstdint>
#include <string_view>

#include "backend/kafka/consumer_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferry::backend::kafka::DecodeAssignment(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
