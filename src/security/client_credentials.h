#pragma once

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace ferry::security {

// How a client (CLI, C++ SDK) reaches ferryd: plain text, TLS, mutual TLS,
// and an optional bearer token.
struct ClientSecurity {
  bool tls = false;  // implied by any file below
  std::string ca_file =
      {};  // PEM CAs the node's certificate must chain to; empty: system roots
  std::string cert_file = {};  // PEM client certificate (mutual TLS), with key_file
  std::string key_file = {};
  std::string token = {};  // sent as "authorization: Bearer <token>"; needs TLS
};

// Channel credentials for `security`. INVALID_ARGUMENT names the problem: an
// unreadable file, a certificate without its key (or the reverse), or a
// token without TLS (tokens never travel in clear text).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const ClientSecurity& security);

}  // namespace ferry::security
