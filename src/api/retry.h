#pragma once

// The retry decision for a status that Ferry produced itself (call checks,
// the in-flight limit, topic auto-creation, shutdown, the embedded store...),
// as opposed to one translated from a librdkafka error: those are classified
// per error by backend::kafka::Classify (backend/kafka/errors.h), which
// knows more than the code, e.g. that a rebalance in progress is worth
// retrying although it maps to FAILED_PRECONDITION (kafka/errors_test.cc
// checks that the two agree on every other librdkafka error).
//
// Every place in ferryd that answers a status with a `retryable` flag and
// has no backend outcome to take it from asks this function, so clients get
// one answer per code:
//
//   api::ToProtoStatus(status, api::IsRetryable(status.code()), &out);
//
// The SDKs take the flag from the node (ferry.v1.Status.retryable) and fall
// back to a table of their own only for failures the node did not describe
// (a call that failed as a whole, a node that is unreachable).

#include "absl/status/status.h"

namespace ferry::api {

// True when sending the same item again, to this or another node and possibly
// after a delay, may succeed: UNAVAILABLE (cluster or node down, shutting
// down), DEADLINE_EXCEEDED (no answer in time; the item may or may not have
// been written, which the ferry.id header lets consumers de-duplicate),
// RESOURCE_EXHAUSTED (in-flight limit, quota, full queue) and ABORTED (the
// operation was abandoned, e.g. a producer reset). False for OK, for every
// other code (the same request would fail the same way, or its fate is
// unknown: UNKNOWN, INTERNAL, DATA_LOSS) and for values this version does
// not know.
bool IsRetryable(absl::StatusCode code);

// True when a publish that failed with `code` says its cluster is unhealthy,
// so the failure counts towards opening the cluster's circuit breaker
// (routing/circuit_breaker.h): UNAVAILABLE (unreachable, no leader, not enough
// replicas) and DEADLINE_EXCEEDED (the cluster did not answer in time). Never
// for a message the cluster rejected (INVALID_ARGUMENT, e.g. too large), a
// missing topic, a refused permission or flow control, which move no traffic.
// Like IsRetryable, this is the decision for statuses Ferry produced itself;
// librdkafka errors are decided per error by backend::kafka::Classify, which
// errors_test checks against this.
bool CountsAgainstCluster(absl::StatusCode code);

}  // namespace ferry::api
