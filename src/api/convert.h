#pragma once

// Conversions between Ferry's internal types and the ferry.v1 protobuf API.

#include <grpcpp/support/status.h>

#include <cstdint>

#include "absl/status/status.h"
#include "ferry/v1/common.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace ferry::api {

// absl and gRPC status codes share their numbering.
grpc::Status ToGrpcStatus(const absl::Status& status);

void ToProtoStatus(const absl::Status& status, bool retryable, v1::Status* out);

int64_t ToUnixMillis(const google::protobuf::Timestamp& timestamp);
void FromUnixMillis(int64_t millis, google::protobuf::Timestamp* out);

}  // namespace ferry::api
