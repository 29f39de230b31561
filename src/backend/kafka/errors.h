#pragma once

#include <librdkafka/rdkafka.h>

#include <string_view>

#include "absl/status/status.h"

namespace ferry::backend::kafka {

// How Ferry treats a librdkafka error. `code` is an absl::StatusCode whose
// numeric value equals the gRPC status code sent to clients.
struct ErrorClass {
  absl::StatusCode code;
  // True when sending the same message again (to this or another node,
  // possibly after a delay) may succeed.
  bool retryable;
  // True when the error says the cluster is unhealthy (unreachable, no
  // leader, not enough replicas, timed out), so it counts towards opening the
  // cluster's circuit breaker (routing/circuit_breaker.h). Never for a
  // rejected message or for Ferry's own purge at shutdown.
  bool counts_against_cluster = false;
};

// The single table for every rd_kafka_resp_err_t value (local __ errors and
// broker errors). Unknown/future codes: UNKNOWN, not retryable (negative local
// codes: INTERNAL, not retryable).
ErrorClass Classify(rd_kafka_resp_err_t err);

// OK for RD_KAFKA_RESP_ERR_NO_ERROR; otherwise a Status with
// Classify(err).code and message
// "<context>: <rd_kafka_err2name(err)>: <rd_kafka_err2str(err)>" (context
// omitted with its ": " when empty).
absl::Status KafkaStatus(rd_kafka_resp_err_t err, std::string_view context = {});

}  // namespace ferry::backend::kafka
