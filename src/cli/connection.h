#pragma once

#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "ferry/client/security.h"
#include "security/client_credentials.h"

namespace ferry::cli {

// Options every command shares.
struct GlobalOptions {
  std::string server = "127.0.0.1:7400";  // --server / FERRY_SERVER
  absl::Duration timeout = absl::Seconds(10);
  security::ClientSecurity security = {};  // --tls, --tls-ca, ..., --token
  // Built from `security` by PrepareCredentials before any command runs.
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
};

// Adds --tls, --tls-ca, --tls-cert, --tls-key and --token (FERRY_TLS_CA, ...,
// FERRY_TOKEN) to `app`.
void AddSecurityOptions(CLI::App& app, GlobalOptions& options);

// Builds options.credentials; prints the problem and returns false when the
// files or the token cannot be used.
bool PrepareCredentials(GlobalOptions& options);

// The command chosen on the command line; returns the process exit code.
using Command = std::function<int()>;

std::shared_ptr<grpc::Channel> Connect(const GlobalOptions& options);

// The same settings for the SDK (produce, consume).
client::Security SdkSecurity(const GlobalOptions& options);

// A client context whose deadline is now + options.timeout.
std::unique_ptr<grpc::ClientContext> NewContext(const GlobalOptions& options);

// One line for stderr: "ferry: <what>: <server>: <gRPC code>: <message>",
// with a hint when the node is not reachable.
std::string DescribeError(const GlobalOptions& options, std::string_view what,
                          const grpc::Status& status);

// Prints DescribeError to stderr; returns exit code 1.
int Fail(const GlobalOptions& options, std::string_view what, const grpc::Status& status);

// Admin calls (topics, groups) are bounded by the node's admin timeout (30 s
// by default) and may wait for the control topic; the CLI waits a little
// longer, so a slow cluster is reported with the node's reason rather than
// the CLI's own deadline.
GlobalOptions WithAdminDeadline(const GlobalOptions& options);

// An offset for tables: "-" for none (negative).
std::string Offset(int64_t offset);

}  // namespace ferry::cli
