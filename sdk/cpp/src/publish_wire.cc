#include "publish_wire.h"

#include <grpc/slice.h>
#include <grpcpp/support/slice.h>

#include <chrono>
#include <cstring>

#include "common/proto_wire_reader.h"

namespace ferry::client::internal {
namespace {

// Field numbers of ferry.v1 (proto/ferry/v1/publisher.proto, common.proto)
// and google.protobuf.Timestamp.
constexpr uint32_t kRequestId = 1;
constexpr uint32_t kRequestTopic = 2;
constexpr uint32_t kRequestMessages = 3;
constexpr uint32_t kRequestCompactResults = 4;
constexpr uint32_t kKey = 1;
constexpr uint32_t kValue = 2;
constexpr uint32_t kHeaders = 3;
constexpr uint32_t kOrderingKey = 4;
constexpr uint32_t kId = 5;
constexpr uint32_t kTimestamp = 6;
constexpr uint32_t kHeaderKey = 1;
constexpr uint32_t kHeaderValue = 2;
constexpr uint32_t kSeconds = 1;
constexpr uint32_t kNanos = 2;

using proto_wire::kFixed32;
using proto_wire::kFixed64;
using proto_wire::kLength;
using proto_wire::kVarint;

constexpr std::size_t VarintSize(uint64_t value) {
  std::size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

char* WriteVarint(uint64_t value, char* out) {
  while (value >= 0x80) {
    *out++ = static_cast<char>(value | 0x80);
    value >>= 7;
  }
  *out++ = static_cast<char>(value);
  return out;
}

// All field numbers here are below 16: a tag is one byte.
constexpr char Tag(uint32_t field, uint32_t wire_type) {
  return static_cast<char>((field << 3) | wire_type);
}

// A length-delimited field of `length` bytes, tag and length included.
constexpr std::size_t FieldSize(std::size_t length) {
  return 1 + VarintSize(length) + length;
}

// proto3: an empty bytes/string field is not written.
std::size_t BytesSize(std::string_view bytes) {
  return bytes.empty() ? 0 : FieldSize(bytes.size());
}

char* WriteLengthPrefix(uint32_t field, std::size_t length, char* out) {
  *out++ = Tag(field, kLength);
  return WriteVarint(length, out);
}

char* WriteBytes(uint32_t field, std::string_view bytes, char* out) {
  if (bytes.empty()) return out;
  out = WriteLengthPrefix(field, bytes.size(), out);
  std::memcpy(out, bytes.data(), bytes.size());
  return out + bytes.size();
}

std::size_t HeaderSize(const Header& header) {
  return BytesSize(header.key) + BytesSize(header.value);
}

struct Timestamp {
  int64_t seconds = 0;
  int32_t nanos = 0;
};

// Floor division: Timestamp.nanos must be in [0, 1e9) also before 1970.
Timestamp ToTimestamp(std::chrono::system_clock::time_point at) {
  const int64_t since_epoch =
      std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
  Timestamp out{.seconds = since_epoch / 1'000'000'000,
                .nanos = static_cast<int32_t>(since_epoch % 1'000'000'000)};
  if (out.nanos < 0) {
    out.seconds -= 1;
    out.nanos += 1'000'000'000;
  }
  return out;
}

// int64 and int32 fields are varints of their two's complement (negative
// seconds take ten bytes); zero is not written.
std::size_t TimestampSize(const Timestamp& at) {
  std::size_t size = 0;
  if (at.seconds != 0) size += 1 + VarintSize(static_cast<uint64_t>(at.seconds));
  if (at.nanos != 0) size += 1 + VarintSize(static_cast<uint64_t>(at.nanos));
  return size;
}

// The OutgoingMessage alone, without the framing of its request field.
std::size_t BodySize(const MessageView& message, std::string_view id) {
  std::size_t size = BytesSize(message.key) + BytesSize(message.value) +
                     BytesSize(message.ordering_key) + BytesSize(id);
  for (const Header& header : message.headers) size += FieldSize(HeaderSize(header));
  if (message.timestamp.has_value()) {
    size += FieldSize(TimestampSize(ToTimestamp(*message.timestamp)));
  }
  return size;
}

}  // namespace

MessageView ViewOf(const Message& message) {
  return MessageView{.key = message.key,
                     .value = message.value,
                     .headers = message.headers,
                     .ordering_key = message.ordering_key,
                     .id = message.id,
                     .timestamp = message.timestamp};
}

std::size_t MessageFieldSize(const MessageView& message, std::string_view id) {
  return FieldSize(BodySize(message, id));
}

namespace {

// WriteMessageField, also pointing *order_key at the copy of the ordering key
// (else the key) it wrote.
char* WriteField(const MessageView& message, std::string_view id, char* out,
                 std::string_view* order_key) {
  out = WriteLengthPrefix(kRequestMessages, BodySize(message, id), out);
  out = WriteBytes(kKey, message.key, out);
  *order_key = {out - message.key.size(), message.key.size()};
  out = WriteBytes(kValue, message.value, out);
  for (const Header& header : message.headers) {
    out = WriteLengthPrefix(kHeaders, HeaderSize(header), out);
    out = WriteBytes(kHeaderKey, header.key, out);
    out = WriteBytes(kHeaderValue, header.value, out);
  }
  out = WriteBytes(kOrderingKey, message.ordering_key, out);
  if (!message.ordering_key.empty()) {
    *order_key = {out - message.ordering_key.size(), message.ordering_key.size()};
  }
  out = WriteBytes(kId, id, out);
  if (message.timestamp.has_value()) {
    const Timestamp at = ToTimestamp(*message.timestamp);
    out = WriteLengthPrefix(kTimestamp, TimestampSize(at), out);
    if (at.seconds != 0) {
      *out++ = Tag(kSeconds, kVarint);
      out = WriteVarint(static_cast<uint64_t>(at.seconds), out);
    }
    if (at.nanos != 0) {
      *out++ = Tag(kNanos, kVarint);
      out = WriteVarint(static_cast<uint64_t>(at.nanos), out);
    }
  }
  return out;
}

}  // namespace

char* WriteMessageField(const MessageView& message, std::string_view id, char* out) {
  std::string_view order_key;
  return WriteField(message, id, out, &order_key);
}

std::size_t RequestHeaderSize(uint64_t request_id, std::string_view topic) {
  return (request_id == 0 ? 0 : 1 + VarintSize(request_id)) + BytesSize(topic);
}

char* WriteRequestHeader(uint64_t request_id, std::string_view topic, char* out) {
  if (request_id != 0) {
    *out++ = Tag(kRequestId, kVarint);
    out = WriteVarint(request_id, out);
  }
  return WriteBytes(kRequestTopic, topic, out);
}

char* WriteRequestTrailer(char* out) {
  *out++ = Tag(kRequestCompactResults, kVarint);
  *out++ = 1;
  return out;
}

grpc::Slice NewSlice(std::size_t size) {
  return grpc::Slice(grpc_slice_malloc(size), grpc::Slice::STEAL_REF);
}

char* BeginOf(grpc::Slice& slice) {
  return reinterpret_cast<char*>(const_cast<uint8_t*>(slice.begin()));
}

grpc::ByteBuffer EncodeRequest(uint64_t request_id, std::string_view topic,
                               const std::vector<std::unique_ptr<Pending>>& messages) {
  std::size_t size = RequestHeaderSize(request_id, topic) + kRequestTrailerSize;
  for (const std::unique_ptr<Pending>& message : messages) size += message->wire_bytes;
  grpc::Slice slice = NewSlice(size);
  char* out = WriteRequestHeader(request_id, topic, BeginOf(slice));
  for (const std::unique_ptr<Pending>& message : messages) {
    std::memcpy(out, message->wire().data(), message->wire_bytes);
    out += message->wire_bytes;
  }
  WriteRequestTrailer(out);
  return grpc::ByteBuffer(&slice, 1);
}

std::unique_ptr<ManyPart> EncodePart(std::string_view topic,
                                     std::span<const MessageView> messages,
                                     const PublishManyResult& ids, std::size_t first,
                                     std::span<const uint32_t> field_sizes) {
  auto part = std::make_unique<ManyPart>();
  part->topic = topic;
  part->header_bytes = RequestHeaderSize(0, topic);
  part->trailer_bytes = kRequestTrailerSize;
  std::size_t size = part->header_bytes + part->trailer_bytes;
  for (uint32_t field : field_sizes) size += field;
  part->request = NewSlice(size);
  char* const begin = BeginOf(part->request);
  char* out = WriteRequestHeader(0, topic, begin);
  part->field_ends.reserve(messages.size());
  part->order_keys.reserve(messages.size());
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const MessageView& message = messages[i];
    std::string_view order_key;
    out = WriteField(message, ids.id(first + i), out, &order_key);
    part->field_ends.push_back(static_cast<uint32_t>(out - begin));
    if (!order_key.empty()) part->order_keys.push_back(order_key);
  }
  WriteRequestTrailer(out);
  part->sending.resize(messages.size());
  for (uint32_t i = 0; i < part->sending.size(); ++i) part->sending[i] = i;
  return part;
}

grpc::ByteBuffer EncodeRetry(const ManyPart& part) {
  const char* const begin = reinterpret_cast<const char*>(part.request.begin());
  auto field_begin = [&](uint32_t i) {
    return i == 0 ? part.header_bytes : std::size_t{part.field_ends[i - 1]};
  };
  std::size_t size = part.header_bytes + part.trailer_bytes;
  for (uint32_t i : part.sending) size += part.field_ends[i] - field_begin(i);
  grpc::Slice slice = NewSlice(size);
  char* out = BeginOf(slice);
  std::memcpy(out, begin, part.header_bytes);
  out += part.header_bytes;
  for (uint32_t i : part.sending) {
    const std::size_t from = field_begin(i);
    std::memcpy(out, begin + from, part.field_ends[i] - from);
    out += part.field_ends[i] - from;
  }
  std::memcpy(out, begin + part.request.size() - part.trailer_bytes, part.trailer_bytes);
  return grpc::ByteBuffer(&slice, 1);
}

namespace {

// Reads protobuf fields from [pos, end); every method returns false on bytes
// that are not well-formed, leaving the reader unusable.
class FieldReader {
 public:
  FieldReader(const char* begin, const char* end) : pos_(begin), end_(end) {}
  explicit FieldReader(std::string_view bytes)
      : FieldReader(bytes.data(), bytes.data() + bytes.size()) {}

  bool done() const { return pos_ == end_; }

  bool Varint(uint64_t* value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ == end_) return false;
      const auto byte = static_cast<uint8_t>(*pos_++);
      result |= uint64_t{byte & 0x7fu} << shift;
      if (byte < 0x80) {
        *value = result;
        return true;
      }
    }
    return false;
  }

  // The next field's number and wire type.
  bool Tag(uint32_t* field, uint32_t* wire_type) {
    uint64_t tag = 0;
    if (!Varint(&tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX) return false;
    *field = static_cast<uint32_t>(tag >> 3);
    *wire_type = static_cast<uint32_t>(tag & 7);
    return true;
  }

  bool Bytes(std::string_view* bytes) {
    uint64_t length = 0;
    if (!Varint(&length) || length > static_cast<uint64_t>(end_ - pos_)) return false;
    *bytes = {pos_, static_cast<std::size_t>(length)};
    pos_ += length;
    return true;
  }

  // The value of a field this reader does not want.
  bool Skip(uint32_t wire_type) {
    uint64_t ignored = 0;
    std::string_view bytes;
    switch (wire_type) {
      case kVarint:
        return Varint(&ignored);
      case kFixed64:
        return Advance(8);
      case kLength:
        return Bytes(&bytes);
      case kFixed32:
        return Advance(4);
      default:  // groups are not in proto3
        return false;
    }
  }

 private:
  bool Advance(std::size_t n) {
    if (static_cast<std::size_t>(end_ - pos_) < n) return false;
    pos_ += n;
    return true;
  }

  const char* pos_;
  const char* end_;
};

// Field numbers of ferry.v1.PublishResponse, PublishResult, Status and
// CompactPublishResults.
constexpr uint32_t kResponseResults = 3;
constexpr uint32_t kResponseCompact = 4;
constexpr uint32_t kCompactCluster = 1;
constexpr uint32_t kCompactPartitions = 2;
constexpr uint32_t kCompactOffsets = 3;
constexpr uint32_t kResultStatus = 1;
constexpr uint32_t kResultCluster = 2;
constexpr uint32_t kResultPartition = 3;
constexpr uint32_t kResultOffset = 4;
constexpr uint32_t kResultId = 6;
constexpr uint32_t kStatusCode = 1;
constexpr uint32_t kStatusMessage = 2;
constexpr uint32_t kStatusRetryable = 3;
constexpr uint32_t kStatusRetryAfterMs = 4;

// Whether a known field came with its own wire type; with another it is
// skipped as an unknown field, as the generated parser does.
bool Is(uint32_t wire_type, uint32_t expected) { return wire_type == expected; }

bool ReadStatus(std::string_view bytes, ResultView* out) {
  FieldReader reader(bytes);
  while (!reader.done()) {
    uint32_t field = 0, wire_type = 0;
    uint64_t number = 0;
    if (!reader.Tag(&field, &wire_type)) return false;
    if (field == kStatusCode && Is(wire_type, kVarint)) {
      if (!reader.Varint(&number)) return false;
      out->code = static_cast<int32_t>(number);
    } else if (field == kStatusMessage && Is(wire_type, kLength)) {
      if (!reader.Bytes(&out->error)) return false;
    } else if (field == kStatusRetryable && Is(wire_type, kVarint)) {
      if (!reader.Varint(&number)) return false;
      out->retryable = number != 0;
    } else if (field == kStatusRetryAfterMs && Is(wire_type, kVarint)) {
      if (!reader.Varint(&number)) return false;
      out->retry_after_ms = static_cast<uint32_t>(number);
    } else if (!reader.Skip(wire_type)) {
      return false;
    }
  }
  return true;
}

bool ReadResult(std::string_view bytes, ResultView* out) {
  FieldReader reader(bytes);
  while (!reader.done()) {
    uint32_t field = 0, wire_type = 0;
    uint64_t number = 0;
    std::string_view status;
    if (!reader.Tag(&field, &wire_type)) return false;
    if (field == kResultStatus && Is(wire_type, kLength)) {
      // A repeated submessage merges, as in the generated parser.
      if (!reader.Bytes(&status) || !ReadStatus(status, out)) return false;
    } else if (field == kResultCluster && Is(wire_type, kLength)) {
      if (!reader.Bytes(&out->cluster)) return false;
    } else if (field == kResultPartition && Is(wire_type, kVarint)) {
      if (!reader.Varint(&number)) return false;
      out->partition = static_cast<int32_t>(number);
    } else if (field == kResultOffset && Is(wire_type, kVarint)) {
      if (!reader.Varint(&number)) return false;
      out->offset = static_cast<int64_t>(number);
    } else if (field == kResultId && Is(wire_type, kLength)) {
      if (!reader.Bytes(&out->id)) return false;
    } else if (!reader.Skip(wire_type)) {
      return false;
    }
  }
  return true;
}

// A repeated varint field's values, packed (one length-delimited run) or
// not (one value per tag): parsers must accept both.
bool ReadVarints(FieldReader& reader, uint32_t wire_type, std::vector<uint64_t>* out) {
  uint64_t value = 0;
  if (wire_type == kVarint) {
    if (!reader.Varint(&value)) return false;
    out->push_back(value);
    return true;
  }
  std::string_view packed;
  if (!reader.Bytes(&packed)) return false;
  FieldReader values(packed);
  while (!values.done()) {
    if (!values.Varint(&value)) return false;
    out->push_back(value);
  }
  return true;
}

bool IsVarints(uint32_t wire_type) {
  return wire_type == kVarint || wire_type == kLength;
}

// CompactPublishResults: an OK result per message, without an id echo.
bool ReadCompact(std::string_view bytes, std::vector<ResultView>* results) {
  FieldReader reader(bytes);
  std::string_view cluster;
  std::vector<uint64_t> partitions, offsets;
  while (!reader.done()) {
    uint32_t field = 0, wire_type = 0;
    if (!reader.Tag(&field, &wire_type)) return false;
    if (field == kCompactCluster && Is(wire_type, kLength)) {
      if (!reader.Bytes(&cluster)) return false;
    } else if (field == kCompactPartitions && IsVarints(wire_type)) {
      if (!ReadVarints(reader, wire_type, &partitions)) return false;
    } else if (field == kCompactOffsets && IsVarints(wire_type)) {
      if (!ReadVarints(reader, wire_type, &offsets)) return false;
    } else if (!reader.Skip(wire_type)) {
      return false;
    }
  }
  if (partitions.size() != offsets.size()) return false;
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    ResultView& result = results->emplace_back();
    result.cluster = cluster;
    result.partition = static_cast<int32_t>(partitions[i]);
    result.offset = static_cast<int64_t>(offsets[i]);
  }
  return true;
}

}  // namespace

bool ReadResults(const grpc::ByteBuffer& response, std::string* storage,
                 std::vector<ResultView>* results) {
  if (response.Length() == 0) return true;  // All defaults (Dump refuses it).
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return false;
  std::string_view bytes;
  if (slices.size() == 1) {
    bytes = {reinterpret_cast<const char*>(slices[0].begin()), slices[0].size()};
  } else {
    storage->clear();
    storage->reserve(response.Length());
    for (const grpc::Slice& slice : slices) {
      storage->append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
    bytes = *storage;
  }
  FieldReader reader(bytes);
  while (!reader.done()) {
    uint32_t field = 0, wire_type = 0;
    std::string_view result;
    if (!reader.Tag(&field, &wire_type)) return false;
    if (field == kResponseResults && Is(wire_type, kLength)) {
      if (!reader.Bytes(&result) || !ReadResult(result, &results->emplace_back())) {
        return false;
      }
    } else if (field == kResponseCompact && Is(wire_type, kLength)) {
      if (!reader.Bytes(&result) || !ReadCompact(result, results)) return false;
    } else if (!reader.Skip(wire_type)) {
      return false;
    }
  }
  return true;
}

}  // namespace ferry::client::internal
