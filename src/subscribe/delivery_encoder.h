#pragma once

// The wire form of deliveries: a SubscribeResponse carrying a MessageBatch,
// written straight from the fetched records, and what a record costs a
// stream's byte credit.
//
// The batch is serialized by hand rather than through v1::ReceivedMessage:
// each key, value and header is copied once, from the backend's bytes into the
// response buffer, which gRPC then sends without copying it again. The bytes
// are what protobuf serializes for the same messages (the test checks both
// parse and bytes), so clients see no difference.
//
// Consecutive deliveries of one partition (consecutive offsets, one
// generation and attempt) also get a v1::ReceiptRun, so a client can ack
// them with one ReceiptSpan (wire_receipt.h: WireRun).
//
// Threading: DeliveryBatchWriter is not thread-safe; one per Pump. Cost: one
// allocation per response and one copy of each record's payload.
//
// Usage:
//
//   DeliveryBatchWriter writer;
//   writer.Add(record, delivery, {.stream = id, .partition_epoch = e, .cluster = &c});
//   sink->Send(writer.Finish());

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backend/group_member.h"
#include "ferry/v1/subscriber.pb.h"
#include "subscribe/partition_state.h"
#include "subscribe/wire_receipt.h"

namespace ferry::subscribe {

// Bytes a record counts against flow control: key, value and headers.
int64_t RecordBytes(const backend::ConsumedRecord& record);

// A serialized v1::SubscribeResponse, in a buffer of its own that can be
// handed over without a copy.
class SerializedResponse {
 public:
  SerializedResponse() = default;
  // `size` bytes, not initialized.
  explicit SerializedResponse(size_t size)
      : data_(std::make_unique_for_overwrite<char[]>(size)), size_(size) {}
  static SerializedResponse Of(const v1::SubscribeResponse& response);

  char* data() { return data_.get(); }
  size_t size() const { return size_; }
  // The messages delivered in it (0: a response of another kind).
  size_t messages() const { return messages_; }
  void set_messages(size_t messages) { messages_ = messages; }
  std::string_view view() const { return {data_.get(), size_}; }
  // Hands the buffer over; free it with delete[].
  char* Release() {
    size_ = 0;
    return data_.release();
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
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
  // Adds `record` as delivered by `delivery`: the receipt, the position, the
  // payload, the `ferry.id` header as `id`, the attempt. `record` and
  // `*context.cluster` must stay valid and unchanged until Finish().
  void Add(const backend::ConsumedRecord& record, const Delivery& delivery,
           const DeliveryContext& context);
  size_t size() const { return entries_.size(); }
  // What Finish() would write now, in bytes, less the response's own few
  // bytes of framing and the last run's.
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
  };
  // A ReceiptRun: run_tokens_[begin, end) is its token.
  struct Run {
    size_t begin;
    size_t end;
    uint32_t first_message;
    uint32_t count;
  };
  static size_t MessageSize(const Entry& entry);
  char* WriteMessage(const Entry& entry, char* out) const;
  static size_t RunSize(const Run& run);
  char* WriteRun(const Run& run, char* out) const;
  // Extends the open run by this delivery, or closes it and opens another.
  void AddToRun(const WireReceipt& receipt);
  // Writes the open run's token, if it holds more than one message (a
  // single message is acked by its receipt).
  void CloseRun();

  std::vector<Entry> entries_;
  size_t bytes_ = 0;
  // Every entry's receipt, back to back; reused across Finish() calls.
  std::string receipts_;
  std::vector<Run> runs_;
  std::string run_tokens_;
  // The run the last delivery belongs to (count 0: none); its topic and
  // cluster point into the entry's record and context.
  WireRun open_run_;
  uint32_t open_run_first_message_ = 0;
};

}  // namespace ferry::subscribe
