#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "config/config.h"

namespace ferry::security {

// A listener's certificate chain, private key and (for mutual TLS) the CAs
// client certificates must chain to, parsed from listen.tls.* PEM files.
// Immutable once loaded; share it between threads through the shared_ptr.
class TlsMaterial {
 public:
  // Reads and checks the files: INVALID_ARGUMENT naming the key and path
  // when one is missing, holds no PEM object, or the key does not match the
  // certificate.
  static absl::StatusOr<std::shared_ptr<const TlsMaterial>> Load(
      const config::TlsConfig& tls);

  ~TlsMaterial();
  TlsMaterial(const TlsMaterial&) = delete;
  TlsMaterial& operator=(const TlsMaterial&) = delete;

  // Sets certificate, key and, with client CAs, peer verification on one
  // connection before its handshake; a client certificate is required
  // unless `certificate_optional`. False when OpenSSL refuses.
  bool ApplyTo(SSL* ssl, bool certificate_optional) const;

 private:
  TlsMaterial() = default;

  X509* leaf_ = nullptr;
  STACK_OF(X509) * chain_ = nullptr;  // intermediates after the leaf
  EVP_PKEY* key_ = nullptr;
  X509_STORE* client_cas_ = nullptr;  // null: no client certificates asked for
};

}  // namespace ferry::security
