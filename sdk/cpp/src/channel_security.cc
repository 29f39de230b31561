#include "channel_security.h"

#include <utility>

namespace ferry::client::internal {

security::ClientSecurity FromPublic(client::Security security) {
  return {.tls = security.tls,
          .ca_file = std::move(security.ca_file),
          .cert_file = std::move(security.cert_file),
          .key_file = std::move(security.key_file),
          .token = std::move(security.token)};
}

bool BuildCredentials(const security::ClientSecurity& security,
                      std::shared_ptr<grpc::ChannelCredentials>* credentials,
                      std::string* error) {
  auto built = security::ClientCredentials(security);
  if (!built.ok()) {
    if (error != nullptr) *error = "Security: " + std::string(built.status().message());
    return false;
  }
  *credentials = *std::move(built);
  return true;
}

}  // namespace ferry::client::internal
