// Conversions between the subscriber's public types and the ferry.v1 protos.
#ifndef FERRY_CLIENT_SRC_SUBSCRIBER_CONVERT_H_
#define FERRY_CLIENT_SRC_SUBSCRIBER_CONVERT_H_

#include <google/protobuf/duration.pb.h>

#include <chrono>
#include <string>

#include "ferry/client/subscriber.h"
#include "ferry/v1/subscriber.pb.h"
#include "subscriber_options.h"

namespace ferry::client::internal {

void SetDuration(std::chrono::milliseconds duration, google::protobuf::Duration* out);

// The stream's first request.
ferry::v1::SubscribeRequest OpenRequest(const SubscriberOptions& options);

// The key whose handler invocations run one at a time; empty: unordered.
std::string OrderingKey(Ordering ordering, const ReceivedView& message);

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_SUBSCRIBER_CONVERT_H_
