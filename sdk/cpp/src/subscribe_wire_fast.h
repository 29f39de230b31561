// The fast path of the SubscribeResponse decoder (subscribe_wire.cc): a
// ReceivedMessage that lies whole in one piece read straight from its bytes,
// with no piece or message bounds beyond its own end, no reader state and no
// per-field dispatch through the general decoder's callbacks.
//
// It reads the message's known fields in any order (ferryd writes them in
// field order) and skips, as the general path does, any other field (in the
// message, a header or a publish time) that has a one-byte tag and wire type
// varint or length. It gives up on anything else: a longer tag, field number
// 0, a group, a fixed-width field, a bad wire type, a malformed varint or
// length, a string that is not UTF-8. The caller then reads the same message
// again on the general path, which accepts it or names the fault exactly as
// before; so
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
      const auto tag = static_cast<uint8_t>(*p_++);
      switch (tag) {
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
          if (!SkipUnknown(tag)) return false;
      }
    }
    return true;
  }

 private:
  bool Header(HeaderView* header) {
    while (p_ < end_) {
      const auto tag = static_cast<uint8_t>(*p_++);
      switch (tag) {
        case (1 << 3) | proto_wire::kLength:
          if (!String(&header->key)) return false;
          break;
        case (2 << 3) | proto_wire::kLength:
          if (!Bytes(&header->value)) return false;
          break;
        default:
          if (!SkipUnknown(tag)) return false;
      }
    }
    return true;
  }

  bool Time(FastTime* time) {
    uint64_t v = 0;
    while (p_ < end_) {
      const auto tag = static_cast<uint8_t>(*p_++);
      switch (tag) {
        case (1 << 3) | proto_wire::kVarint:
          if (!Varint(&v)) return false;
          time->seconds = static_cast<int64_t>(v);
          break;
        case (2 << 3) | proto_wire::kVarint:
          if (!Varint(&v)) return false;
          time->nanos = static_cast<int32_t>(v);
          break;
        default:
          if (!SkipUnknown(tag)) return false;
      }
    }
    return true;
  }

  // A field the reader does not know, after its one-byte tag: a varint or a
  // length-delimited field skipped as the general path's SkipField skips it.
  // False for what only the general path reads or rejects: field number 0 (an
  // error there), a group, a fixed-width field, a bad wire type, a tag of more
  // than one byte (0x80 and up).
  bool SkipUnknown(uint8_t tag) {
    if (tag < 8 || tag >= 0x80) return false;
    uint64_t ignored = 0;
    std::string_view skipped;
    switch (tag & 7) {
      case proto_wire::kVarint:
        return Varint(&ignored);
      case proto_wire::kLength:
        return Bytes(&skipped);
      default:
        return false;
    }
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
