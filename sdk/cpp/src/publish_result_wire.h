// A PublishResponse read by hand, in place: the results as views of the
// response's bytes, without a PublishResult object and its strings per
// message. Without gRPC or the protobuf runtime, so the libFuzzer target
// (publish_result_wire_fuzz.cc) builds it alone; publish_wire.h reads a
// grpc::ByteBuffer through it.
#ifndef FERRY_CLIENT_SRC_PUBLISH_RESULT_WIRE_H_
#define FERRY_CLIENT_SRC_PUBLISH_RESULT_WIRE_H_

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::client::internal {

// One ferry.v1.PublishResult, viewing the bytes it was read from.
struct ResultView {
  int code = 0;            // status.code
  std::string_view error;  // status.message
  bool retryable = false;  // status.retryable
  std::string_view cluster;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string_view id;

  bool operator==(const ResultView&) const = default;
};

// The results of the PublishResponse held by `pieces` (back to back), in
// order: its PublishResults, or, when the node answered in the compact form,
// an OK view per message (cluster, partition and offset; no id). The views
// point into the pieces, or into *spilled for a field cut between two pieces;
// both must outlive them. False when the bytes are not a well-formed
// PublishResponse (fields this SDK does not know are skipped, as the
// generated parser does, groups included).
bool ReadResults(std::span<const std::string_view> pieces,
                 std::deque<std::string>* spilled, std::vector<ResultView>* results);

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_PUBLISH_RESULT_WIRE_H_
