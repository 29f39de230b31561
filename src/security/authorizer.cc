#include "security/authorizer.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include "security/access_map.h"

namespace ferry::security {
namespace {

constexpr std::string_view kBearer = "Bearer ";
// Lower case: gRPC metadata keys are.
constexpr char kActAsKey[] = "ferry-act-as-key";
constexpr char kActAs[] = "ferry-act-as";
constexpr char kActAsPeer[] = "ferry-act-as-peer";

std::string RandomKey() {
  unsigned char bytes[32];
  RAND_bytes(bytes, sizeof(bytes));
  std::string key;
  for (unsigned char b : bytes) key += fmt::format("{:02x}", b);
  return key;
}

bool SameKey(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view Metadata(const grpc::ServerContextBase& context, std::string_view key) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (it == metadata.end()) return {};
  return std::string_view(it->second.data(), it->second.size());
}

bool Audited(Operation operation) {
  return operation == Operation::kAdmin || operation == Operation::kSeek ||
         operation == Operation::kPause;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::Start(
    const config::AuthConfig& auth) {
  auto tokens = TokenStore::Open(auth.tokens_file, auth.refresh_interval);
  if (!tokens.ok()) return tokens.status();
  return std::unique_ptr<Authorizer>(new Authorizer(auth, *std::move(tokens)));
}

Authorizer::Authorizer(const config::AuthConfig& auth, std::unique_ptr<TokenStore> tokens)
    : enabled_(auth.enabled),
      config_rules_(auth.acl),
      tokens_(std::move(tokens)),
      act_as_key_(RandomKey()),
      rules_(std::make_shared<const AclSet>(auth.acl)) {}

void Authorizer::SetRuntimeRules(std::vector<AclRule> rules) {
  std::vector<AclRule> all = config_rules_;
  all.insert(all.end(), rules.begin(), rules.end());
  auto set = std::make_shared<const AclSet>(std::move(all));
  absl::MutexLock lock(&mu_);
  rules_ = std::move(set);
  runtime_rules_ = std::move(rules);
}

std::vector<AclRule> Authorizer::RuntimeRules() const {
  absl::MutexLock lock(&mu_);
  return runtime_rules_;
}

std::shared_ptr<const AclSet> Authorizer::Rules() const {
  absl::MutexLock lock(&mu_);
  return rules_;
}

std::vector<std::pair<std::string, std::string>> Authorizer::ActAs(
    std::string_view principal, std::string_view peer) const {
  return {{kActAsKey, act_as_key_},
          {kActAs, std::string(principal)},
          {kActAsPeer, std::string(peer)}};
}

absl::StatusOr<std::string> Authorizer::Authenticate(
    std::string_view authorization, std::string_view certificate_principal,
    std::string_view peer) {
  absl::StatusOr<std::string> principal;
  if (!authorization.empty()) {
    principal =
        authorization.starts_with(kBearer)
            ? tokens_->Authenticate(authorization.substr(kBearer.size()))
            : absl::UnauthenticatedError("the authorization is not \"Bearer <token>\"");
  } else if (!certificate_principal.empty()) {
    principal = std::string(certificate_principal);
  } else {
    principal = absl::UnauthenticatedError(
        "no credentials: present a client certificate or a bearer token");
  }
  if (!principal.ok()) {
    spdlog::warn("audit: unauthenticated request from {}: {}", peer,
                 std::string(principal.status().message()));
  }
  return principal;
}

absl::Status Authorizer::Allow(std::string_view principal, Operation operation,
                               const Resource& resource, std::string_view peer) {
  if (!Rules()->Allows(principal, operation, resource)) {
    spdlog::warn("audit: denied {} {} on {} from {}", principal, OperationName(operation),
                 resource.ToString(), peer);
    return absl::PermissionDeniedError(fmt::format(
        "permission denied: {} on {}", OperationName(operation), resource.ToString()));
  }
  if (Audited(operation)) {
    spdlog::info("audit: allowed {} {} on {} from {}", principal,
                 OperationName(operation), resource.ToString(), peer);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Authorizer::Principal(grpc::ServerContextBase& context) {
  if (std::string_view key = Metadata(context, kActAsKey); !key.empty()) {
    if (!SameKey(key, act_as_key_)) {
      return absl::UnauthenticatedError("forged ferry-act-as-key metadata");
    }
    return std::string(Metadata(context, kActAs));
  }
  std::string certificate;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    for (const char* property : {"x509_common_name", "x509_subject_alternative_name"}) {
      std::vector<grpc::string_ref> values = auth->FindPropertyValues(property);
      if (!values.empty()) {
        certificate.assign(values[0].data(), values[0].size());
        break;
      }
    }
  }
  return Authenticate(Metadata(context, "authorization"), certificate, context.peer());
}

absl::Status Authorizer::Check(grpc::ServerContextBase& context,
                               const google::protobuf::Message& request) {
  return Admit(context, request).status();
}

absl::StatusOr<std::string> Authorizer::Admit(grpc::ServerContextBase& context,
                                              const google::protobuf::Message& request) {
  if (!enabled_) return std::string();
  auto principal = Principal(context);
  if (!principal.ok()) return principal.status();
  // Calls the HTTP listener makes for its clients name the client's address.
  std::string peer(Metadata(context, kActAsPeer));
  if (peer.empty()) peer = context.peer();
  for (const auto& [operation, resource] : RequiredAccess(request)) {
    if (absl::Status s = Allow(*principal, operation, resource, peer); !s.ok()) {
      return s;
    }
  }
  return principal;
}

std::string CertificatePrincipal(X509* certificate) {
  if (certificate == nullptr) return "";
  char common_name[257] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName,
                                common_name, sizeof(common_name)) > 0) {
    return common_name;
  }
  std::string principal;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS || name->type == GEN_URI) {
      const ASN1_IA5STRING* text =
          name->type == GEN_DNS ? name->d.dNSName : name->d.uniformResourceIdentifier;
      principal.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                       ASN1_STRING_length(text));
      break;
    }
  }
  GENERAL_NAMES_free(names);
  return principal;
}

}  // namespace ferry::security
