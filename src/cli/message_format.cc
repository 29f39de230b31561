#include "cli/message_format.h"

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/time/time.h"

namespace ferry::cli {
namespace {

using Json = nlohmann::ordered_json;

// Sets object[name] to `bytes` as text, or object[name + "_base64"].
void PutBytes(Json& object, const std::string& name, const std::string& bytes) {
  if (IsValidUtf8(bytes)) {
    object[name] = bytes;
  } else {
    object[name + "_base64"] = absl::Base64Escape(bytes);
  }
}

}  // namespace

bool IsValidUtf8(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    int length;
    uint32_t code_point;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2;
      code_point = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3;
      code_point = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4;
      code_point = lead & 0x07;
    } else {
      return false;
    }
    if (i + length > bytes.size()) return false;
    for (int k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(bytes[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (next & 0x3F);
    }
    static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code_point < kSmallest[length] || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

std::string FormatJson(const client::ReceivedMessage& message) {
  Json object;
  object["topic"] = message.topic;
  object["partition"] = message.partition;
  object["offset"] = message.offset;
  PutBytes(object, "key", message.key);
  PutBytes(object, "value", message.value);
  Json headers = Json::array();
  for (const client::Header& header : message.headers) {
    Json entry;
    PutBytes(entry, "key", header.key);
    PutBytes(entry, "value", header.value);
    headers.push_back(std::move(entry));
  }
  object["headers"] = std::move(headers);
  if (message.publish_time.has_value()) {
    object["timestamp"] =
        absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromChrono(*message.publish_time),
                         absl::UTCTimeZone());
  } else {
    object["timestamp"] = nullptr;
  }
  object["attempt"] = message.delivery_attempt;
  return object.dump();
}

}  // namespace ferry::cli
