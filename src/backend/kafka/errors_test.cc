#include "backend/kafka/errors.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "api/retry.h"

namespace ferry::backend::kafka {
namespace {

using absl::StatusCode;

// Every code the linked librdkafka has a name for, the range markers included.
// The table has unnamed holes between the local and the broker codes.
std::vector<rd_kafka_resp_err_t> AllKnownCodes() {
  const rd_kafka_err_desc* descs = nullptr;
  size_t count = 0;
  rd_kafka_get_err_descs(&descs, &count);
  std::vector<rd_kafka_resp_err_t> codes;
  for (const rd_kafka_err_desc& desc : std::span(descs, count)) {
    if (desc.name != nullptr) codes.push_back(desc.code);
  }
  return codes;
}

std::string Name(rd_kafka_resp_err_t err) { return rd_kafka_err2name(err); }

// Not enumerators of this librdkafka, but inside the enum's value range
// (-256..255), as a newer librdkafka's codes would be. A cast from e.g. 9999
// would be undefined behaviour.
constexpr auto kFutureBrokerCode = static_cast<rd_kafka_resp_err_t>(200);
constexpr auto kFutureLocalCode = static_cast<rd_kafka_resp_err_t>(-120);

TEST(KafkaErrors, LibrdkafkaKnowsBothLocalAndBrokerCodes) {
  auto codes = AllKnownCodes();
  EXPECT_THAT(codes, ::testing::Contains(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT));
  EXPECT_THAT(codes, ::testing::Contains(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE));
  EXPECT_GT(codes.size(), 150u);
}

TEST(KafkaErrors, GivenNoErrorClassifyGivesOkAndKafkaStatusIsOk) {
  ErrorClass c = Classify(RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(c.code, StatusCode::kOk);
  EXPECT_FALSE(c.retryable);
  EXPECT_TRUE(KafkaStatus(RD_KAFKA_RESP_ERR_NO_ERROR, "produce").ok());
  EXPECT_TRUE(KafkaStatus(RD_KAFKA_RESP_ERR_NO_ERROR).ok());
}

TEST(KafkaErrors, GivenAnyNonZeroCodeClassifyNeverGivesOk) {
  for (rd_kafka_resp_err_t err : AllKnownCodes()) {
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    EXPECT_NE(Classify(err).code, StatusCode::kOk) << Name(err);
    EXPECT_FALSE(KafkaStatus(err).ok()) << Name(err);
  }
}

TEST(KafkaErrors, GivenAnyRetryableCodeItsStatusIsOneThatInvitesARetry) {
  for (rd_kafka_resp_err_t err : AllKnownCodes()) {
    ErrorClass c = Classify(err);
    if (!c.retryable) continue;
    EXPECT_THAT(c.code,
                ::testing::AnyOf(StatusCode::kUnavailable, StatusCode::kDeadlineExceeded,
                                 StatusCode::kResourceExhausted, StatusCode::kAborted,
                                 StatusCode::kFailedPrecondition))
        << Name(err);
  }
}

// This table decides per librdkafka error; every other status Ferry answers
// is decided by api::IsRetryable from its code alone. They must agree, so a
// client sees the same flag for the same code whichever path produced it.
// Deliberate differences, where the error says more than its code: group
// errors that mean "rejoin and try again" map to FAILED_PRECONDITION and are
// retryable here, and GROUP_MAX_SIZE_REACHED is a configured cap
// (RESOURCE_EXHAUSTED) that waiting does not lift.
TEST(KafkaErrors, GivenAnyCodeItsRetryDecisionAgreesWithFerrysTableForItsStatusCode) {
  for (rd_kafka_resp_err_t err : AllKnownCodes()) {
    const ErrorClass c = Classify(err);
    if (c.code == StatusCode::kOk) continue;
    if (c.retryable && c.code == StatusCode::kFailedPrecondition) continue;
    if (err == RD_KAFKA_RESP_ERR_GROUP_MAX_SIZE_REACHED) continue;
    EXPECT_EQ(c.retryable, api::IsRetryable(c.code))
        << Name(err) << " -> " << absl::StatusCodeToString(c.code);
  }
}

// The breaker's decision likewise agrees with api::CountsAgainstCluster for
// every code, except where the error says more than its code: Ferry's own
// purge and shutdown (UNAVAILABLE so clients resend elsewhere, but the cluster
// is fine) and a timed-out wait on a local queue.
TEST(KafkaErrors, GivenAnyCodeItsClusterHealthDecisionAgreesWithFerrysTable) {
  const std::set<rd_kafka_resp_err_t> ferrys_own = {
      RD_KAFKA_RESP_ERR__DESTROY, RD_KAFKA_RESP_ERR__PURGE_QUEUE,
      RD_KAFKA_RESP_ERR__PURGE_INFLIGHT, RD_KAFKA_RESP_ERR__INTR,
      RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE};
  for (rd_kafka_resp_err_t err : AllKnownCodes()) {
    const ErrorClass c = Classify(err);
    if (ferrys_own.contains(err)) {
      EXPECT_FALSE(c.counts_against_cluster) << Name(err);
      continue;
    }
    EXPECT_EQ(c.counts_against_cluster, api::CountsAgainstCluster(c.code))
        << Name(err) << " -> " << absl::StatusCodeToString(c.code);
  }
}

TEST(KafkaErrors, GivenAnUnhealthyClusterItsErrorsCountAndRejectedMessagesDoNot) {
  for (rd_kafka_resp_err_t err :
       {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR__TRANSPORT,
        RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT}) {
    EXPECT_TRUE(Classify(err).counts_against_cluster) << Name(err);
  }
  for (rd_kafka_resp_err_t err :
       {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_MSG,
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR__QUEUE_FULL,
        RD_KAFKA_RESP_ERR__PURGE_INFLIGHT, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
        kFutureBrokerCode}) {
    EXPECT_FALSE(Classify(err).counts_against_cluster) << Name(err);
  }
}

TEST(KafkaErrors, GivenAnyCodeKafkaStatusCarriesItsClassAndNameAndDescription) {
  for (rd_kafka_resp_err_t err : AllKnownCodes()) {
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    absl::Status status = KafkaStatus(err, "produce to orders");
    EXPECT_EQ(status.code(), Classify(err).code) << Name(err);
    EXPECT_EQ(std::string(status.message()),
              fmt::format("produce to orders: {}: {}", rd_kafka_err2name(err),
                          rd_kafka_err2str(err)));
  }
}

TEST(KafkaErrors, GivenContextKafkaStatusPrefixesIt) {
  absl::Status status =
      KafkaStatus(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, "produce to orders");
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(std::string(status.message()),
            "produce to orders: _MSG_TIMED_OUT: Local: Message timed out");
}

TEST(KafkaErrors, GivenNoContextKafkaStatusOmitsTheSeparator) {
  absl::Status status = KafkaStatus(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()),
            "MSG_SIZE_TOO_LARGE: Broker: Message size too large");
}

struct Expected {
  rd_kafka_resp_err_t err;
  StatusCode code;
  bool retryable;
};

class KafkaErrorDecision : public ::testing::TestWithParam<Expected> {};

TEST_P(KafkaErrorDecision, GivenCodeClassifyGivesTheDesignedClass) {
  const Expected& expected = GetParam();
  ErrorClass c = Classify(expected.err);
  EXPECT_EQ(c.code, expected.code) << Name(expected.err);
  EXPECT_EQ(c.retryable, expected.retryable) << Name(expected.err);
}

INSTANTIATE_TEST_SUITE_P(
    KafkaErrors, KafkaErrorDecision,
    ::testing::Values(
        // An unreachable cluster is UNAVAILABLE, not DEADLINE_EXCEEDED.
        Expected{RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, StatusCode::kUnavailable, true},
        Expected{RD_KAFKA_RESP_ERR__TRANSPORT, StatusCode::kUnavailable, true},
        Expected{RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, StatusCode::kUnavailable, true},
        Expected{RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, StatusCode::kUnavailable,
                 true},
        Expected{RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, StatusCode::kUnavailable, true},
        Expected{RD_KAFKA_RESP_ERR__PURGE_INFLIGHT, StatusCode::kUnavailable, true},
        Expected{RD_KAFKA_RESP_ERR__DESTROY, StatusCode::kUnavailable, true},
        Expected{RD_KAFKA_RESP_ERR__TIMED_OUT, StatusCode::kDeadlineExceeded, true},
        Expected{RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, StatusCode::kDeadlineExceeded,
                 true},
        Expected{RD_KAFKA_RESP_ERR__QUEUE_FULL, StatusCode::kResourceExhausted, true},
        Expected{RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED,
                 StatusCode::kResourceExhausted, true},
        Expected{RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, StatusCode::kNotFound, false},
        Expected{RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, StatusCode::kNotFound, false},
        Expected{RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND, StatusCode::kNotFound, false},
        Expected{RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION, StatusCode::kInvalidArgument,
                 false},
        Expected{RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, StatusCode::kInvalidArgument,
                 false},
        Expected{RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE, StatusCode::kInvalidArgument, false},
        Expected{RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE, StatusCode::kInvalidArgument,
                 false},
        Expected{RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION, StatusCode::kInvalidArgument, false},
        Expected{RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS, StatusCode::kAlreadyExists,
                 false},
        Expected{RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                 StatusCode::kPermissionDenied, false},
        Expected{RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED,
                 StatusCode::kUnauthenticated, false},
        Expected{RD_KAFKA_RESP_ERR__SSL, StatusCode::kUnauthenticated, false},
        // The backend recreates its producer; the client resends.
        Expected{RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, StatusCode::kAborted,
                 true},
        Expected{RD_KAFKA_RESP_ERR_DUPLICATE_SEQUENCE_NUMBER, StatusCode::kAborted, true},
        Expected{RD_KAFKA_RESP_ERR__FATAL, StatusCode::kAborted, true},
        Expected{RD_KAFKA_RESP_ERR_PRODUCER_FENCED, StatusCode::kAborted, true},
        Expected{RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION, StatusCode::kUnimplemented,
                 false},
        Expected{RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION, StatusCode::kFailedPrecondition,
                 true},
        Expected{RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST, StatusCode::kFailedPrecondition,
                 true},
        Expected{RD_KAFKA_RESP_ERR__STATE, StatusCode::kFailedPrecondition, false},
        Expected{RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE, StatusCode::kOutOfRange, false},
        Expected{RD_KAFKA_RESP_ERR__PARTITION_EOF, StatusCode::kInternal, false},
        Expected{RD_KAFKA_RESP_ERR__NO_OFFSET, StatusCode::kInternal, false},
        Expected{RD_KAFKA_RESP_ERR_UNKNOWN, StatusCode::kUnknown, false},
        Expected{kFutureBrokerCode, StatusCode::kUnknown, false},
        Expected{kFutureLocalCode, StatusCode::kInternal, false}),
    [](const ::testing::TestParamInfo<Expected>& info) {
      // gtest allows only alphanumerics; codes without a name are "ERR_-120?".
      std::string name;
      for (char c : Name(info.param.err)) {
        if (std::isalnum(static_cast<unsigned char>(c))) name += c;
      }
      return name;
    });

}  // namespace
}  // namespace ferry::backend::kafka
