#include "grpc_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include <chrono>

#include "absl/synchronization/notification.h"

namespace ferry::client::internal {
namespace {

// Holds the pinning channel and its one call; never destroyed (reachable
// from a static, so leak checkers do not count it).
struct CallbackQueuePin {
  CallbackQueuePin() {
    grpc::ChannelArguments args;
    // Idle at once after its call: no reconnect attempts to nowhere.
    args.SetInt(GRPC_ARG_CLIENT_IDLE_TIMEOUT_MS, 1000);
    channel = grpc::CreateCustomChannel("127.0.0.1:1", grpc::InsecureChannelCredentials(),
                                        args);
    stub = std::make_unique<grpc::GenericStub>(channel);
    // A deadline already passed: the call ends at once, but the channel has
    // taken the shared callback queue for good.
    context.set_deadline(std::chrono::system_clock::now());
    grpc::Slice empty("");
    request = grpc::ByteBuffer(&empty, 1);
    stub->UnaryCall(&context, "/ferry.internal/Pin", grpc::StubOptions(), &request,
                    &response, [this](const grpc::Status&) { done.Notify(); });
    done.WaitForNotification();
  }

  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::GenericStub> stub;
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  absl::Notification done;
};

}  // namespace

std::shared_ptr<grpc::Channel> NewChannel(
    const std::string& address,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const grpc::ChannelArguments& args) {
  [[maybe_unused]] static const CallbackQueuePin* const pin = new CallbackQueuePin;
  return grpc::CreateCustomChannel(address, credentials, args);
}

}  // namespace ferry::client::internal
