#include "publish/publish_wire.h"

#include <cstring>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"

namespace ferry::publish {
namespace {

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLength = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

// The generated parser's recursion limit, which bounds nested groups here.
constexpr int kMaxGroupDepth = 100;

// Structurally valid UTF-8 (no overlong forms, surrogates or code points
// past U+10FFFF), the check the generated parser makes for proto3 strings.
bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int length = 0;
    uint32_t lowest = 0;
    uint32_t code = 0;
    if ((c & 0xE0) == 0xC0) {
      length = 2, lowest = 0x80, code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3, lowest = 0x800, code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4, lowest = 0x10000, code = c & 0x07;
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

// Reads protobuf wire form from pieces that are one byte string back to back.
class WireReader {
 public:
  explicit WireReader(std::span<const std::string_view> pieces) : pieces_(pieces) {
    for (std::string_view piece : pieces) size_ += piece.size();
    SkipEmptyPieces();
  }

  size_t position() const { return position_; }
  size_t size() const { return size_; }

  bool ReadVarint(uint64_t* value) {
    if (piece_ < pieces_.size() && pieces_[piece_].size() - offset_ >= 10) {
      // Fast path: the longest varint fits in this piece.
      const char* start = pieces_[piece_].data() + offset_;
      const char* p = start;
      uint64_t result = 0;
      for (int shift = 0; shift < 70; shift += 7) {
        const auto byte = static_cast<uint8_t>(*p++);
        result |= static_cast<uint64_t>(byte & 0x7F) << shift;
        if ((byte & 0x80) == 0) {
          Advance(static_cast<size_t>(p - start));
          *value = result;
          return true;
        }
      }
      return false;  // longer than 10 bytes
    }
    uint64_t result = 0;
    for (int i = 0; i < 10; ++i) {
      if (position_ == size_) return false;
      const auto byte = static_cast<uint8_t>(pieces_[piece_][offset_]);
      Advance(1);
      result |= static_cast<uint64_t>(byte & 0x7F) << (7 * i);
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;  // longer than 10 bytes
  }

  // The next `n` bytes: a view into their piece when they lie in one, else
  // a copy kept in *spilled.
  bool ReadBytes(size_t n, std::deque<std::string>* spilled, std::string_view* out) {
    if (n > size_ - position_) return false;
    if (n == 0) {
      *out = {};
      return true;
    }
    const std::string_view piece = pieces_[piece_];
    if (piece.size() - offset_ >= n) {
      *out = piece.substr(offset_, n);
      Advance(n);
      return true;
    }
    std::string& copy = spilled->emplace_back();
    copy.reserve(n);
    while (copy.size() < n) {
      const std::string_view rest = pieces_[piece_].substr(offset_);
      const size_t take = std::min(rest.size(), n - copy.size());
      copy.append(rest.data(), take);
      Advance(take);
    }
    *out = copy;
    return true;
  }

  bool Skip(size_t n) {
    if (n > size_ - position_) return false;
    while (n > 0) {
      const size_t take = std::min(pieces_[piece_].size() - offset_, n);
      Advance(take);
      n -= take;
    }
    return true;
  }

 private:
  // `n` must not pass the current piece's end.
  void Advance(size_t n) {
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
  size_t size_ = 0;
  size_t piece_ = 0;
  size_t offset_ = 0;
  size_t position_ = 0;
};

// Decodes a PublishRequest; each nested message's fields are read up to its
// `end` (an absolute position), so no field may overrun its parent.
class RequestDecoder {
 public:
  RequestDecoder(std::span<const std::string_view> pieces, PublishRequestView* out)
      : reader_(pieces), out_(out) {}

  absl::Status Request() {
    const size_t end = reader_.size();
    while (reader_.position() < end) {
      uint32_t number = 0;
      WireType type{};
      if (!ReadTag(end, &number, &type)) return Malformed("PublishRequest", "tag");
      if (number == 1 && type == kVarint) {
        if (!ReadVarint(end, &out_->request_id)) return Malformed("request_id", "varint");
      } else if (number == 2 && type == kLength) {
        std::string_view topic;
        if (!ReadString(end, &topic)) return Malformed("topic", "string");
        out_->topic.assign(topic);
      } else if (number == 3 && type == kLength) {
        if (absl::Status s = Message(end); !s.ok()) return s;
      } else if (number == 4 && type == kVarint) {
        uint64_t flag = 0;
        if (!ReadVarint(end, &flag)) return Malformed("compact_results", "varint");
        out_->compact_results = flag != 0;
      } else if (!SkipField(end, number, type, 0)) {
        return Malformed("PublishRequest", absl::StrCat("field ", number));
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Message(size_t outer_end) {
    const auto field = [index = out_->messages.size()] {
      return absl::StrCat("messages[", index, "]");
    };
    size_t end = 0;
    if (!ReadLength(outer_end, &end)) return Malformed(field(), "length");
    MessageView m;
    m.first_header = static_cast<uint32_t>(out_->headers.size());
    int64_t seconds = 0;
    int32_t nanos = 0;
    while (reader_.position() < end) {
      uint32_t number = 0;
      WireType type{};
      if (!ReadTag(end, &number, &type)) return Malformed(field(), "tag");
      bool ok = true;
      if (type == kLength && number == 1) {
        ok = ReadBytes(end, &m.key);
      } else if (type == kLength && number == 2) {
        ok = ReadBytes(end, &m.value);
      } else if (type == kLength && number == 3) {
        if (!Header(end)) return Malformed(field() + ".headers", "header");
      } else if (type == kLength && number == 4) {
        ok = ReadBytes(end, &m.ordering_key);
      } else if (type == kLength && number == 5) {
        ok = ReadString(end, &m.id);
      } else if (type == kLength && number == 6) {
        // Repeated occurrences merge, as the generated parser's do.
        m.has_timestamp = true;
        if (!Timestamp(end, &seconds, &nanos)) return Malformed(field(), "timestamp");
      } else {
        ok = SkipField(end, number, type, 0);
      }
      if (!ok) return Malformed(field(), absl::StrCat("field ", number));
    }
    m.header_count = static_cast<uint32_t>(out_->headers.size()) - m.first_header;
    if (m.has_timestamp) {
      int64_t millis = 0;
      m.timestamp_in_range = !__builtin_mul_overflow(seconds, int64_t{1000}, &millis) &&
                             !__builtin_add_overflow(millis, nanos / 1'000'000, &millis);
      m.timestamp_ms = m.timestamp_in_range ? millis : 0;
    }
    m.bytes = static_cast<int64_t>(m.key.size() + m.value.size() + m.ordering_key.size() +
                                   m.id.size());
    for (uint32_t h = m.first_header; h < out_->headers.size(); ++h) {
      m.bytes += static_cast<int64_t>(out_->headers[h].key.size() +
                                      out_->headers[h].value.size());
    }
    out_->messages.push_back(m);
    return absl::OkStatus();
  }

  bool Header(size_t outer_end) {
    size_t end = 0;
    if (!ReadLength(outer_end, &end)) return false;
    HeaderView h;
    while (reader_.position() < end) {
      uint32_t number = 0;
      WireType type{};
      if (!ReadTag(end, &number, &type)) return false;
      bool ok = true;
      if (type == kLength && number == 1) {
        ok = ReadString(end, &h.key);
      } else if (type == kLength && number == 2) {
        ok = ReadBytes(end, &h.value);
      } else {
        ok = SkipField(end, number, type, 0);
      }
      if (!ok) return false;
    }
    out_->headers.push_back(h);
    return true;
  }

  bool Timestamp(size_t outer_end, int64_t* seconds, int32_t* nanos) {
    size_t end = 0;
    if (!ReadLength(outer_end, &end)) return false;
    while (reader_.position() < end) {
      uint32_t number = 0;
      WireType type{};
      if (!ReadTag(end, &number, &type)) return false;
      uint64_t v = 0;
      if (number == 1 && type == kVarint) {
        if (!ReadVarint(end, &v)) return false;
        *seconds = static_cast<int64_t>(v);
      } else if (number == 2 && type == kVarint) {
        if (!ReadVarint(end, &v)) return false;
        *nanos = static_cast<int32_t>(static_cast<uint32_t>(v));
      } else if (!SkipField(end, number, type, 0)) {
        return false;
      }
    }
    return true;
  }

  bool ReadVarint(size_t end, uint64_t* value) {
    return reader_.ReadVarint(value) && reader_.position() <= end;
  }

  // Tags and lengths are at most five bytes, as the generated parser reads
  // them; a tag's bits past 32 are dropped, as there.
  bool ReadShortVarint(size_t end, uint64_t* value) {
    const size_t start = reader_.position();
    return ReadVarint(end, value) && reader_.position() - start <= 5;
  }

  bool ReadTag(size_t end, uint32_t* number, WireType* type) {
    uint64_t tag = 0;
    if (!ReadShortVarint(end, &tag)) return false;
    *number = static_cast<uint32_t>(tag) >> 3;
    *type = static_cast<WireType>(tag & 7);
    return *number != 0;
  }

  // A length prefix whose bytes lie within `end`; *field_end is where they stop.
  bool ReadLength(size_t end, size_t* field_end) {
    uint64_t length = 0;
    if (!ReadShortVarint(end, &length) || length > end - reader_.position() ||
        length > std::numeric_limits<int32_t>::max()) {
      return false;
    }
    *field_end = reader_.position() + length;
    return true;
  }

  bool ReadBytes(size_t end, std::string_view* out) {
    size_t field_end = 0;
    return ReadLength(end, &field_end) &&
           reader_.ReadBytes(field_end - reader_.position(), &out_->spilled, out);
  }

  bool ReadString(size_t end, std::string_view* out) {
    return ReadBytes(end, out) && IsValidUtf8(*out);
  }

  // Skips a field this decoder does not read; a group up to its end tag.
  bool SkipField(size_t end, uint32_t number, WireType type, int depth) {
    uint64_t ignored = 0;
    size_t field_end = 0;
    switch (type) {
      case kVarint:
        return ReadVarint(end, &ignored);
      case kFixed64:
        return end - reader_.position() >= 8 && reader_.Skip(8);
      case kFixed32:
        return end - reader_.position() >= 4 && reader_.Skip(4);
      case kLength:
        return ReadLength(end, &field_end) &&
               reader_.Skip(field_end - reader_.position());
      case kStartGroup:
        if (depth >= kMaxGroupDepth) return false;
        while (reader_.position() < end) {
          uint32_t inner = 0;
          WireType inner_type{};
          if (!ReadTag(end, &inner, &inner_type)) return false;
          if (inner_type == kEndGroup) return inner == number;
          if (!SkipField(end, inner, inner_type, depth + 1)) return false;
        }
        return false;  // no end tag
      default:
        return false;  // an end tag without a group, or wire types 6 and 7
    }
  }

  absl::Status Malformed(const std::string& field, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat("malformed PublishRequest: ", field,
                                                   ": bad ", what, " before byte ",
                                                   reader_.position()));
  }

  WireReader reader_;
  PublishRequestView* out_;
};

// Writing. Sizes first, so nested lengths are known and one buffer holds it all.

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// int32 and int64 fields: negative values take ten bytes (sign-extended).
size_t Int64Size(int64_t v) { return VarintSize(static_cast<uint64_t>(v)); }

size_t LengthFieldSize(size_t length) { return 1 + VarintSize(length) + length; }

char* WriteVarint(uint64_t v, char* out) {
  while (v >= 0x80) {
    *out++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *out++ = static_cast<char>(v);
  return out;
}

// Field numbers here are below 16: the tag is one byte.
char* WriteTag(uint32_t number, WireType type, char* out) {
  *out++ = static_cast<char>((number << 3) | type);
  return out;
}

char* WriteInt64Field(uint32_t number, int64_t v, char* out) {
  if (v == 0) return out;
  return WriteVarint(static_cast<uint64_t>(v), WriteTag(number, kVarint, out));
}

size_t Int64FieldSize(int64_t v) { return v == 0 ? 0 : 1 + Int64Size(v); }

char* WriteLengthHeader(uint32_t number, size_t length, char* out) {
  return WriteVarint(length, WriteTag(number, kLength, out));
}

char* WriteBytesField(uint32_t number, std::string_view bytes, char* out) {
  if (bytes.empty()) return out;
  out = WriteLengthHeader(number, bytes.size(), out);
  std::memcpy(out, bytes.data(), bytes.size());
  return out + bytes.size();
}

size_t BytesFieldSize(std::string_view bytes) {
  return bytes.empty() ? 0 : LengthFieldSize(bytes.size());
}

// google.protobuf.Timestamp of `millis`, as api::FromUnixMillis sets it.
struct Timestamp {
  int64_t seconds;
  int32_t nanos;
};
Timestamp FromMillis(int64_t millis) {
  int64_t seconds = millis / 1000;
  int64_t rest = millis % 1000;
  if (rest < 0) {
    rest += 1000;
    --seconds;
  }
  return {seconds, static_cast<int32_t>(rest * 1'000'000)};
}
size_t TimestampSize(Timestamp t) {
  return Int64FieldSize(t.seconds) + Int64FieldSize(t.nanos);
}

// absl::string_view is not std::string_view in Debian's Abseil.
std::string_view MessageOf(const absl::Status& status) {
  return {status.message().data(), status.message().size()};
}

// ferry.v1.Status of a result, as api::ToProtoStatus fills it.
size_t StatusSize(const MessageResult& r) {
  return Int64FieldSize(static_cast<int32_t>(r.status.code())) +
         BytesFieldSize(MessageOf(r.status)) + (!r.status.ok() && r.retryable ? 2 : 0);
}

size_t ResultSize(const MessageResult& r, std::string_view cluster, std::string_view id,
                  size_t status_size) {
  size_t n = LengthFieldSize(status_size) + BytesFieldSize(id);
  if (r.status.ok()) {
    n += BytesFieldSize(cluster) + Int64FieldSize(r.partition) +
         Int64FieldSize(r.offset) +
         LengthFieldSize(TimestampSize(FromMillis(r.timestamp_ms)));
  }
  return n;
}

char* WriteResult(const MessageResult& r, std::string_view cluster, std::string_view id,
                  size_t status_size, char* out) {
  out = WriteLengthHeader(1, status_size, out);
  out = WriteInt64Field(1, static_cast<int32_t>(r.status.code()), out);
  out = WriteBytesField(2, MessageOf(r.status), out);
  if (!r.status.ok() && r.retryable) {
    out = WriteTag(3, kVarint, out);
    *out++ = 1;
  }
  if (r.status.ok()) {
    out = WriteBytesField(2, cluster, out);
    out = WriteInt64Field(3, r.partition, out);
    out = WriteInt64Field(4, r.offset, out);
    const Timestamp t = FromMillis(r.timestamp_ms);
    out = WriteLengthHeader(5, TimestampSize(t), out);
    out = WriteInt64Field(1, t.seconds, out);
    out = WriteInt64Field(2, t.nanos, out);
  }
  return WriteBytesField(6, id, out);
}

bool Compact(const PublishRequestView& request, const BatchResults& answer) {
  if (!request.compact_results || answer.results.empty()) return false;
  for (const MessageResult& r : answer.results) {
    if (!r.status.ok()) return false;
  }
  return true;
}

void PlanCompact(const BatchResults& answer, ResponsePlan* plan) {
  for (const MessageResult& r : answer.results) {
    plan->packed_partitions += Int64Size(r.partition);
    plan->packed_offsets += Int64Size(r.offset);
    plan->packed_timestamps += Int64Size(r.timestamp_ms);
  }
  plan->compact_size =
      BytesFieldSize(answer.cluster) + LengthFieldSize(plan->packed_partitions) +
      LengthFieldSize(plan->packed_offsets) + LengthFieldSize(plan->packed_timestamps);
  plan->size += LengthFieldSize(plan->compact_size);
}

void PlanResults(const PublishRequestView& request, const BatchResults& answer,
                 ResponsePlan* plan) {
  plan->results.resize(answer.results.size());
  for (size_t i = 0; i < answer.results.size(); ++i) {
    const MessageResult& r = answer.results[i];
    ResponsePlan::ResultSizes& sizes = plan->results[i];
    sizes.status = StatusSize(r);
    sizes.result = ResultSize(r, answer.cluster, request.messages[i].id, sizes.status);
    plan->size += LengthFieldSize(sizes.result);
  }
}

}  // namespace

absl::Status DecodePublishRequest(std::span<const std::string_view> pieces,
                                  PublishRequestView* out) {
  return RequestDecoder(pieces, out).Request();
}

ResponsePlan PlanPublishResponse(const PublishRequestView& request,
                                 const BatchResults& answer) {
  ResponsePlan plan;
  plan.compact = Compact(request, answer);
  plan.size = request.request_id == 0 ? 0 : 1 + VarintSize(request.request_id);
  if (plan.compact) {
    PlanCompact(answer, &plan);
  } else {
    PlanResults(request, answer, &plan);
  }
  return plan;
}

char* WritePublishResponse(const PublishRequestView& request, const BatchResults& answer,
                           const ResponsePlan& plan, char* out) {
  if (request.request_id != 0) {
    out = WriteVarint(request.request_id, WriteTag(1, kVarint, out));
  }
  if (plan.compact) {
    out = WriteLengthHeader(4, plan.compact_size, out);
    out = WriteBytesField(1, answer.cluster, out);
    out = WriteLengthHeader(2, plan.packed_partitions, out);
    for (const MessageResult& r : answer.results) {
      out = WriteVarint(static_cast<uint64_t>(int64_t{r.partition}), out);
    }
    out = WriteLengthHeader(3, plan.packed_offsets, out);
    for (const MessageResult& r : answer.results) {
      out = WriteVarint(static_cast<uint64_t>(r.offset), out);
    }
    out = WriteLengthHeader(4, plan.packed_timestamps, out);
    for (const MessageResult& r : answer.results) {
      out = WriteVarint(static_cast<uint64_t>(r.timestamp_ms), out);
    }
    return out;
  }
  for (size_t i = 0; i < answer.results.size(); ++i) {
    const ResponsePlan::ResultSizes& sizes = plan.results[i];
    out = WriteLengthHeader(3, sizes.result, out);
    out = WriteResult(answer.results[i], answer.cluster, request.messages[i].id,
                      sizes.status, out);
  }
  return out;
}

}  // namespace ferry::publish
