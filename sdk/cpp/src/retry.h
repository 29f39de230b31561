// The SDK's one retry decision.
#ifndef FERRY_CLIENT_SRC_RETRY_H_
#define FERRY_CLIENT_SRC_RETRY_H_

#include <optional>

namespace ferry::client::internal {

// True when publishing the same message again (later, or on another node) may
// succeed. `code` is a gRPC status code number (0 OK is never retryable).
//
// `node_says` is the node's own decision, ferry.v1.Status.retryable, which
// ferryd makes in its error tables (src/api/retry.h for its own statuses,
// src/backend/kafka/errors.h for librdkafka's): pass it whenever the node
// answered with a ferry.v1.Status (a message's result, a PublishStream
// batch error) and it wins. Without it (a call that failed as a whole with a
// bare gRPC status, a node that could not be reached, a failure the SDK made
// itself) the code decides: UNAVAILABLE, DEADLINE_EXCEEDED,
// RESOURCE_EXHAUSTED and ABORTED, as in ferryd's table, plus CANCELLED, which
// the SDK sees only when a node goes away mid-call (e.g. a ferryd shutting
// down cancels what its grace period did not finish; the calls the publisher
// cancels itself on Close are handled before this is asked). Codes this
// version does not know are not retryable.
bool Retryable(int code, std::optional<bool> node_says = std::nullopt);

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_RETRY_H_
