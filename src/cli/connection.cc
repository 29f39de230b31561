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

void AddSecurityOptions(CLI::App& app, GlobalOptions& options) {
  security::ClientSecurity& security = options.security;
  app.add_flag("--tls", security.tls,
               "Connect with TLS, trusting the system's CAs (implied by --tls-*)")
      ->envname("FERRY_TLS");
  app.add_option("--tls-ca", security.ca_file,
                 "PEM file of the CA that signed the node's certificate")
      ->envname("FERRY_TLS_CA");
  app.add_option("--tls-cert", security.cert_file,
                 "PEM client certificate, for nodes with mutual TLS")
      ->envname("FERRY_TLS_CERT");
  app.add_option("--tls-key", security.key_file, "PEM key of --tls-cert")
      ->envname("FERRY_TLS_KEY");
  app.add_option("--token", security.token,
                 "Bearer token (prefer FERRY_TOKEN: arguments show in ps)")
      ->envname("FERRY_TOKEN");
}

bool PrepareCredentials(GlobalOptions& options) {
  auto credentials = security::ClientCredentials(options.security);
  if (!credentials.ok()) {
    std::cerr << "ferry: " << credentials.status().message() << "\n";
    return false;
  }
  options.credentials = *std::move(credentials);
  return true;
}

std::shared_ptr<grpc::Channel> Connect(const GlobalOptions& options) {
  return grpc::CreateChannel(options.server, options.credentials);
}

client::Security SdkSecurity(const GlobalOptions& options) {
  const security::ClientSecurity& s = options.security;
  return {.tls = s.tls,
          .ca_file = s.ca_file,
          .cert_file = s.cert_file,
          .key_file = s.key_file,
          .token = s.token};
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
