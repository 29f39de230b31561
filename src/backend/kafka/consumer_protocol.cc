#include "backend/kafka/consumer_protocol.h"

#include <cstdint>

namespace ferry::backend::kafka {
namespace {

// Big-endian reads that fail (return false) instead of running past the end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  bool Int16(int16_t& out) {
    uint64_t v = 0;
    if (!Raw(2, v)) return false;
    out = static_cast<int16_t>(v);
    return true;
  }
  bool Int32(int32_t& out) {
    uint64_t v = 0;
    if (!Raw(4, v)) return false;
    out = static_cast<int32_t>(v);
    return true;
  }
  bool String(std::string& out) {
    int16_t length = 0;
    if (!Int16(length) || length < 0 || bytes_.size() < static_cast<size_t>(length)) {
      return false;
    }
    out.assign(bytes_.substr(0, length));
    bytes_.remove_prefix(length);
    return true;
  }

 private:
  bool Raw(size_t n, uint64_t& out) {
    if (bytes_.size() < n) return false;
    out = 0;
    for (size_t i = 0; i < n; ++i) out = (out << 8) | static_cast<uint8_t>(bytes_[i]);
    bytes_.remove_prefix(n);
    return true;
  }

  std::string_view bytes_;
};

}  // namespace

std::vector<TopicPartition> DecodeAssignment(std::string_view bytes) {
  std::vector<TopicPartition> out;
  Reader reader(bytes);
  int16_t version = 0;
  int32_t topics = 0;
  if (!reader.Int16(version) || !reader.Int32(topics)) return out;
  for (int32_t t = 0; t < topics; ++t) {
    std::string topic;
    int32_t partitions = 0;
    if (!reader.String(topic) || !reader.Int32(partitions)) return out;
    for (int32_t p = 0; p < partitions; ++p) {
      int32_t partition = 0;
      if (!reader.Int32(partition)) return out;
      out.push_back({topic, partition});
    }
  }
  return out;
}

}  // namespace ferry::backend::kafka
