#pragma once

#include <grpcpp/support/byte_buffer.h>

#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "publish/publish_wire.h"

namespace ferry::publish {

// One received PublishRequest and its answer, from the read until the
// response was handed to gRPC: the request's slices (references, not copies),
// the request decoded in place over them, and the results the publish path
// fills in. Keep it alive until the batch's `done` ran; the backend reads
// keys and values from the slices. Not copyable or movable (views into it).
class ReceivedBatch {
 public:
  ReceivedBatch() = default;
  ReceivedBatch(const ReceivedBatch&) = delete;
  ReceivedBatch& operator=(const ReceivedBatch&) = delete;

  // Takes the bytes of `buffer` (by reference count) and decodes them into
  // request(); INVALID_ARGUMENT as DecodePublishRequest. Call once.
  absl::Status Decode(const grpc::ByteBuffer& buffer);

  const PublishRequestView& request() const { return request_; }
  BatchResults* answer() { return &answer_; }

  // The PublishResponse for answer(), in one slice.
  grpc::ByteBuffer Response() const;

 private:
  std::vector<grpc::Slice> slices_;
  std::vector<std::string_view> pieces_;
  PublishRequestView request_;
  BatchResults answer_;
};

}  // namespace ferry::publish
