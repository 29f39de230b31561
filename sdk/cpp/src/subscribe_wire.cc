#include "subscribe_wire.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <optional>

#include "absl/strings/str_cat.h"

namespace ferry::client::internal {
namespace {

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLength = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

// The generated parser's recursion limit: nested messages and groups
// together may go this deep.
constexpr int kMaxDepth = 100;

// Structurally valid UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF): the check the generated parser makes for proto3 strings.
bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* const end = p + s.size();
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

// A Timestamp as the clock's time, or nullopt when it does not fit.
std::optional<std::chrono::system_clock::time_point> TimePoint(int64_t seconds,
                                                               int32_t nanos) {
  using Clock = std::chrono::system_clock;
  constexpr int64_t kTicksPerSecond = Clock::period::den / Clock::period::num;
  int64_t ticks = 0;
  if (__builtin_mul_overflow(seconds, kTicksPerSecond, &ticks) ||
      __builtin_add_overflow(ticks, nanos / (1'000'000'000 / kTicksPerSecond), &ticks)) {
    return std::nullopt;
  }
  return Clock::time_point(Clock::duration(ticks));
}

// A cursor over pieces that are one byte string back to back; positions are
// absolute. Callers check bounds against their message's end.
class PieceCursor {
 public:
  explicit PieceCursor(std::span<const std::string_view> pieces) : pieces_(pieces) {
    for (std::string_view piece : pieces) size_ += piece.size();
    SkipEmptyPieces();
  }

  std::size_t position() const { return position_; }
  std::size_t size() const { return size_; }

  // At most ten bytes, the last below 0x80.
  bool Varint(uint64_t* value) {
    uint64_t result = 0;
    if (piece_ < pieces_.size() && pieces_[piece_].size() - offset_ >= 10) {
      // The longest varint lies in this piece.
      const char* const start = pieces_[piece_].data() + offset_;
      const char* p = start;
      for (int shift = 0; shift < 70; shift += 7) {
        const auto byte = static_cast<uint8_t>(*p++);
        result |= static_cast<uint64_t>(byte & 0x7F) << shift;
        if (byte < 0x80) {
          Advance(static_cast<std::size_t>(p - start));
          *value = result;
          return true;
        }
      }
      return false;
    }
    for (int shift = 0; shift < 70; shift += 7) {
      if (position_ == size_) return false;
      const auto byte = static_cast<uint8_t>(pieces_[piece_][offset_]);
      Advance(1);
      result |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (byte < 0x80) {
        *value = result;
        return true;
      }
    }
    return false;
  }

  // Appends the next `n` bytes (which the caller knows are there) to *out.
  void AppendTo(std::size_t n, std::string* out) {
    if (n == 0) return;
    const std::string_view piece = pieces_[piece_];
    if (piece.size() - offset_ >= n) {
      out->append(piece.data() + offset_, n);
      Advance(n);
      return;
    }
    out->reserve(out->size() + n);
    while (n > 0) {
      const std::size_t take = std::min(pieces_[piece_].size() - offset_, n);
      out->append(pieces_[piece_].data() + offset_, take);
      Advance(take);
      n -= take;
    }
  }

  void Skip(std::size_t n) {
    while (n > 0) {
      const std::size_t take = std::min(pieces_[piece_].size() - offset_, n);
      Advance(take);
      n -= take;
    }
  }

 private:
  // Not past the current piece's end.
  void Advance(std::size_t n) {
    offset_ += n;
    position_ += n;
    SkipEmptyPieces();
  }
  void SkipEmptyPieces() {
    while (piece_ < pieces_.size() && offset_ == pieces_[piece_].size()) {
      ++piece_;
      offset_ = 0;
    }
  }

  std::span<const std::string_view> pieces_;
  std::size_t size_ = 0;
  std::size_t piece_ = 0;
  std::size_t offset_ = 0;
  std::size_t position_ = 0;
};

// Reads one response; each message's fields are read up to its `end` (an
// absolute position), so no field overruns its parent. `depth` is the
// nesting of the message being read (the response is 0).
class ResponseDecoder {
 public:
  ResponseDecoder(std::span<const std::string_view> pieces, DecodedResponse* out)
      : cursor_(pieces), out_(out) {}

  absl::Status Response() {
    const std::size_t end = cursor_.size();
    while (cursor_.position() < end) {
      uint32_t number = 0;
      WireType type{};
      if (!Tag(end, &number, &type)) return Malformed("SubscribeResponse", "tag");
      bool ok = true;
      if (number == 1 && type == kLength) {
        Switch(DecodedResponse::Kind::kOpened);
        ok = Opened(end);
      } else if (number == 2 && type == kLength) {
        Switch(DecodedResponse::Kind::kMessages);
        if (absl::Status s = Batch(end); !s.ok()) return s;
      } else if (number == 3 && type == kLength) {
        Switch(DecodedResponse::Kind::kReceiptResults);
        ok = Results(end);
      } else {
        ok = SkipField(end, number, type, 0);
      }
      if (!ok) return Malformed("SubscribeResponse", absl::StrCat("field ", number));
    }
    return absl::OkStatus();
  }

 private:
  // The oneof: a member other than the current one replaces it; the same one
  // again merges into it.
  void Switch(DecodedResponse::Kind kind) {
    if (out_->kind == kind) return;
    out_->kind = kind;
    out_->messages.clear();
    out_->receipts.bytes.clear();
    out_->receipts.ends.clear();
    out_->runs.clear();
    out_->results.clear();
  }

  // Reads the submessage whose length comes next (within `outer_end`):
  // `field(number, type, end)` reads each field it knows; the others are
  // skipped. `depth` is the submessage's nesting.
  enum class Read { kOk, kBad, kUnknown };
  static Read Ok(bool ok) { return ok ? Read::kOk : Read::kBad; }

  template <typename Field>
  bool Submessage(std::size_t outer_end, int depth, Field field) {
    std::size_t end = 0;
    if (!Length(outer_end, &end)) return false;
    while (cursor_.position() < end) {
      uint32_t number = 0;
      WireType type{};
      if (!Tag(end, &number, &type)) return false;
      const Read read = field(number, type, end);
      if (read == Read::kBad ||
          (read == Read::kUnknown && !SkipField(end, number, type, depth))) {
        return false;
      }
    }
    return true;
  }

  bool Opened(std::size_t outer_end) {
    // node_id and stream_id: checked, not kept.
    return Submessage(outer_end, 1,
                      [this](uint32_t number, WireType type, std::size_t end) {
                        if ((number == 1 || number == 2) && type == kLength)
                          return Ok(String(end, &scratch_));
                        return Read::kUnknown;
                      });
  }

  absl::Status Batch(std::size_t outer_end) {
    std::size_t end = 0;
    if (!Length(outer_end, &end)) return Malformed("messages", "length");
    while (cursor_.position() < end) {
      uint32_t number = 0;
      WireType type{};
      if (!Tag(end, &number, &type)) return Malformed("messages", "tag");
      if (number == 1 && type == kLength) {
        if (!Message(end)) {
          return Malformed(
              absl::StrCat("messages.messages[", out_->messages.size() - 1, "]"),
              "field");
        }
      } else if (number == 2 && type == kLength) {
        if (!Run(end)) {
          return Malformed(absl::StrCat("messages.runs[", out_->runs.size() - 1, "]"),
                           "field");
        }
      } else if (!SkipField(end, number, type, 1)) {
        return Malformed("messages", absl::StrCat("field ", number));
      }
    }
    return absl::OkStatus();
  }

  bool Message(std::size_t outer_end) {
    // The wire's defaults, not the public struct's (partition and offset -1).
    ReceivedMessage& m = out_->messages.emplace_back(
        ReceivedMessage{.partition = 0, .offset = 0, .delivery_attempt = 0});
    std::string& receipts = out_->receipts.bytes;
    const std::size_t receipt_begin = receipts.size();
    bool has_time = false;
    int64_t seconds = 0;
    int32_t nanos = 0;
    const bool ok =
        Submessage(outer_end, 2, [&](uint32_t number, WireType type, std::size_t end) {
          uint64_t v = 0;
          if (type == kVarint && (number == 3 || number == 4 || number == 9)) {
            if (!Varint(end, &v)) return Read::kBad;
            if (number == 3) m.partition = static_cast<int32_t>(v);
            if (number == 4) m.offset = static_cast<int64_t>(v);
            if (number == 9) m.delivery_attempt = static_cast<int32_t>(v);
            return Read::kOk;
          }
          if (type != kLength) return Read::kUnknown;
          switch (number) {
            case 1:
              receipts.resize(receipt_begin);  // the last receipt wins
              return Ok(AppendBytes(end, &receipts));
            case 2:
              return Ok(String(end, &m.topic));
            case 5:
              return Ok(Bytes(end, &m.key));
            case 6:
              return Ok(Bytes(end, &m.value));
            case 7:
              return Ok(Header(end, &m.headers.emplace_back()));
            case 8:
              has_time = true;
              return Ok(Timestamp(end, &seconds, &nanos));
            case 10:
              return Ok(String(end, &m.cluster));
            case 11:
              return Ok(String(end, &m.id));
            default:
              return Read::kUnknown;
          }
        });
    if (!ok || receipts.size() > std::numeric_limits<uint32_t>::max()) return false;
    if (has_time) m.publish_time = TimePoint(seconds, nanos);
    out_->receipts.ends.push_back(static_cast<uint32_t>(receipts.size()));
    return true;
  }

  bool Header(std::size_t outer_end, client::Header* header) {
    return Submessage(outer_end, 3, [&](uint32_t number, WireType type, std::size_t end) {
      if (number == 1 && type == kLength) return Ok(String(end, &header->key));
      if (number == 2 && type == kLength) return Ok(Bytes(end, &header->value));
      return Read::kUnknown;
    });
  }

  // Repeated occurrences merge, as the generated parser's do.
  bool Timestamp(std::size_t outer_end, int64_t* seconds, int32_t* nanos) {
    return Submessage(outer_end, 3, [&](uint32_t number, WireType type, std::size_t end) {
      uint64_t v = 0;
      if (number == 1 && type == kVarint) {
        if (!Varint(end, &v)) return Read::kBad;
        *seconds = static_cast<int64_t>(v);
        return Read::kOk;
      }
      if (number == 2 && type == kVarint) {
        if (!Varint(end, &v)) return Read::kBad;
        *nanos = static_cast<int32_t>(v);
        return Read::kOk;
      }
      return Read::kUnknown;
    });
  }

  bool Run(std::size_t outer_end) {
    DecodedRun& run = out_->runs.emplace_back();
    return Submessage(outer_end, 2, [&](uint32_t number, WireType type, std::size_t end) {
      uint64_t v = 0;
      if (number == 1 && type == kLength) return Ok(Bytes(end, &run.token));
      if ((number == 2 || number == 3) && type == kVarint) {
        if (!Varint(end, &v)) return Read::kBad;
        (number == 2 ? run.first_message : run.count) = static_cast<uint32_t>(v);
        return Read::kOk;
      }
      return Read::kUnknown;
    });
  }

  bool Results(std::size_t outer_end) {
    return Submessage(outer_end, 1,
                      [this](uint32_t number, WireType type, std::size_t end) {
                        if (number == 1 && type == kLength) {
                          return Ok(Result(end, &out_->results.emplace_back()));
                        }
                        return Read::kUnknown;
                      });
  }

  bool Result(std::size_t outer_end, DecodedResult* result) {
    return Submessage(outer_end, 2, [&](uint32_t number, WireType type, std::size_t end) {
      if (type != kLength) return Read::kUnknown;
      if (number == 1) return Ok(Bytes(end, &result->receipt));
      if (number == 2) return Ok(Status(end, result));
      if (number == 3) return Ok(Span(end));
      return Read::kUnknown;
    });
  }

  bool Status(std::size_t outer_end, DecodedResult* result) {
    return Submessage(outer_end, 3, [&](uint32_t number, WireType type, std::size_t end) {
      uint64_t v = 0;
      if (number == 1 && type == kVarint) {
        if (!Varint(end, &v)) return Read::kBad;
        result->code = static_cast<int32_t>(v);
        return Read::kOk;
      }
      if (number == 2 && type == kLength) return Ok(String(end, &result->message));
      if (number == 3 && type == kVarint)
        return Ok(Varint(end, &v));  // retryable: unused
      return Read::kUnknown;
    });
  }

  // A failed span: checked, not kept.
  bool Span(std::size_t outer_end) {
    return Submessage(outer_end, 3,
                      [this](uint32_t number, WireType type, std::size_t end) {
                        uint64_t v = 0;
                        if (number == 1 && type == kLength)
                          return Ok(Bytes(end, &scratch_));
                        if ((number == 2 || number == 3) && type == kVarint)
                          return Ok(Varint(end, &v));
                        return Read::kUnknown;
                      });
  }

  bool Varint(std::size_t end, uint64_t* value) {
    return cursor_.Varint(value) && cursor_.position() <= end;
  }

  // Tags and lengths are at most five bytes, as the generated parser reads
  // them; a tag's bits past 32 are dropped, as there.
  bool ShortVarint(std::size_t end, uint64_t* value) {
    const std::size_t start = cursor_.position();
    return Varint(end, value) && cursor_.position() - start <= 5;
  }

  bool Tag(std::size_t end, uint32_t* number, WireType* type) {
    uint64_t tag = 0;
    if (!ShortVarint(end, &tag)) return false;
    *number = static_cast<uint32_t>(tag) >> 3;
    *type = static_cast<WireType>(tag & 7);
    return *number != 0;
  }

  // A length prefix whose bytes lie within `end`; *field_end is where they stop.
  bool Length(std::size_t end, std::size_t* field_end) {
    uint64_t length = 0;
    if (!ShortVarint(end, &length) || length > end - cursor_.position() ||
        length > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
      return false;
    }
    *field_end = cursor_.position() + length;
    return true;
  }

  bool AppendBytes(std::size_t end, std::string* out) {
    std::size_t field_end = 0;
    if (!Length(end, &field_end)) return false;
    cursor_.AppendTo(field_end - cursor_.position(), out);
    return true;
  }

  // A bytes field: the last occurrence wins.
  bool Bytes(std::size_t end, std::string* out) {
    out->clear();
    return AppendBytes(end, out);
  }

  bool String(std::size_t end, std::string* out) {
    return Bytes(end, out) && IsValidUtf8(*out);
  }

  // Skips a field this decoder does not read; a group up to its end tag.
  bool SkipField(std::size_t end, uint32_t number, WireType type, int depth) {
    uint64_t ignored = 0;
    std::size_t field_end = 0;
    switch (type) {
      case kVarint:
        return Varint(end, &ignored);
      case kFixed64:
      case kFixed32: {
        const std::size_t n = type == kFixed64 ? 8 : 4;
        if (end - cursor_.position() < n) return false;
        cursor_.Skip(n);
        return true;
      }
      case kLength:
        if (!Length(end, &field_end)) return false;
        cursor_.Skip(field_end - cursor_.position());
        return true;
      case kStartGroup:
        if (depth >= kMaxDepth) return false;
        while (cursor_.position() < end) {
          uint32_t inner = 0;
          WireType inner_type{};
          if (!Tag(end, &inner, &inner_type)) return false;
          if (inner_type == kEndGroup) return inner == number;
          if (!SkipField(end, inner, inner_type, depth + 1)) return false;
        }
        return false;  // no end tag
      default:
        return false;  // an end tag without a group, or wire types 6 and 7
    }
  }

  absl::Status Malformed(const std::string& field, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat("malformed SubscribeResponse: ", field,
                                                   ": bad ", what, " before byte ",
                                                   cursor_.position()));
  }

  PieceCursor cursor_;
  DecodedResponse* const out_;
  // Fields checked but not kept.
  std::string scratch_;
};

}  // namespace

absl::Status DecodeSubscribeResponse(std::span<const std::string_view> pieces,
                                     DecodedResponse* out) {
  return ResponseDecoder(pieces, out).Response();
}

}  // namespace ferry::client::internal
