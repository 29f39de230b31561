#include "security/grpc_credentials.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

namespace ferry::security {

std::shared_ptr<grpc::ServerCredentials> GrpcServerCredentials(
    const config::TlsConfig& tls, bool certificate_optional) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  const auto refresh_seconds =
      static_cast<unsigned int>(absl::ToInt64Seconds(tls.refresh_interval));
  auto provider =
      tls.client_ca.empty()
          ? std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                tls.key, tls.cert, refresh_seconds)
          : std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                tls.key, tls.cert, tls.client_ca, refresh_seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!tls.client_ca.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(
        certificate_optional
            ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace ferry::security
