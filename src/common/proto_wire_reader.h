// Reads protobuf wire form by hand from the pieces a message arrived in (one
// contiguous buffer, or gRPC's slices back to back): tags, varints, fixed
// fields, length-delimited fields and skipping of unknown fields (groups
// included), with exactly the limits the generated parser applies. Shared by
// ferryd's PublishRequest decoder and the C++ SDK's SubscribeResponse decoder;
// header-only and without gRPC or the protobuf runtime, so the libFuzzer
// targets build it alone.
//
// The reader reads one message at a time: the outermost at first, then each
// submessage between Enter and Leave. Every read stays inside the message
// being read. Bounds are kept as one pointer, the nearer of the current
// piece's end and the message's end, so a message that lies whole in one
// piece (the common case) is read with one comparison per read; crossing to
// the next piece is the slow path.
//
// On malformed input a read returns false and records the reason and byte;
// each enclosing decoder names its field on the way out (In, returning false
// again), and Error() then says, e.g., "malformed SubscribeResponse.messages.
// messages[1].value: length 900 past the end (2 bytes left) at byte 123".
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <span>
#include <string>
#include <string_view>

#include "absl/base/attributes.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ferry::proto_wire {

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLength = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

// The generated parser's recursion limit: nested messages and groups together
// may go this deep.
inline constexpr int kMaxDepth = 100;

// Structurally valid UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF), checked a sequence at a time from `p`: the check the generated
// parser makes for proto3 strings.
inline bool IsValidUtf8From(const unsigned char* p, const unsigned char* const end) {
  while (p < end) {
    if (*p < 0x80) {
      ++p;
      continue;
    }
    int length = 0;
    uint32_t lowest = 0, code = 0;
    if ((*p & 0xE0) == 0xC0) {
      length = 2, lowest = 0x80, code = *p & 0x1F;
    } else if ((*p & 0xF0) == 0xE0) {
      length = 3, lowest = 0x800, code = *p & 0x0F;
    } else if ((*p & 0xF8) == 0xF0) {
      length = 4, lowest = 0x10000, code = *p & 0x07;
    } else {
      return false;
    }
    if (end - p < length) return false;
    for (int i = 1; i < length; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      code = (code << 6) | (p[i] & 0x3F);
    }
    if (code < lowest || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    p += length;
  }
  return true;
}

// IsValidUtf8From for a whole string. Most strings checked (topics, ids,
// header keys) are ASCII: that is seen a word at a time (the last word
// overlapping the one before), and only a string with a byte >= 0x80 is
// checked a sequence at a time, from the first word that has one.
inline bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* const end = p + s.size();
  if (s.size() >= 8) {
    constexpr uint64_t kHigh = 0x8080808080808080;
    uint64_t word = 0;
    for (; end - p >= 8; p += 8) {
      std::memcpy(&word, p, 8);
      if ((word & kHigh) != 0) return IsValidUtf8From(p, end);
    }
    std::memcpy(&word, end - 8, 8);
    return (word & kHigh) == 0 || IsValidUtf8From(p, end);
  }
  if (s.size() >= 4) {
    constexpr uint32_t kHigh = 0x80808080;
    uint32_t first = 0, last = 0;
    std::memcpy(&first, p, 4);
    std::memcpy(&last, end - 4, 4);
    return ((first | last) & kHigh) == 0 || IsValidUtf8From(p, end);
  }
  return IsValidUtf8From(p, end);
}

class Reader {
 public:
  // `pieces` (which must outlive the reader) hold the bytes of one `message`
  // (its name, for errors) back to back; empty pieces are allowed.
  Reader(std::span<const std::string_view> pieces, std::string_view message)
      : pieces_(pieces), message_(message) {
    for (std::string_view piece : pieces) end_ += piece.size();
    if (!pieces_.empty()) Load(0, 0);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Bytes read since the start.
  size_t position() const { return piece_start_ + static_cast<size_t>(p_ - piece_data_); }

  // The bytes left in the message being read.
  size_t left() const { return end_ - position(); }

  // Whether the message being read has bytes left.
  bool More() {
    if (p_ < stop_) return true;
    if (position() >= end_) return false;
    NextPiece();
    return true;
  }

  // A field's tag; fails on field number 0. Tags are at most five bytes, as
  // the generated parser reads them, and bits past 32 are dropped, as there.
  bool Tag(uint32_t* number, WireType* type) {
    tag_at_ = position();
    uint64_t tag = 0;
    if (p_ < stop_ && static_cast<uint8_t>(*p_) < 0x80) {
      tag = static_cast<uint8_t>(*p_++);
    } else if (!SlowVarint(5, "tag", &tag)) {
      return false;
    }
    *number = static_cast<uint32_t>(tag) >> 3;
    *type = static_cast<WireType>(tag & 7);
    return *number != 0 || Fail("field number 0", tag_at_);
  }

  // At most ten bytes, the last below 0x80.
  bool Varint(uint64_t* value) {
    return ShortVarint(value) || SlowVarint(10, "varint", value);
  }

  // Reads a length prefix and makes the bytes it covers the message being
  // read, one level deeper; *outer keeps the enclosing message's end for Leave.
  bool Enter(size_t* outer) {
    size_t field_end = 0;
    if (!Length(&field_end)) return false;
    *outer = end_;
    end_ = field_end;
    ++depth_;
    Restop();
    return true;
  }
  // Back to the enclosing message, once More() is false.
  void Leave(size_t outer) {
    end_ = outer;
    --depth_;
    Restop();
  }

  // A length-delimited field's bytes: a view into their piece when they lie
  // in one, else a copy kept in *spilled (a deque never moves it).
  bool View(std::deque<std::string>* spilled, std::string_view* out) {
    size_t n = 0;
    if (!BytesLength(&n)) return false;
    if (InOnePiece(n)) {
      *out = std::string_view(p_, n);
      p_ += n;
      return true;
    }
    std::string& copy = spilled->emplace_back();
    copy.reserve(n);
    Copy(n, &copy);
    *out = copy;
    return true;
  }

  // The bytes of the length-delimited field that comes next, when its length
  // prefix and all its bytes lie in the current piece, inside the message
  // being read; nothing is consumed. For a decoder's fast path, which then
  // reads them itself and moves on with SkipPast, or else reads the field
  // again the usual way.
  bool PeekField(std::string_view* field) const {
    const char* p = p_;
    uint64_t length = 0;
    for (int shift = 0;; shift += 7) {
      if (p == stop_ || shift == 35) return false;
      const auto byte = static_cast<uint8_t>(*p++);
      length |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (byte < 0x80) break;
    }
    if (length > static_cast<size_t>(stop_ - p) ||
        length > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
      return false;
    }
    *field = std::string_view(p, static_cast<size_t>(length));
    return true;
  }
  // Moves past `field`, which PeekField returned.
  void SkipPast(std::string_view field) {
    assert(field.data() >= p_ && field.data() + field.size() <= stop_);
    p_ = field.data() + field.size();
  }

  // A length-delimited field's bytes appended to *out.
  bool Append(std::string* out) {
    size_t n = 0;
    if (!BytesLength(&n)) return false;
    if (InOnePiece(n)) {
      out->append(p_, n);
      p_ += n;
      return true;
    }
    out->reserve(out->size() + n);
    Copy(n, out);
    return true;
  }

  // `s`, a string field just read, is UTF-8 (as proto3 requires).
  bool Utf8(std::string_view s) {
    return IsValidUtf8(s) || Fail("not UTF-8", position() - s.size());
  }

  // Skips a field the decoder does not read: a group up to its end tag, its
  // nesting counted from the message being read (Enter/Leave keep that depth).
  bool SkipField(uint32_t number, WireType type) { return SkipAt(number, type, depth_); }

  // Fails on a check of the decoder's own, at the current byte.
  ABSL_ATTRIBUTE_COLD ABSL_ATTRIBUTE_NOINLINE bool Reject(std::string_view reason) {
    return Fail(reason, position());
  }

  // Names the field a failed read was in: the decoder of each enclosing
  // message calls one of these on the way out, innermost first. They return
  // false, for `return reader.In("key");`.
  ABSL_ATTRIBUTE_COLD ABSL_ATTRIBUTE_NOINLINE bool In(std::string_view field) {
    where_.insert(0, absl::StrCat(".", Absl(field)));
    return false;
  }
  ABSL_ATTRIBUTE_COLD ABSL_ATTRIBUTE_NOINLINE bool In(std::string_view field,
                                                      size_t index) {
    where_.insert(0, absl::StrCat(".", Absl(field), "[", index, "]"));
    return false;
  }
  // A field the decoder does not know.
  ABSL_ATTRIBUTE_COLD ABSL_ATTRIBUTE_NOINLINE bool InField(uint32_t number) {
    where_.insert(0, absl::StrCat(".(field ", number, ")"));
    return false;
  }

  // INVALID_ARGUMENT naming the message, the field, the reason and the byte
  // of the first failed read.
  absl::Status Error() const {
    return absl::InvalidArgumentError(absl::StrCat("malformed ", Absl(message_), where_,
                                                   ": ", reason_, " at byte ", at_));
  }

 private:
  // absl::string_view is not std::string_view in Debian's Abseil.
  static absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

  // Makes piece `index`, which starts at absolute position `start`, current.
  void Load(size_t index, size_t start) {
    piece_ = index;
    piece_start_ = start;
    piece_data_ = p_ = pieces_[index].data();
    limit_ = p_ + pieces_[index].size();
    Restop();
  }
  // To the next non-empty piece; only when the message has bytes left.
  void NextPiece() {
    const size_t start = piece_start_ + pieces_[piece_].size();
    size_t index = piece_ + 1;
    while (pieces_[index].empty()) ++index;
    Load(index, start);
  }
  void Restop() {
    const size_t in_piece = end_ - piece_start_;
    stop_ = in_piece < static_cast<size_t>(limit_ - piece_data_) ? piece_data_ + in_piece
                                                                 : limit_;
  }

  // The next byte of the message being read, from whichever piece holds it.
  bool Byte(uint8_t* byte) {
    if (p_ == stop_) {
      if (position() >= end_) return false;
      NextPiece();
    }
    *byte = static_cast<uint8_t>(*p_++);
    return true;
  }

  // A varint of one or two bytes that lies in the current piece (the common
  // lengths and values), read inline; false, having read nothing, otherwise.
  bool ShortVarint(uint64_t* value) {
    if (p_ == stop_) return false;
    const auto first = static_cast<uint8_t>(p_[0]);
    if (first < 0x80) {
      *value = first;
      ++p_;
      return true;
    }
    if (stop_ - p_ < 2 || static_cast<uint8_t>(p_[1]) >= 0x80) return false;
    *value = (first & 0x7Fu) | (static_cast<uint64_t>(static_cast<uint8_t>(p_[1])) << 7);
    p_ += 2;
    return true;
  }

  // A varint of at most `max_bytes`: within the current piece when the
  // longest one fits there, else byte by byte across pieces. Out of line, so
  // the one-byte reads that call it stay small enough to inline.
  ABSL_ATTRIBUTE_NOINLINE bool SlowVarint(int max_bytes, const char* what,
                                          uint64_t* value) {
    const size_t at = position();
    uint64_t result = 0;
    if (stop_ - p_ >= max_bytes) {
      for (int shift = 0; shift < 7 * max_bytes; shift += 7) {
        const auto byte = static_cast<uint8_t>(*p_++);
        result |= static_cast<uint64_t>(byte & 0x7F) << shift;
        if (byte < 0x80) {
          *value = result;
          return true;
        }
      }
      return FailTooLong(what, max_bytes, at);
    }
    for (int shift = 0; shift < 7 * max_bytes; shift += 7) {
      uint8_t byte = 0;
      if (!Byte(&byte)) return FailPastEnd(what, at);
      result |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (byte < 0x80) {
        *value = result;
        return true;
      }
    }
    return FailTooLong(what, max_bytes, at);
  }

  // A length prefix (at most five bytes, as the generated parser reads it)
  // whose bytes lie within the message being read.
  bool BytesLength(size_t* n) {
    const size_t at = position();
    uint64_t length = 0;
    if (!ShortVarint(&length) && !SlowVarint(5, "length", &length)) return false;
    const size_t left = end_ - position();
    if (length > left ||
        length > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
      return FailLength(length, left, at);
    }
    *n = static_cast<size_t>(length);
    return true;
  }
  bool Length(size_t* field_end) {
    size_t n = 0;
    if (!BytesLength(&n)) return false;
    *field_end = position() + n;
    return true;
  }

  // Whether the next `n` bytes (which the message holds) lie in one piece,
  // moving to the next piece when they start where the current one ends.
  bool InOnePiece(size_t n) {
    if (static_cast<size_t>(limit_ - p_) >= n) return true;
    if (p_ != limit_) return false;
    NextPiece();
    return static_cast<size_t>(limit_ - p_) >= n;
  }

  // The next `n` bytes (which the message holds) appended to *out.
  void Copy(size_t n, std::string* out) {
    while (n > 0) {
      if (p_ == limit_) NextPiece();
      const size_t take = std::min(static_cast<size_t>(limit_ - p_), n);
      out->append(p_, take);
      p_ += take;
      n -= take;
    }
  }
  void Skip(size_t n) {
    while (n > 0) {
      if (p_ == limit_) NextPiece();
      const size_t take = std::min(static_cast<size_t>(limit_ - p_), n);
      p_ += take;
      n -= take;
    }
  }
  bool SkipFixed(size_t n) {
    if (end_ - position() < n) {
      return Fail(absl::StrCat("fixed", 8 * n, " past the end"), position());
    }
    Skip(n);
    return true;
  }

  // `depth`: the nesting of the message or group the field is in.
  bool SkipAt(uint32_t number, WireType type, int depth) {
    uint64_t ignored = 0;
    size_t n = 0;
    switch (type) {
      case kVarint:
        return Varint(&ignored);
      case kFixed64:
        return SkipFixed(8);
      case kFixed32:
        return SkipFixed(4);
      case kLength:
        if (!BytesLength(&n)) return false;
        Skip(n);
        return true;
      case kStartGroup:
        return SkipGroup(number, depth);
      case kEndGroup:
        return Fail(absl::StrCat("end of group ", number, " outside a group"), tag_at_);
      default:
        return Fail(absl::StrCat("wire type ", static_cast<uint32_t>(type)), tag_at_);
    }
  }

  bool SkipGroup(uint32_t number, int depth) {
    const size_t at = tag_at_;
    if (depth >= kMaxDepth) {
      return Fail(absl::StrCat("groups nested deeper than ", kMaxDepth), at);
    }
    while (More()) {
      uint32_t inner = 0;
      WireType type{};
      if (!Tag(&inner, &type)) return false;
      if (type == kEndGroup) {
        return inner == number ||
               Fail(absl::StrCat("end of group ", inner, " closes group ", number),
                    tag_at_);
      }
      if (!SkipAt(inner, type, depth + 1)) return false;
    }
    return Fail(absl::StrCat("group ", number, " never closed"), at);
  }

  // Records the first failure; returns false. (A view: callers build no
  // string on the paths that succeed.)
  ABSL_ATTRIBUTE_COLD ABSL_ATTRIBUTE_NOINLINE bool Fail(std::string_view reason,
                                                        size_t at) {
    if (reason_.empty()) {
      reason_ = reason;
      at_ = at;
    }
    return false;
  }
  ABSL_ATTRIBUTE_COLD ABSL_ATTRIBUTE_NOINLINE bool FailTooLong(const char* what,
                                                               int max_bytes, size_t at) {
    return Fail(absl::StrCat(what, " longer than ", max_bytes, " bytes"), at);
  }
  ABSL_ATTRIBUTE_COLD ABSL_ATTRIBUTE_NOINLINE bool FailPastEnd(const char* what,
                                                               size_t at) {
    return Fail(absl::StrCat(what, " past the end"), at);
  }
  ABSL_ATTRIBUTE_COLD ABSL_ATTRIBUTE_NOINLINE bool FailLength(uint64_t length,
                                                              size_t left, size_t at) {
    return Fail(absl::StrCat("length ", length, " past the end (", left, " bytes left)"),
                at);
  }

  std::span<const std::string_view> pieces_;
  std::string_view message_;
  // The current piece: its index, absolute start and bytes.
  size_t piece_ = 0;
  size_t piece_start_ = 0;
  const char* piece_data_ = nullptr;
  const char* limit_ = nullptr;
  const char* p_ = nullptr;  // the next byte
  // The end of the message being read (absolute), and as a pointer: the
  // nearer of it and the piece's end.
  size_t end_ = 0;
  const char* stop_ = nullptr;
  int depth_ = 0;      // of the message being read: the outermost is 0
  size_t tag_at_ = 0;  // where the last tag started
  // The first failure.
  std::string reason_;
  size_t at_ = 0;
  std::string where_;
};

}  // namespace ferry::proto_wire
