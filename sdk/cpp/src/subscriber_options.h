// The subscriber's options as Builder collects them, and their validation.
#ifndef FERRY_CLIENT_SRC_SUBSCRIBER_OPTIONS_H_
#define FERRY_CLIENT_SRC_SUBSCRIBER_OPTIONS_H_

#include <grpcpp/security/credentials.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "ferry/client/subscriber.h"
#include "security/client_credentials.h"

namespace ferry::client::internal {

struct SubscriberOptions {
  std::vector<std::string> endpoints;
  std::string group;
  std::vector<std::string> topics;
  Ordering ordering = Ordering::kNone;
  std::chrono::milliseconds ack_deadline{30'000};
  int64_t max_outstanding_messages = 1000;
  int64_t max_outstanding_bytes = int64_t{10} << 20;
  StartPosition start;
  std::string filter;
  int max_delivery_attempts = 0;
  std::string dead_letter_topic;
  std::string client_id;
  security::ClientSecurity security;
  // Built from `security` by Build(); every channel to a node uses it.
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  Subscriber::MessageHandler on_message;
  int handler_threads = 4;
  Subscriber::ErrorHandler on_error;
  Subscriber::ReceiptFailureHandler on_receipt_failure;
  int max_ack_batch = 500;
  std::chrono::milliseconds max_ack_delay{5};
  std::chrono::milliseconds max_extension{3'600'000};
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{5'000};
  std::chrono::milliseconds close_timeout{30'000};
};

// OK, or INVALID_ARGUMENT naming the first bad option (by its Builder name).
absl::Status Validate(const SubscriberOptions& options);

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_SUBSCRIBER_OPTIONS_H_
