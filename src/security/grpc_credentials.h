#pragma once

#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "config/config.h"

namespace ferry::security {

// Credentials for the gRPC listener: plain text when listen.tls is off, else
// TLS from the listen.tls.* files, which gRPC's file watcher reads again every
// refresh_interval (new handshakes get the new certificate; established
// connections and their streams continue). With listen.tls.client_ca, a
// client certificate must be signed by it, and is required unless
// `certificate_optional` (auth.enabled: a bearer token may stand instead). Check the
// files with TlsMaterial::Load first: gRPC reports unusable files only in its log.
std::shared_ptr<grpc::ServerCredentials> GrpcServerCredentials(
    const config::TlsConfig& tls, bool certificate_optional);

}  // namespace ferry::security
