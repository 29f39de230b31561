#include "api/convert.h"

#include <gtest/gtest.h>

namespace ferry::api {
namespace {

TEST(Convert, StatusCodesKeepTheirNumbers) {
  grpc::Status s = ToGrpcStatus(absl::NotFoundError("no topic"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "no topic");
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());

  v1::Status proto;
  ToProtoStatus(absl::UnavailableError("down"), /*retryable=*/true, &proto);
  EXPECT_EQ(proto.code(), 14);
  EXPECT_TRUE(proto.retryable());
  ToProtoStatus(absl::OkStatus(), /*retryable=*/true, &proto);
  EXPECT_EQ(proto.code(), 0);
  EXPECT_FALSE(proto.retryable());
}

TEST(Convert, MillisecondTimestampsRoundTripIncludingBeforeTheEpoch) {
  google::protobuf::Timestamp t;
  for (int64_t ms : {int64_t{0}, int64_t{1700000000123}, int64_t{-1}, int64_t{-1500}}) {
    FromUnixMillis(ms, &t);
    EXPECT_GE(t.nanos(), 0);
    EXPECT_EQ(ToUnixMillis(t), ms);
  }
}

}  // namespace
}  // namespace ferry::api
