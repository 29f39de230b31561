#pragma once

// The wire form of deliveries: a SubscribeResponse carrying a MessageBatch,
// written straight from the fetched records, and what a record costs a
// stream's byte credit.
//
// The batch is serialized by hand rather than through v1::ReceivedMessage,
// into gRPC slices: the framing (tags, lengths, receipts, keys, headers) is
// written into one buffer of the response's own, and each value of at least
// `lend_values_from` bytes is not copied at all but lent: its slice points
// into the record's bytes (librdkafka's message, the embedded store's
// decoded value) and holds a reference to them until gRPC has written it.
// Smaller values are copied into the framing, where a slice of their own
// would cost more than the copy. The bytes are what protobuf serializes for
// the same messages (the test checks both parse and bytes), so clients see
// no difference.
//
// Lent bytes live as long as the response's slices: a Kafka value pins its
// fetch response (librdkafka keeps a message's payload in the fetched
// buffer) until the write completes, which the stream's byte credit bounds.
//
// Threading: DeliveryBatchWriter is not thread-safe; one per Pump. A
// SerializedResponse may be released and its slices freed on any thread.
// Cost: one allocation for the framing per response, one per lent value
// (gRPC's slice), a copy of the rest.
//
// Usage:
//
//   DeliveryBatchWriter writer;
//   writer.Add(record, delivery, {.stream = id, .partition_epoch = e, .cluster = &c});
//   sink->Send(writer.Finish());

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backend/group_member.h"
#include "ferry/v1/subscriber.pb.h"
#include "subscribe/partition_state.h"

namespace ferry::subscribe {

// Bytes a record counts against flow control: key, value and headers.
int64_t RecordBytes(const backend::ConsumedRecord& record);

// A serialized v1::SubscribeResponse as gRPC slices, handed over without a
// copy.
class SerializedResponse {
 public:
  SerializedResponse() = default;
  SerializedResponse(grpc::ByteBuffer buffer, size_t messages)
      : buffer_(std::move(buffer)), messages_(messages) {}
  static SerializedResponse Of(const v1::SubscribeResponse& response);

  size_t size() const { return buffer_.Length(); }
  // The messages delivered in it (0: a response of another kind).
  size_t messages() const { return messages_; }
  // The bytes in one string: a copy, for tests.
  std::string Flatten() const;
  // The slices, for tests: which bytes are lent rather than copied.
  std::vector<grpc::Slice> Slices() const;
  // Hands the slices over; this is left empty.
  grpc::ByteBuffer Release();

 private:
  grpc::ByteBuffer buffer_;
  size_t messages_ = 0;
};

// Who a delivery goes to and where it was read from.
struct DeliveryContext {
  StreamId stream = 0;
  // The partition state's epoch (node-unique per assignment), carried in the
  // receipt so a receipt from an earlier assignment never matches.
  uint64_t partition_epoch = 0;
  // The cluster the record was read from: shown to clients and carried in
  // the receipt, which settles it on that cluster. Not null.
  const std::string* cluster = nullptr;
};

// Collects deliveries and writes them as one SubscribeResponse.
class DeliveryBatchWriter {
 public:
  // Values of at least this many bytes are lent rather than copied (measured
  // in bench/RESULTS.md, "Values lent to gRPC").
  static constexpr size_t kLendValuesFrom = 256;

  explicit DeliveryBatchWriter(size_t lend_values_from = kLendValuesFrom)
      : lend_values_from_(lend_values_from) {}

  // Adds `record` as delivered by `delivery`: the receipt, the position, the
  // payload, the `ferry.id` header as `id`, the attempt. `record` and
  // `*context.cluster` must stay valid and unchanged until Finish(); the
  // response keeps what it lends alive through `record.bytes`.
  void Add(const backend::ConsumedRecord& record, const Delivery& delivery,
           const DeliveryContext& context);
  size_t size() const { return entries_.size(); }
  // What Finish() would write now, in bytes, less the response's own few
  // bytes of framing.
  size_t bytes() const { return bytes_; }
  // The response with every delivery added since the last Finish(), in order.
  SerializedResponse Finish();

 private:
  struct Entry {
    const backend::ConsumedRecord* record;
    const std::string* cluster;
    int32_t attempt;
    int64_t offset;
    // The receipt: receipts_[receipt_begin, receipt_end).
    size_t receipt_begin;
    size_t receipt_end;
    // The value of the last ferry.id header, if any.
    const backend::HeaderView* id;
    size_t message_size;  // the ReceivedMessage's serialized size
    bool lend_value;      // the value goes out as a slice of its own
  };
  // A lent value and where in the framing it goes.
  struct Cut {
    size_t at;
    const backend::ConsumedRecord* record;
  };
  static size_t MessageSize(const Entry& entry);
  char* WriteMessage(const Entry& entry, char* begin, char* out);
  // The framing with the lent values inserted at their cuts.
  std::vector<grpc::Slice> CutIntoSlices(std::unique_ptr<char[]> framing, size_t size);

  const size_t lend_values_from_;

  std::vector<Entry> entries_;
  size_t bytes_ = 0;
  size_t lent_bytes_ = 0;  // of bytes_, in lent values
  // Every entry's receipt, back to back; reused across Finish() calls.
  std::string receipts_;
  // Reused across Finish() calls.
  std::vector<Cut> cuts_;
};

}  // namespace ferry::subscribe
