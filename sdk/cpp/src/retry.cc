#include "retry.h"

#include <grpcpp/support/status.h>

namespace ferry::client::internal {

bool Retryable(int code, std::optional<bool> node_says) {
  if (code == static_cast<int>(grpc::StatusCode::OK)) return false;
  if (node_says.has_value()) return *node_says;
  switch (static_cast<grpc::StatusCode>(code)) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::CANCELLED:
      return true;
    default:
      return false;
  }
}

}  // namespace ferry::client::internal
