#include "publish_wire.h"

#include <grpc/slice.h>
#include <grpcpp/support/slice.h>

#include <chrono>
#include <cstring>

#include "common/proto_wire_reader.h"
#include "common/proto_wire_writer.h"

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

using proto_wire::kLength;
using proto_wire::kVarint;
using proto_wire::VarintSize;
using proto_wire::WriteVarint;

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

bool ReadResults(const grpc::ByteBuffer& response, ResponseStorage* storage,
                 std::vector<ResultView>* results) {
  storage->slices.clear();
  storage->pieces.clear();
  storage->spilled.clear();
  if (response.Length() == 0) return true;  // All defaults (Dump refuses it).
  if (!response.Dump(&storage->slices).ok()) return false;
  for (const grpc::Slice& slice : storage->slices) {
    storage->pieces.emplace_back(reinterpret_cast<const char*>(slice.begin()),
                                 slice.size());
  }
  return ReadResults(storage->pieces, &storage->spilled, results);
}

}  // namespace ferry::client::internal
