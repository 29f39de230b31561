#include "cli/connection.h"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>

namespace ferry::cli {
namespace {

std::string_view CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNRECOGNIZED";
  }
}

}  // namespace

std::shared_ptr<grpc::Channel> Connect(const GlobalOptions& options) {
  return grpc::CreateChannel(options.server, grpc::InsecureChannelCredentials());
}

std::unique_ptr<grpc::ClientContext> NewContext(const GlobalOptions& options) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoMilliseconds(options.timeout));
  return context;
}

std::string DescribeError(const GlobalOptions& options, std::string_view what,
                          const grpc::Status& status) {
  std::string line = fmt::format("ferry: {}: {}: {}: {}", what, options.server,
                                 CodeName(status.error_code()), status.error_message());
  // The hint is for a node that cannot be reached, not for a reachable node
  // reporting that one of its clusters is down.
  const bool unreachable = status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                           (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
                            status.error_message().find("connect") != std::string::npos);
  if (unreachable) {
    line += " (is ferryd running there? set --server or FERRY_SERVER)";
  }
  return line;
}

int Fail(const GlobalOptions& options, std::string_view what,
         const grpc::Status& status) {
  std::cerr << DescribeError(options, what, status) << "\n";
  return 1;
}

GlobalOptions WithAdminDeadline(const GlobalOptions& options) {
  GlobalOptions out = options;
  out.timeout = std::max(out.timeout, absl::Seconds(40));
  return out;
}

std::string Offset(int64_t offset) { return offset < 0 ? "-" : std::to_string(offset); }

}  // namespace ferry::cli
