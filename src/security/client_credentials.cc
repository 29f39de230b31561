#include "security/client_credentials.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

namespace ferry::security {
namespace {

absl::StatusOr<std::string> ReadPem(std::string_view what, const std::string& path) {
  if (path.empty()) return std::string();
  std::ifstream file(path);
  std::stringstream content;
  content << file.rdbuf();
  if (!file) {
    return absl::InvalidArgumentError(
        fmt::format("{} \"{}\": cannot read (missing or not readable)", what, path));
  }
  return content.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const ClientSecurity& security) {
  const bool tls = security.tls || !security.ca_file.empty() ||
                   !security.cert_file.empty() || !security.key_file.empty();
  if (!tls) {
    if (!security.token.empty()) {
      return absl::InvalidArgumentError(
          "a token needs TLS (give the CA file of the node's certificate): tokens "
          "never travel in clear text");
    }
    return grpc::InsecureChannelCredentials();
  }
  if (security.cert_file.empty() != security.key_file.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs its key file and a key its certificate file");
  }
  grpc::SslCredentialsOptions options;
  for (auto [what, path, out] :
       {std::tuple{"CA file", &security.ca_file, &options.pem_root_certs},
        std::tuple{"certificate file", &security.cert_file, &options.pem_cert_chain},
        std::tuple{"key file", &security.key_file, &options.pem_private_key}}) {
    auto pem = ReadPem(what, *path);
    if (!pem.ok()) return pem.status();
    *out = *std::move(pem);
  }
  auto credentials = grpc::SslCredentials(options);
  if (security.token.empty()) return credentials;
  return grpc::CompositeChannelCredentials(credentials,
                                           grpc::AccessTokenCredentials(security.token));
}

}  // namespace ferry::security
