#include "subscriber_convert.h"

#include <fmt/format.h>

#include <cstdint>
#include <utility>

namespace ferry::client::internal {
namespace {

ferry::v1::Ordering ToProto(Ordering ordering) {
  switch (ordering) {
    case Ordering::kNone:
      return ferry::v1::ORDERING_NONE;
    case Ordering::kKey:
      return ferry::v1::ORDERING_KEY;
    case Ordering::kPartition:
      return ferry::v1::ORDERING_PARTITION;
  }
  return ferry::v1::ORDERING_NONE;
}

void ToProto(const StartPosition& position, ferry::v1::Position* out) {
  switch (position.kind) {
    case StartPosition::Kind::kLatest:
      out->set_latest(true);
      return;
    case StartPosition::Kind::kEarliest:
      out->set_earliest(true);
      return;
    case StartPosition::Kind::kTimestamp: {
      const int64_t nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                position.timestamp.time_since_epoch())
                                .count();
      // Floor division: Timestamp.nanos must be in [0, 1e9) also before 1970.
      int64_t seconds = nanos / 1'000'000'000;
      int64_t rest = nanos % 1'000'000'000;
      if (rest < 0) {
        seconds -= 1;
        rest += 1'000'000'000;
      }
      out->mutable_timestamp()->set_seconds(seconds);
      out->mutable_timestamp()->set_nanos(static_cast<int32_t>(rest));
      return;
    }
  }
}

}  // namespace

void SetDuration(std::chrono::milliseconds duration, google::protobuf::Duration* out) {
  out->set_seconds(duration.count() / 1000);
  out->set_nanos(static_cast<int32_t>(duration.count() % 1000) * 1'000'000);
}

ferry::v1::SubscribeRequest OpenRequest(const SubscriberOptions& options) {
  ferry::v1::SubscribeRequest request;
  ferry::v1::SubscriptionOpen* open = request.mutable_open();
  open->set_group(options.group);
  for (const std::string& topic : options.topics) open->add_topics(topic);
  open->set_ordering(ToProto(options.ordering));
  SetDuration(options.ack_deadline, open->mutable_ack_deadline());
  open->mutable_flow()->set_max_outstanding_messages(options.max_outstanding_messages);
  open->mutable_flow()->set_max_outstanding_bytes(options.max_outstanding_bytes);
  ToProto(options.start, open->mutable_start());
  open->set_filter(options.filter);
  open->set_max_delivery_attempts(options.max_delivery_attempts);
  open->set_dead_letter_topic(options.dead_letter_topic);
  open->set_client_id(options.client_id);
  return request;
}

std::string OrderingKey(Ordering ordering, const ReceivedView& message) {
  switch (ordering) {
    case Ordering::kNone:
      return {};
    case Ordering::kKey:
      return std::string(message.key);
    case Ordering::kPartition:
      // '\0' never occurs in a topic name, so no two partitions share a key.
      return fmt::format("{}{}{}", message.topic, '\0', message.partition);
  }
  return {};
}

}  // namespace ferry::client::internal
