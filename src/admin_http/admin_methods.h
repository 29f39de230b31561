#pragma once

// The Admin RPCs the HTTP API serves, read from the service's protobuf
// descriptor at start-up, so an RPC added to admin.proto is served without
// touching this component.

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace google::protobuf {
class MethodDescriptor;
class ServiceDescriptor;
}  // namespace google::protobuf

namespace ferry::admin_http {

// True when an RPC named `name` only reads: its name starts with List, Get,
// Describe or Translate followed by an upper-case letter. Every other RPC
// changes state, and the HTTP API guards it (write_guard.h), so a new
// mutating RPC is never open by accident; admin_methods_test.cc lists the
// read-only set.
bool IsReadOnlyMethodName(std::string_view name);

struct AdminMethod {
  const google::protobuf::MethodDescriptor* descriptor;
  // gRPC's method path, "/ferry.v1.Admin/ListTopics".
  std::string grpc_path;
  bool read_only;
};

// The unary methods of one service, by name. Immutable once built, so
// thread-safe.
class AdminMethods {
 public:
  // Streaming methods are left out: an HTTP call carries one message each
  // way. INVALID_ARGUMENT for a null `service`.
  static absl::StatusOr<AdminMethods> From(
      const google::protobuf::ServiceDescriptor* service);

  // Null when there is no such unary method.
  const AdminMethod* Find(std::string_view name) const;
  const std::map<std::string, AdminMethod, std::less<>>& all() const { return methods_; }
  const google::protobuf::ServiceDescriptor& service() const { return *service_; }

 private:
  const google::protobuf::ServiceDescriptor* service_ = nullptr;
  std::map<std::string, AdminMethod, std::less<>> methods_;
};

}  // namespace ferry::admin_http
