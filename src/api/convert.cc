#include "api/convert.h"

namespace ferry::api {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

void ToProtoStatus(const absl::Status& status, bool retryable, v1::Status* out) {
  out->set_code(static_cast<int32_t>(status.code()));
  out->set_message(std::string(status.message()));
  out->set_retryable(!status.ok() && retryable);
}

int64_t ToUnixMillis(const google::protobuf::Timestamp& timestamp) {
  return timestamp.seconds() * 1000 + timestamp.nanos() / 1'000'000;
}

void FromUnixMillis(int64_t millis, google::protobuf::Timestamp* out) {
  int64_t seconds = millis / 1000;
  int64_t rest = millis % 1000;
  if (rest < 0) {
    rest += 1000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rest * 1'000'000));
}

}  // namespace ferry::api
