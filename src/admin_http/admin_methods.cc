#include "admin_http/admin_methods.h"

#include <google/protobuf/descriptor.h>

namespace ferry::admin_http {

bool IsReadOnlyMethodName(std::string_view name) {
  for (std::string_view prefix : {"List", "Get", "Describe", "Translate"}) {
    if (name.size() > prefix.size() && name.starts_with(prefix) &&
        name[prefix.size()] >= 'A' && name[prefix.size()] <= 'Z') {
      return true;
    }
  }
  return false;
}

absl::StatusOr<AdminMethods> AdminMethods::From(
    const google::protobuf::ServiceDescriptor* service) {
  if (service == nullptr) return absl::InvalidArgumentError("no service descriptor");
  AdminMethods methods;
  methods.service_ = service;
  for (int i = 0; i < service->method_count(); ++i) {
    const google::protobuf::MethodDescriptor* method = service->method(i);
    if (method->client_streaming() || method->server_streaming()) continue;
    methods.methods_.emplace(
        method->name(),
        AdminMethod{.descriptor = method,
                    .grpc_path = "/" + service->full_name() + "/" + method->name(),
                    .read_only = IsReadOnlyMethodName(method->name())});
  }
  return methods;
}

const AdminMethod* AdminMethods::Find(std::string_view name) const {
  auto it = methods_.find(name);
  return it == methods_.end() ? nullptr : &it->second;
}

}  // namespace ferry::admin_http
