// The fast path of the SubscribeResponse decoder (subscribe_wire.cc): a
// ReceivedMessage that lies whole in one piece read straight from its bytes,
// with no piece or message bounds beyond its own end, no reader state and no
// per-field dispatch through the general decoder's callbacks.
//
// It reads the message's known fields in any order (ferryd writes them in
// field order), and gives up on anything else: a field it does not know, a
// known field with another wire type, a tag longer than one byte, a malformed
// varint or length, a string that is not UTF-8, an unknown field inside a
// header or publish time. The caller then reads the same message again on the
// general path, which accepts it or names the fault exactly as before; so
// what the fast path accepts, it must read exactly as the general path does
// (the differential test and the fuzz target check that).
#ifndef FERRY_CLIENT_SRC_SUBSCRIBE_WIRE_FAST_H_
#define FERRY_CLIENT_SRC_SUBSCRIBE_WIRE_FAST_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/proto_wire_reader.h"
#include "ferry/client/subscriber.h"

namespace ferry::client::internal {

// What a message's publish_time holds (repeated occurrences merge).
struct FastTime {
  bool seen = false;
  int64_t seconds = 0;
  int32_t nanos = 0;
};

// Reads the bytes of one message, in one piece.
class FastMessageReader {
 public:
  explicit FastMessageReader(std::string_view bytes)
      : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  // Reads the message into *m (which has the wire's defaults), its headers
  // appended to *headers and its receipt replacing what *receipts holds from
  // `receipt_begin` on. False: not read (what was written is to be undone).
  bool Message(ReceivedView* m, std::vector<HeaderView>* headers, std::string* receipts,
               size_t receipt_begin, FastTime* time) {
    uint64_t v = 0;
    std::string_view bytes;
    while (p_ < end_) {
      switch (static_cast<uint8_t>(*p_++)) {
        case (1 << 3) | proto_wire::kLength:
          if (!Bytes(&bytes)) return false;
          receipts->resize(receipt_begin);  // the last receipt wins
          receipts->append(bytes);
          break;
        case (2 << 3) | proto_wire::kLength:
          if (!String(&m->topic)) return false;
          break;
        case (3 << 3) | proto_wire::kVarint:
          if (!Varint(&v)) return false;
          m->partition = static_cast<int32_t>(v);
          break;
        case (4 << 3) | proto_wire::kVarint:
          if (!Varint(&v)) return false;
          m->offset = static_cast<int64_t>(v);
          break;
        case (5 << 3) | proto_wire::kLength:
          if (!Bytes(&m->key)) return false;
          break;
        case (6 << 3) | proto_wire::kLength:
          if (!Bytes(&m->value)) return false;
          break;
        case (7 << 3) | proto_wire::kLength:
          if (!Bytes(&bytes) ||
              !FastMessageReader(bytes).Header(&headers->emplace_back())) {
            return false;
          }
          break;
        case (8 << 3) | proto_wire::kLength:
          time->seen = true;
          if (!Bytes(&bytes) || !FastMessageReader(bytes).Time(time)) return false;
          break;
        case (9 << 3) | proto_wire::kVarint:
          if (!Varint(&v)) return false;
          m->delivery_attempt = static_cast<int32_t>(v);
          break;
        case (10 << 3) | proto_wire::kLength:
          if (!String(&m->cluster)) return false;
          break;
        case (11 << 3) | proto_wire::kLength:
          if (!String(&m->id)) return false;
          break;
        default:
          return false;
      }
    }
    return true;
  }

 private:
  bool Header(HeaderView* header) {
    while (p_ < end_) {
      switch (static_cast<uint8_t>(*p_++)) {
        case (1 << 3) | proto_wire::kLength:
          if (!String(&header->key)) return false;
          break;
        case (2 << 3) | proto_wire::kLength:
          if (!Bytes(&header->value)) return false;
          break;
        default:
          return false;
      }
    }
    return true;
  }

  bool Time(FastTime* time) {
    uint64_t v = 0;
    while (p_ < end_) {
      switch (static_cast<uint8_t>(*p_++)) {
        case (1 << 3) | proto_wire::kVarint:
          if (!Varint(&v)) return false;
          time->seconds = static_cast<int64_t>(v);
          break;
        case (2 << 3) | proto_wire::kVarint:
          if (!Varint(&v)) return false;
          time->nanos = static_cast<int32_t>(v);
          break;
        default:
          return false;
      }
    }
    return true;
  }

  // At most `max_bytes` bytes, the last below 0x80, all before the end; bits
  // past 64 dropped, as the general reader drops them.
  bool Varint(uint64_t* value, int max_bytes = 10) {
    if (p_ < end_ && static_cast<uint8_t>(*p_) < 0x80) {  // most are one byte
      *value = static_cast<uint8_t>(*p_++);
      return true;
    }
    uint64_t result = 0;
    for (int shift = 0; shift < 7 * max_bytes; shift += 7) {
      if (p_ == end_) return false;
      const auto byte = static_cast<uint8_t>(*p_++);
      result |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (byte < 0x80) {
        *value = result;
        return true;
      }
    }
    return false;
  }

  // A length prefix of at most five bytes and the bytes it covers.
  bool Bytes(std::string_view* out) {
    uint64_t length = 0;
    if (!Varint(&length, 5) || length > static_cast<size_t>(end_ - p_)) return false;
    *out = std::string_view(p_, static_cast<size_t>(length));
    p_ += length;
    return true;
  }

  bool String(std::string_view* out) {
    return Bytes(out) && proto_wire::IsValidUtf8(*out);
  }

  const char* p_;
  const char* const end_;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_SUBSCRIBE_WIRE_FAST_H_
