#include "subscriber_options.h"

#include <fmt/format.h>

#include "options.h"

namespace ferry::client::internal {

absl::Status Validate(const SubscriberOptions& options) {
  auto bad = [](std::string what) { return absl::InvalidArgumentError(what); };
  if (absl::Status status = ValidateEndpoints(options.endpoints); !status.ok()) {
    return status;
  }
  if (options.group.empty()) return bad("Group: required");
  if (options.topics.empty()) return bad("Topics: at least one topic is required");
  for (const std::string& topic : options.topics) {
    if (topic.empty()) return bad("Topics: a topic name is empty");
  }
  using std::chrono::milliseconds;
  if (options.ack_deadline < milliseconds(1'000) ||
      options.ack_deadline > milliseconds(600'000)) {
    return bad(fmt::format("AckDeadline: must be 1 s to 10 min, got {} ms",
                           options.ack_deadline.count()));
  }
  if (options.max_outstanding_messages < 1 || options.max_outstanding_bytes < 1) {
    return bad(fmt::format("FlowControl: both limits must be >= 1, got {} and {}",
                           options.max_outstanding_messages,
                           options.max_outstanding_bytes));
  }
  if (options.max_delivery_attempts < 0) {
    return bad(fmt::format("MaxDeliveryAttempts: must be >= 0, got {}",
                           options.max_delivery_attempts));
  }
  if (options.handler_threads < 1 || options.handler_threads > 1024) {
    return bad(fmt::format("HandlerThreads: must be 1 to 1024, got {}",
                           options.handler_threads));
  }
  if (options.max_ack_batch < 1 || options.max_ack_delay.count() < 0) {
    return bad(
        fmt::format("AckBatch: need max_receipts >= 1 and max_delay >= 0, got {} "
                    "and {} ms",
                    options.max_ack_batch, options.max_ack_delay.count()));
  }
  if (options.max_extension.count() <= 0) {
    return bad(fmt::format("MaxExtension: must be > 0 ms, got {}",
                           options.max_extension.count()));
  }
  if (options.initial_backoff.count() <= 0 ||
      options.max_backoff < options.initial_backoff) {
    return bad(
        fmt::format("ReconnectBackoff: need 0 < initial <= max, got {} ms and {} ms",
                    options.initial_backoff.count(), options.max_backoff.count()));
  }
  if (options.close_timeout.count() < 0) {
    return bad(fmt::format("CloseTimeout: must be >= 0 ms, got {}",
                           options.close_timeout.count()));
  }
  return absl::OkStatus();
}

}  // namespace ferry::client::internal
