#pragma once

// The wire form of deliveries: what a fetched record becomes in a
// SubscribeResponse, and what it costs a stream's byte credit.
//
// Threading: pure functions. Cost: one copy of key, value and headers.

#include <cstdint>
#include <string>

#include "backend/group_member.h"
#include "ferry/v1/subscriber.pb.h"
#include "subscribe/partition_state.h"

namespace ferry::subscribe {

// Bytes a record counts against flow control: key, value and headers.
int64_t RecordBytes(const backend::ConsumedRecord& record);

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

// Fills `out` with `record` as delivered by `delivery`: the receipt, the
// position, the payload, the `ferry.id` header as `id`, the attempt.
void EncodeDelivery(const backend::ConsumedRecord& record, const Delivery& delivery,
                    const DeliveryContext& context, v1::ReceivedMessage& out);

}  // namespace ferry::subscribe
