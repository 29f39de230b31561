#include "subscribe/delivery_encoder.h"

#include "api/convert.h"
#include "subscribe/wire_receipt.h"

namespace ferry::subscribe {

int64_t RecordBytes(const backend::ConsumedRecord& record) {
  int64_t bytes = static_cast<int64_t>(record.key.size() + record.value.size());
  for (const auto& h : record.headers) bytes += h.key.size() + h.value.size();
  return bytes;
}

void EncodeDelivery(const backend::ConsumedRecord& record, const Delivery& delivery,
                    const DeliveryContext& context, v1::ReceivedMessage& out) {
  out.set_receipt(EncodeReceipt({.stream = context.stream,
                                 .partition_epoch = context.partition_epoch,
                                 .generation = delivery.generation,
                                 .partition = record.partition,
                                 .attempt = delivery.attempt,
                                 .offset = delivery.offset,
                                 .topic = record.topic,
                                 .cluster = *context.cluster}));
  out.set_topic(record.topic);
  out.set_partition(record.partition);
  out.set_offset(delivery.offset);
  out.set_key(record.key.data(), record.key.size());
  out.set_value(record.value.data(), record.value.size());
  for (const auto& h : record.headers) {
    v1::Header& header = *out.add_headers();
    header.set_key(h.key.data(), h.key.size());
    header.set_value(h.value.data(), h.value.size());
    if (h.key == "ferry.id") out.set_id(h.value.data(), h.value.size());
  }
  api::FromUnixMillis(record.timestamp_ms, out.mutable_publish_time());
  out.set_delivery_attempt(delivery.attempt);
  out.set_cluster(*context.cluster);
}

}  // namespace ferry::subscribe
