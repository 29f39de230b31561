// The SDK's one way to make a gRPC channel.
#ifndef FERRY_CLIENT_SRC_GRPC_CHANNEL_H_
#define FERRY_CLIENT_SRC_GRPC_CHANNEL_H_

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <memory>
#include <string>

namespace ferry::client::internal {

// grpc::CreateCustomChannel, after pinning gRPC's callback completion queue
// for the rest of the process. gRPC 1.51 shares one such queue among the
// channels that make callback calls: the last of them to go tears it and
// its thread down, and the next makes them again. In that cycle the queue's
// thread can free it twice (an ASan double free in grpc_cq_internal_unref,
// about once in 100 short-lived publishers; glibc's double-free abort
// without ASan). One channel that made a callback call and is never
// released keeps the queue, so the cycle never happens.
std::shared_ptr<grpc::Channel> NewChannel(
    const std::string& address,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const grpc::ChannelArguments& args);

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_GRPC_CHANNEL_H_
