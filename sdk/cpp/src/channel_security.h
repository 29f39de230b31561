// The Security option of both builders: its internal form and the channel
// credentials built from it.
#ifndef FERRY_CLIENT_SRC_CHANNEL_SECURITY_H_
#define FERRY_CLIENT_SRC_CHANNEL_SECURITY_H_

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "ferry/client/security.h"
#include "security/client_credentials.h"

namespace ferry::client::internal {

security::ClientSecurity FromPublic(client::Security security);

// Builds `*credentials`; false with `*error` (if not null) naming the
// problem ("Security: CA file ...: cannot read").
bool BuildCredentials(const security::ClientSecurity& security,
                      std::shared_ptr<grpc::ChannelCredentials>* credentials,
                      std::string* error);

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_CHANNEL_SECURITY_H_
