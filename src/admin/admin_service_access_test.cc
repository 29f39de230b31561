// Every Admin method passes the authorizer before doing anything: given a
// service whose dependencies are all missing and an authorizer with auth on,
// when any method is called without credentials, then it answers
// UNAUTHENTICATED (a method that skipped the check would touch a missing
// dependency and crash, or answer something else). The list of methods comes
// from the service descriptor, so an RPC added later is covered.
#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "admin/admin_service.h"

namespace ferry::admin {
namespace {

TEST(AdminServiceAccess, EveryMethodChecksAccessFirst) {
  auto authorizer = security::Authorizer::Start({.enabled = true});
  ASSERT_TRUE(authorizer.ok()) << authorizer.status();
  AdminService service(NodeIdentity{}, {}, nullptr, nullptr, nullptr, nullptr, nullptr,
                       nullptr, nullptr, nullptr, nullptr, authorizer->get(), nullptr);
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  grpc::GenericStub stub(server->InProcessChannel(grpc::ChannelArguments()));

  const google::protobuf::ServiceDescriptor* descriptor =
      v1::GetNodeRequest::descriptor()->file()->FindServiceByName("Admin");
  ASSERT_NE(descriptor, nullptr);
  for (int i = 0; i < descriptor->method_count(); ++i) {
    const std::string path = "/ferry.v1.Admin/" + descriptor->method(i)->name();
    grpc::ClientContext context;
    grpc::Slice empty("");  // every field at its default
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&context, path, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status result) {
                     status = std::move(result);
                     done.Notify();
                   });
    done.WaitForNotification();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << path << ": " << status.error_message();
  }
  server->Shutdown();
}

}  // namespace
}  // namespace ferry::admin
