#include "backend/kafka/errors.h"

#include <fmt/format.h>

#include <string>

namespace ferry::backend::kafka {
namespace {

constexpr ErrorClass Retryable(absl::StatusCode code) { return {code, true}; }
constexpr ErrorClass Final(absl::StatusCode code) { return {code, false}; }
// Retryable, and a sign that the cluster is unhealthy.
constexpr ErrorClass Unhealthy(absl::StatusCode code) { return {code, true, true}; }

}  // namespace

// Every enumerator is listed and there is no `default:`, so -Wswitch (an error
// here) names each code a newer librdkafka adds. Values outside the enum fall
// out of the switch to the fallback at the end.
ErrorClass Classify(rd_kafka_resp_err_t err) {
  using absl::StatusCode;
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return Final(StatusCode::kOk);

    // The cluster, a broker or a leader cannot take the request right now.
    // librdkafka already retried within message.timeout.ms; the client may
    // resend, possibly through another node that reaches the cluster.
    // __MSG_TIMED_OUT is librdkafka giving up on an unreachable cluster, which
    // Ferry reports as UNAVAILABLE: DEADLINE_EXCEEDED belongs to the client's
    // own gRPC deadline. (KafkaCluster does not count it against a cluster
    // that acknowledged other records while this one waited: a busy queue.)
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__FAIL:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__ISR_INSUFF:
    case RD_KAFKA_RESP_ERR__NODE_UPDATE:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__WAIT_CACHE:
    case RD_KAFKA_RESP_ERR__UNKNOWN_BROKER:
    // A truncated response, and librdkafka asking for another attempt.
    case RD_KAFKA_RESP_ERR__PARTIAL:
    case RD_KAFKA_RESP_ERR__RETRY:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_NOT_CONTROLLER:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_REASSIGNMENT_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_FETCH_SESSION_ID_NOT_FOUND:
    case RD_KAFKA_RESP_ERR_INVALID_FETCH_SESSION_EPOCH:
    // A broker without the requested listener is typical of a rolling restart.
    case RD_KAFKA_RESP_ERR_LISTENER_NOT_FOUND:
    case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_PREFERRED_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT:
      return Unhealthy(StatusCode::kUnavailable);

    // This node is shutting down (handle destroyed, queues purged, blocking
    // calls interrupted); another node can take the message.
    case RD_KAFKA_RESP_ERR__DESTROY:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__INTR:
      return Retryable(StatusCode::kUnavailable);

    // A bounded wait for the cluster or the broker ran out (a broker's
    // REQUEST_TIMED_OUT: e.g. replicas slow to acknowledge acks=all).
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      return Unhealthy(StatusCode::kDeadlineExceeded);
    // A wait on a local queue inside this node ran out; the cluster itself may
    // be fine.
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
      return Retryable(StatusCode::kDeadlineExceeded);

    // Flow control: the local queue or a broker quota is full for now.
    // __CRIT_SYS_RESOURCE (no threads or descriptors left) is local to this
    // node, so another node or a later attempt may succeed.
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE:
    case RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED:
      return Retryable(StatusCode::kResourceExhausted);

    // A configured cap, not a transient overload: waiting does not free a slot
    // unless other members leave.
    case RD_KAFKA_RESP_ERR_GROUP_MAX_SIZE_REACHED:
      return Final(StatusCode::kResourceExhausted);

    // The idempotent producer lost its sequence/epoch state (or was fenced).
    // The backend recreates its producer, so the client's resend goes through
    // a fresh one. DUPLICATE_SEQUENCE_NUMBER is normally absorbed by
    // librdkafka as a success; if it surfaces the outcome is uncertain, and a
    // resend is what at-least-once delivery (plus the `ferry.id` header)
    // expects. The transactional ones and OPERATION_NOT_ATTEMPTED (this item
    // was skipped because another one of the request failed) likewise succeed
    // when sent again.
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__INCONSISTENT:
    case RD_KAFKA_RESP_ERR__GAPLESS_GUARANTEE:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_DUPLICATE_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_TXN_STATE:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_ID_MAPPING:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
    case RD_KAFKA_RESP_ERR_OPERATION_NOT_ATTEMPTED:
    // Another operation on the same handle is still running.
    case RD_KAFKA_RESP_ERR__IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS:
      return Retryable(StatusCode::kAborted);

    // The consumer's group membership or assignment changed under it.
    // librdkafka rejoins the group by itself, so the same request after the
    // rebalance can succeed. (Receipts that expired in a rebalance are
    // Ferry's own decision, not this table's.)
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
    case RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST:
    case RD_KAFKA_RESP_ERR__MAX_POLL_EXCEEDED:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_MEMBER_ID_REQUIRED:
      return Retryable(StatusCode::kFailedPrecondition);

    // The handle, the group or the cluster is in a state that refuses the
    // operation and does not change by itself: API use the handle's state or
    // configuration does not allow (mostly a Ferry bug or a missing setting),
    // group members that disagree, a static member fenced by a twin with the
    // same group.instance.id, admin requests that are moot.
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__CONFLICT:
    case RD_KAFKA_RESP_ERR__EXISTING_SUBSCRIPTION:
    case RD_KAFKA_RESP_ERR__NOT_CONFIGURED:
    case RD_KAFKA_RESP_ERR_INCONSISTENT_GROUP_PROTOCOL:
    case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
    case RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP:
    case RD_KAFKA_RESP_ERR_GROUP_SUBSCRIBED_TO_TOPIC:
    case RD_KAFKA_RESP_ERR_ELECTION_NOT_NEEDED:
    case RD_KAFKA_RESP_ERR_NO_REASSIGNMENT_IN_PROGRESS:
      return Final(StatusCode::kFailedPrecondition);

    // The named topic, group, log directory or resource does not exist.
    // Creating it is an operator's decision, so resending does not help.
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_GROUP:
    case RD_KAFKA_RESP_ERR__NOENT:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_LOG_DIR_NOT_FOUND:
    case RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND:
    case RD_KAFKA_RESP_ERR_RESOURCE_NOT_FOUND:
      return Final(StatusCode::kNotFound);

    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
      return Final(StatusCode::kAlreadyExists);

    // The request itself is unacceptable: sizes, names, timestamps, records,
    // topic or group settings, whether they came from the client or from the
    // cluster's configured properties. The same bytes fail again anywhere.
    // A partition that is not in the topic (__UNKNOWN_PARTITION) is a bad
    // argument, unlike an unknown topic. DUPLICATE_RESOURCE means one request
    // named the same resource twice (a malformed request, not an existing
    // one), and UNACCEPTABLE_CREDENTIAL rejects a credential being *set*, not
    // Ferry's login.
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__INVALID_TYPE:
    case RD_KAFKA_RESP_ERR__KEY_SERIALIZATION:
    case RD_KAFKA_RESP_ERR__VALUE_SERIALIZATION:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_INVALID_GROUP_ID:
    case RD_KAFKA_RESP_ERR_INVALID_SESSION_TIMEOUT:
    case RD_KAFKA_RESP_ERR_INVALID_COMMIT_OFFSET_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICA_ASSIGNMENT:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_REQUEST:
    case RD_KAFKA_RESP_ERR_INVALID_TRANSACTION_TIMEOUT:
    case RD_KAFKA_RESP_ERR_INVALID_PRINCIPAL_TYPE:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_DUPLICATE_RESOURCE:
    case RD_KAFKA_RESP_ERR_UNACCEPTABLE_CREDENTIAL:
    case RD_KAFKA_RESP_ERR_INVALID_UPDATE_VERSION:
      return Final(StatusCode::kInvalidArgument);

    // Authorization or cluster policy forbids the operation.
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_DELEGATION_TOKEN_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_DELEGATION_TOKEN_OWNER_MISMATCH:
    case RD_KAFKA_RESP_ERR_DELEGATION_TOKEN_REQUEST_NOT_ALLOWED:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_TOPIC_DELETION_DISABLED:
    case RD_KAFKA_RESP_ERR_SECURITY_DISABLED:
    case RD_KAFKA_RESP_ERR_DELEGATION_TOKEN_AUTH_DISABLED:
      return Final(StatusCode::kPermissionDenied);

    // The cluster rejected Ferry's own credentials (SASL, TLS, delegation
    // token). Only an operator can fix that.
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM:
    case RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_DELEGATION_TOKEN_NOT_FOUND:
    case RD_KAFKA_RESP_ERR_DELEGATION_TOKEN_EXPIRED:
      return Final(StatusCode::kUnauthenticated);

    // The broker or librdkafka cannot do this at all (protocol version,
    // message format, feature).
    case RD_KAFKA_RESP_ERR__UNKNOWN_PROTOCOL:
    case RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED:
    case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
      return Final(StatusCode::kUnimplemented);

    // The requested offset is gone (retention) or not yet written; with
    // auto.offset.reset=error librdkafka reports it as __AUTO_OFFSET_RESET.
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
      return Final(StatusCode::kOutOfRange);

    // Stored data that cannot be read back (corrupt or undecodable); it is the
    // same on every read.
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR__BAD_COMPRESSION:
    case RD_KAFKA_RESP_ERR__KEY_DESERIALIZATION:
    case RD_KAFKA_RESP_ERR__VALUE_DESERIALIZATION:
      return Final(StatusCode::kDataLoss);

    // Informational signals (end of partition, nothing stored, nothing done,
    // superseded operation) that the backend consumes itself; one reaching a
    // client is a Ferry bug. Likewise local failures only a bug in Ferry or
    // librdkafka produces (parsing underflow, writing read-only headers, local
    // files, Ferry's own __APPLICATION errors), the enum's range markers, and
    // broker-to-broker (controller, KRaft) codes a client is never sent.
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
    case RD_KAFKA_RESP_ERR__NO_OFFSET:
    case RD_KAFKA_RESP_ERR__NOOP:
    case RD_KAFKA_RESP_ERR__OUTDATED:
    case RD_KAFKA_RESP_ERR__UNDERFLOW:
    case RD_KAFKA_RESP_ERR__READ_ONLY:
    case RD_KAFKA_RESP_ERR__FS:
    case RD_KAFKA_RESP_ERR__APPLICATION:
    case RD_KAFKA_RESP_ERR__BEGIN:
    case RD_KAFKA_RESP_ERR__END:
    case RD_KAFKA_RESP_ERR_END_ALL:
    case RD_KAFKA_RESP_ERR_STALE_CTRL_EPOCH:
    case RD_KAFKA_RESP_ERR_TRANSACTION_COORDINATOR_FENCED:
    case RD_KAFKA_RESP_ERR_STALE_BROKER_EPOCH:
    case RD_KAFKA_RESP_ERR_INCONSISTENT_VOTER_SET:
    case RD_KAFKA_RESP_ERR_FEATURE_UPDATE_FAILED:
    case RD_KAFKA_RESP_ERR_PRINCIPAL_DESERIALIZATION_FAILURE:
      return Final(StatusCode::kInternal);

    case RD_KAFKA_RESP_ERR_UNKNOWN:
      return Final(StatusCode::kUnknown);
  }
  // Not an enumerator of the librdkafka this was built with. Broker codes are
  // positive and could mean anything; local codes are negative and come from
  // librdkafka itself.
  return Final(err < 0 ? StatusCode::kInternal : StatusCode::kUnknown);
}

absl::Status KafkaStatus(rd_kafka_resp_err_t err, std::string_view context) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  std::string message =
      fmt::format("{}: {}", rd_kafka_err2name(err), rd_kafka_err2str(err));
  if (!context.empty()) message = fmt::format("{}: {}", context, message);
  return absl::Status(Classify(err).code, message);
}

}  // namespace ferry::backend::kafka
