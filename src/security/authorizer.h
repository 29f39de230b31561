#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/server_context.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "config/config.h"
#include "security/acl_set.h"
#include "security/token_store.h"

namespace ferry::security {

// The one check every gRPC call and HTTP route passes (docs/security.md):
// who is calling, and whether a rule allows what the request does. With
// auth.enabled off every check passes at the cost of one branch.
//
// Principals come from, in this order: the HTTP listener acting for its
// client (ActAs metadata on an in-process call), a bearer token in the
// `authorization` metadata, the verified client certificate's subject CN
// (else its first SAN). Denials answer UNAUTHENTICATED or PERMISSION_DENIED
// naming only the operation and resource, and write one audit line; so does
// every allowed seek, pause or admin call. Thread-safe.
class Authorizer {
 public:
  // INVALID_ARGUMENT when the tokens file cannot be used.
  static absl::StatusOr<std::unique_ptr<Authorizer>> Start(
      const config::AuthConfig& auth);

  bool enabled() const { return enabled_; }

  // The gRPC services' entry check for `request` (its type names the RPC).
  absl::Status Check(grpc::ServerContextBase& context,
                     const google::protobuf::Message& request);
  // Check, answering who called when it passes ("" with auth off): for
  // calls that log or count per principal.
  absl::StatusOr<std::string> Admit(grpc::ServerContextBase& context,
                                    const google::protobuf::Message& request);

  // The HTTP listener's side. `authorization` is the header value, and
  // `certificate_principal` the verified client certificate's principal
  // (empty without one). UNAUTHENTICATED like Check.
  absl::StatusOr<std::string> Authenticate(std::string_view authorization,
                                           std::string_view certificate_principal,
                                           std::string_view peer);
  // PERMISSION_DENIED "<operation> on <resource>" unless a rule allows it.
  absl::Status Allow(std::string_view principal, Operation operation,
                     const Resource& resource, std::string_view peer);
  // Metadata that makes an in-process call count as `principal`'s, from
  // `peer` in the audit log. Holds a random key made at start-up, so no
  // network client can forge it.
  std::vector<std::pair<std::string, std::string>> ActAs(std::string_view principal,
                                                         std::string_view peer) const;

  // Rules from the control topic; the configuration's stay in force too.
  // Calls checked after it returns use them (open streams included: their
  // later checks, e.g. each publish batch).
  void SetRuntimeRules(std::vector<AclRule> rules);
  // The rules in force: auth.acl's and the control topic's.
  const std::vector<AclRule>& config_rules() const { return config_rules_; }
  std::vector<AclRule> RuntimeRules() const;

 private:
  Authorizer(const config::AuthConfig& auth, std::unique_ptr<TokenStore> tokens);
  absl::StatusOr<std::string> Principal(grpc::ServerContextBase& context);
  std::shared_ptr<const AclSet> Rules() const;

  const bool enabled_;
  const std::vector<AclRule> config_rules_;
  const std::unique_ptr<TokenStore> tokens_;
  const std::string act_as_key_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const AclSet> rules_ ABSL_GUARDED_BY(mu_);
  std::vector<AclRule> runtime_rules_ ABSL_GUARDED_BY(mu_);
};

// The principal a verified client certificate stands for: its subject CN,
// else its first DNS or URI SAN; empty when it has neither.
std::string CertificatePrincipal(X509* certificate);

}  // namespace ferry::security
