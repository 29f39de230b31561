#include "security/tls_material.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>

namespace ferry::security {
namespace {

struct FileCloser {
  void operator()(FILE* file) const { fclose(file); }
};
using File = std::unique_ptr<FILE, FileCloser>;

absl::StatusOr<File> Open(std::string_view key, const std::string& path) {
  File file(fopen(path.c_str(), "r"));
  if (file == nullptr) {
    return absl::InvalidArgumentError(
        fmt::format("{}: cannot read \"{}\" (missing or not readable)", key, path));
  }
  return file;
}

absl::Status NoPem(std::string_view key, const std::string& path, std::string_view what) {
  return absl::InvalidArgumentError(
      fmt::format("{}: \"{}\" holds no PEM {}", key, path, what));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const TlsMaterial>> TlsMaterial::Load(
    const config::TlsConfig& tls) {
  std::shared_ptr<TlsMaterial> material(new TlsMaterial());
  {
    auto file = Open("listen.tls.cert", tls.cert);
    if (!file.ok()) return file.status();
    material->leaf_ = PEM_read_X509(file->get(), nullptr, nullptr, nullptr);
    if (material->leaf_ == nullptr) {
      return NoPem("listen.tls.cert", tls.cert, "certificate");
    }
    material->chain_ = sk_X509_new_null();
    while (X509* intermediate = PEM_read_X509(file->get(), nullptr, nullptr, nullptr)) {
      sk_X509_push(material->chain_, intermediate);
    }
  }
  {
    auto file = Open("listen.tls.key", tls.key);
    if (!file.ok()) return file.status();
    material->key_ = PEM_read_PrivateKey(file->get(), nullptr, nullptr, nullptr);
    if (material->key_ == nullptr) {
      return NoPem("listen.tls.key", tls.key, "private key (or it is encrypted)");
    }
  }
  if (X509_check_private_key(material->leaf_, material->key_) != 1) {
    return absl::InvalidArgumentError(
        fmt::format("listen.tls.key: \"{}\" is not the key of the certificate in \"{}\"",
                    tls.key, tls.cert));
  }
  if (!tls.client_ca.empty()) {
    auto file = Open("listen.tls.client_ca", tls.client_ca);
    if (!file.ok()) return file.status();
    material->client_cas_ = X509_STORE_new();
    int count = 0;
    while (X509* ca = PEM_read_X509(file->get(), nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(material->client_cas_, ca);
      X509_free(ca);  // the store holds its own reference
      ++count;
    }
    if (count == 0) return NoPem("listen.tls.client_ca", tls.client_ca, "certificate");
  }
  ERR_clear_error();  // the PEM loops end on a "no start line" error
  return material;
}

TlsMaterial::~TlsMaterial() {
  X509_free(leaf_);
  sk_X509_pop_free(chain_, X509_free);
  EVP_PKEY_free(key_);
  X509_STORE_free(client_cas_);
}

bool TlsMaterial::ApplyTo(SSL* ssl, bool certificate_optional) const {
  // The last argument 1 replaces what the connection had; OpenSSL takes its
  // own references, so this material may be released mid-handshake.
  if (SSL_use_cert_and_key(ssl, leaf_, key_, chain_, 1) != 1) return false;
  if (client_cas_ == nullptr) return true;
  SSL_set_verify(ssl,
                 certificate_optional ? SSL_VERIFY_PEER
                                      : SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                 nullptr);
  return SSL_set1_verify_cert_store(ssl, client_cas_) == 1;
}

}  // namespace ferry::security
