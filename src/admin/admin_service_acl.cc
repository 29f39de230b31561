// The Admin service's ACL methods (see AclOperations).
#include "admin/admin_service.h"
#include "api/convert.h"

namespace ferry::admin {
namespace {

grpc::Status NoAcls() {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this node serves no ACL calls");
}

}  // namespace

grpc::Status AdminService::ListAcls(grpc::ServerContext* context,
                                    const v1::ListAclsRequest* request,
                                    v1::ListAclsResponse* response) {
  if (grpc::Status s = Check(context, *request); !s.ok()) return s;
  if (acls_ == nullptr) return NoAcls();
  *response = acls_->List();
  return grpc::Status::OK;
}

grpc::Status AdminService::AddAcl(grpc::ServerContext* context,
                                  const v1::AddAclRequest* request,
                                  v1::AclRule* response) {
  return ChangeAcl(context, *request, &AclOperations::Add, response);
}

grpc::Status AdminService::RemoveAcl(grpc::ServerContext* context,
                                     const v1::RemoveAclRequest* request,
                                     v1::AclRule* response) {
  return ChangeAcl(context, *request, &AclOperations::Remove, response);
}

template <typename Request>
grpc::Status AdminService::ChangeAcl(grpc::ServerContext* context, const Request& request,
                                     absl::StatusOr<v1::AclRule> (AclOperations::*change)(
                                         const Request&, std::string_view),
                                     v1::AclRule* response) {
  auto caller = Admit(context, request);
  if (!caller.ok()) return api::ToGrpcStatus(caller.status());
  if (acls_ == nullptr) return NoAcls();
  auto rule = (acls_->*change)(request, *caller);
  if (!rule.ok()) return api::ToGrpcStatus(rule.status());
  *response = *std::move(rule);
  return grpc::Status::OK;
}

}  // namespace ferry::admin
