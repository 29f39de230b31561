#include "publish/received_batch.h"

#include <grpc/slice.h>

namespace ferry::publish {

absl::Status ReceivedBatch::Decode(const grpc::ByteBuffer& buffer) {
  if (grpc::Status s = buffer.Dump(&slices_); !s.ok()) {
    return absl::InvalidArgumentError("unreadable PublishRequest: " + s.error_message());
  }
  pieces_.reserve(slices_.size());
  for (const grpc::Slice& slice : slices_) {
    pieces_.emplace_back(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return DecodePublishRequest(pieces_, &request_);
}

grpc::ByteBuffer ReceivedBatch::Response() const {
  const ResponsePlan plan = PlanPublishResponse(request_, answer_);
  grpc_slice bytes = grpc_slice_malloc(plan.size);
  WritePublishResponse(request_, answer_, plan,
                       reinterpret_cast<char*>(GRPC_SLICE_START_PTR(bytes)));
  grpc::Slice slice(bytes, grpc::Slice::STEAL_REF);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace ferry::publish
