#include "subscribe/delivery_encoder.h"

#include <google/protobuf/io/coded_stream.h>

#include <cstring>

#include "common/proto_wire_reader.h"

namespace ferry::subscribe {
namespace {

using google::protobuf::io::CodedOutputStream;

// Field numbers of ferry.v1 messages (proto/ferry/v1/subscriber.proto).
constexpr int kResponseMessages = 2;  // SubscribeResponse.messages
constexpr int kBatchMessages = 1;     // MessageBatch.messages
constexpr int kBatchRuns = 2;         // MessageBatch.runs
enum ReceiptRunField : int { kRun = 1, kRunFirstMessage = 2, kRunCount = 3 };
enum ReceivedMessageField : int {
  kReceipt = 1,
  kTopic = 2,
  kPartition = 3,
  kOffset = 4,
  kKey = 5,
  kValue = 6,
  kHeaders = 7,
  kPublishTime = 8,
  kDeliveryAttempt = 9,
  kCluster = 10,
  kId = 11,
};
constexpr int kHeaderKey = 1, kHeaderValue = 2;
constexpr int kSeconds = 1, kNanos = 2;  // google.protobuf.Timestamp

using proto_wire::kLength;
using proto_wire::kVarint;
// Every field number here is below 16: its tag is one byte.
constexpr size_t kTagSize = 1;

// Protobuf encodes a negative int32 or int64 as a ten-byte varint of its
// sign extension.
uint64_t AsVarint(int64_t value) { return static_cast<uint64_t>(value); }

// Sizes as protobuf leaves out proto3 defaults (zero, empty).
size_t VarintFieldSize(uint64_t value) {
  return value == 0 ? 0 : kTagSize + CodedOutputStream::VarintSize64(value);
}
size_t BytesFieldSize(size_t size) {
  return kTagSize + CodedOutputStream::VarintSize64(size) + size;
}
size_t OptionalBytesFieldSize(size_t size) {
  return size == 0 ? 0 : BytesFieldSize(size);
}

struct Timestamp {
  int64_t seconds;
  int32_t nanos;
};
Timestamp FromUnixMillis(int64_t millis) {
  int64_t seconds = millis / 1000, rest = millis % 1000;
  if (rest < 0) {
    rest += 1000;
    --seconds;
  }
  return {seconds, static_cast<int32_t>(rest * 1'000'000)};
}
size_t TimestampSize(const Timestamp& t) {
  return VarintFieldSize(AsVarint(t.seconds)) + VarintFieldSize(AsVarint(t.nanos));
}
size_t HeaderSize(const backend::HeaderView& h) {
  return OptionalBytesFieldSize(h.key.size()) + OptionalBytesFieldSize(h.value.size());
}

char* AsChars(uint8_t* p) { return reinterpret_cast<char*>(p); }
uint8_t* AsBytes(char* p) { return reinterpret_cast<uint8_t*>(p); }

uint8_t* WriteTag(int field, uint32_t type, uint8_t* out) {
  return CodedOutputStream::WriteVarint32ToArray(
      (static_cast<uint32_t>(field) << 3) | type, out);
}
uint8_t* WriteVarintField(int field, uint64_t value, uint8_t* out) {
  if (value == 0) return out;
  out = WriteTag(field, kVarint, out);
  return CodedOutputStream::WriteVarint64ToArray(value, out);
}
uint8_t* WriteLength(int field, size_t size, uint8_t* out) {
  out = WriteTag(field, kLength, out);
  return CodedOutputStream::WriteVarint64ToArray(size, out);
}
uint8_t* WriteBytesField(int field, std::string_view bytes, uint8_t* out) {
  out = WriteLength(field, bytes.size(), out);
  std::memcpy(out, bytes.data(), bytes.size());
  return out + bytes.size();
}
uint8_t* WriteOptionalBytesField(int field, std::string_view bytes, uint8_t* out) {
  return bytes.empty() ? out : WriteBytesField(field, bytes, out);
}

}  // namespace

int64_t RecordBytes(const backend::ConsumedRecord& record) {
  int64_t bytes = static_cast<int64_t>(record.key.size() + record.value.size());
  for (const auto& h : record.headers) bytes += h.key.size() + h.value.size();
  return bytes;
}

SerializedResponse SerializedResponse::Of(const v1::SubscribeResponse& response) {
  SerializedResponse out(response.ByteSizeLong());
  response.SerializeWithCachedSizesToArray(AsBytes(out.data()));
  return out;
}

void DeliveryBatchWriter::Add(const backend::ConsumedRecord& record,
                              const Delivery& delivery, const DeliveryContext& context) {
  const size_t receipt_begin = receipts_.size();
  const WireReceipt receipt{.stream = context.stream,
                            .partition_epoch = context.partition_epoch,
                            .generation = delivery.generation,
                            .partition = record.partition,
                            .attempt = delivery.attempt,
                            .offset = delivery.offset,
                            .topic = record.topic,
                            .cluster = *context.cluster};
  AppendReceipt(receipt, receipts_);
  AddToRun(receipt);
  Entry entry{.record = &record,
              .cluster = context.cluster,
              .attempt = delivery.attempt,
              .offset = delivery.offset,
              .receipt_begin = receipt_begin,
              .receipt_end = receipts_.size(),
              .id = nullptr,
              .message_size = 0};
  for (const backend::HeaderView& h : record.headers) {
    if (h.key == "ferry.id") entry.id = &h;
  }
  entry.message_size = MessageSize(entry);
  bytes_ += BytesFieldSize(entry.message_size);
  entries_.push_back(entry);
}

size_t DeliveryBatchWriter::MessageSize(const Entry& e) {
  const backend::ConsumedRecord& r = *e.record;
  size_t size =
      BytesFieldSize(e.receipt_end - e.receipt_begin) +
      OptionalBytesFieldSize(r.topic.size()) + VarintFieldSize(AsVarint(r.partition)) +
      VarintFieldSize(AsVarint(e.offset)) + OptionalBytesFieldSize(r.key.size()) +
      OptionalBytesFieldSize(r.value.size()) +
      BytesFieldSize(TimestampSize(FromUnixMillis(r.timestamp_ms))) +
      VarintFieldSize(AsVarint(e.attempt)) + OptionalBytesFieldSize(e.cluster->size()) +
      (e.id == nullptr ? 0 : OptionalBytesFieldSize(e.id->value.size()));
  for (const backend::HeaderView& h : r.headers) size += BytesFieldSize(HeaderSize(h));
  return size;
}

char* DeliveryBatchWriter::WriteMessage(const Entry& e, char* chars) const {
  const backend::ConsumedRecord& r = *e.record;
  uint8_t* out = AsBytes(chars);
  out = WriteBytesField(kReceipt,
                        std::string_view(receipts_).substr(
                            e.receipt_begin, e.receipt_end - e.receipt_begin),
                        out);
  out = WriteOptionalBytesField(kTopic, r.topic, out);
  out = WriteVarintField(kPartition, AsVarint(r.partition), out);
  out = WriteVarintField(kOffset, AsVarint(e.offset), out);
  out = WriteOptionalBytesField(kKey, r.key, out);
  out = WriteOptionalBytesField(kValue, r.value, out);
  for (const backend::HeaderView& h : r.headers) {
    out = WriteLength(kHeaders, HeaderSize(h), out);
    out = WriteOptionalBytesField(kHeaderKey, h.key, out);
    out = WriteOptionalBytesField(kHeaderValue, h.value, out);
  }
  const Timestamp time = FromUnixMillis(r.timestamp_ms);
  out = WriteLength(kPublishTime, TimestampSize(time), out);
  out = WriteVarintField(kSeconds, AsVarint(time.seconds), out);
  out = WriteVarintField(kNanos, AsVarint(time.nanos), out);
  out = WriteVarintField(kDeliveryAttempt, AsVarint(e.attempt), out);
  out = WriteOptionalBytesField(kCluster, *e.cluster, out);
  if (e.id != nullptr) out = WriteOptionalBytesField(kId, e.id->value, out);
  return AsChars(out);
}

void DeliveryBatchWriter::AddToRun(const WireReceipt& r) {
  const WireReceipt& first = open_run_.first;
  // The epoch names the partition (and cluster) on this node.
  if (open_run_.count > 0 && r.stream == first.stream &&
      r.partition_epoch == first.partition_epoch && r.generation == first.generation &&
      r.attempt == first.attempt && r.offset == first.offset + open_run_.count) {
    ++open_run_.count;
    return;
  }
  CloseRun();
  open_run_ = {.first = r, .count = 1};
  open_run_first_message_ = static_cast<uint32_t>(entries_.size());
}

void DeliveryBatchWriter::CloseRun() {
  if (open_run_.count > 1) {
    const size_t begin = run_tokens_.size();
    AppendRun(open_run_, run_tokens_);
    runs_.push_back({.begin = begin,
                     .end = run_tokens_.size(),
                     .first_message = open_run_first_message_,
                     .count = open_run_.count});
    bytes_ += BytesFieldSize(RunSize(runs_.back()));
  }
  open_run_.count = 0;
}

size_t DeliveryBatchWriter::RunSize(const Run& run) {
  return BytesFieldSize(run.end - run.begin) + VarintFieldSize(run.first_message) +
         VarintFieldSize(run.count);
}

char* DeliveryBatchWriter::WriteRun(const Run& run, char* chars) const {
  uint8_t* out = AsBytes(chars);
  out = WriteBytesField(
      kRun, std::string_view(run_tokens_).substr(run.begin, run.end - run.begin), out);
  out = WriteVarintField(kRunFirstMessage, run.first_message, out);
  out = WriteVarintField(kRunCount, run.count, out);
  return AsChars(out);
}

SerializedResponse DeliveryBatchWriter::Finish() {
  CloseRun();
  const size_t batch_size = bytes_;
  SerializedResponse response(BytesFieldSize(batch_size));
  uint8_t* out = WriteLength(kResponseMessages, batch_size, AsBytes(response.data()));
  char* chars = AsChars(out);
  for (const Entry& e : entries_) {
    chars = AsChars(WriteLength(kBatchMessages, e.message_size, AsBytes(chars)));
    chars = WriteMessage(e, chars);
  }
  for (const Run& run : runs_) {
    chars = AsChars(WriteLength(kBatchRuns, RunSize(run), AsBytes(chars)));
    chars = WriteRun(run, chars);
  }
  response.set_messages(entries_.size());
  entries_.clear();
  bytes_ = 0;
  receipts_.clear();
  runs_.clear();
  run_tokens_.clear();
  return response;
}

}  // namespace ferry::subscribe
