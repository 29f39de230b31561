// The Subscribe stream's responses read by hand, from the pieces gRPC
// received them in: no SubscribeResponse, ReceivedMessage, Header or
// Timestamp object in between. The messages' fields are ReceivedViews into
// the pieces (a field split across two pieces is copied once, into
// DecodedResponse::spilled), so the pieces must outlive the decoded
// messages; a batch's receipts are copied back to back into one string.
//
// Accepts exactly the bytes the generated parser accepts (unknown fields and
// known ones with another wire type are skipped, a repeated singular field's
// last occurrence wins, repeated submessages merge, the oneof keeps its last
// member, proto3 strings must be UTF-8) and rejects the rest with
// INVALID_ARGUMENT naming the field, the reason and the byte (e.g.
// "malformed SubscribeResponse.messages.messages[1].topic: not UTF-8 at byte
// 57"). Plain functions: no gRPC and no protobuf runtime, so the libFuzzer
// target builds them alone. The wire reading is common/proto_wire_reader.h.
#ifndef FERRY_CLIENT_SRC_SUBSCRIBE_WIRE_H_
#define FERRY_CLIENT_SRC_SUBSCRIBE_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "ferry/client/subscriber.h"

namespace ferry::client::internal {

// The receipts of a batch's messages, back to back.
struct Receipts {
  std::string bytes;
  // Message i's receipt ends at ends[i] and starts where i - 1's ends.
  std::vector<uint32_t> ends;

  std::size_t size() const { return ends.size(); }
  std::string_view At(std::size_t i) const {
    const uint32_t begin = i == 0 ? 0 : ends[i - 1];
    return std::string_view(bytes).substr(begin, ends[i] - begin);
  }
};

// A ferry.v1.ReceiptRun.
struct DecodedRun {
  std::string token;
  uint32_t first_message = 0;
  uint32_t count = 0;
};

// A ferry.v1.ReceiptResult (its span is checked, not kept: the SDK acts on
// receipts only).
struct DecodedResult {
  std::string receipt;
  int32_t code = 0;
  std::string message;
};

// A decoded ferry.v1.SubscribeResponse.
struct DecodedResponse {
  enum class Kind { kNotSet, kOpened, kMessages, kReceiptResults };
  Kind kind = Kind::kNotSet;
  // kMessages: the batch's messages, their receipts and runs. The views
  // point into the pieces, `headers` and `spilled`.
  std::vector<ReceivedView> messages;
  // The messages' headers, each message's back to back.
  std::vector<HeaderView> headers;
  // Fields that lay across pieces, copied (a deque never moves them).
  std::deque<std::string> spilled;
  Receipts receipts;
  std::vector<DecodedRun> runs;
  // kReceiptResults.
  std::vector<DecodedResult> results;
};

// Decodes the SubscribeResponse whose bytes are `pieces` back to back into
// *out (which must be fresh). The views in *out point into the pieces' bytes
// (not into `pieces` itself), which must therefore outlive them.
absl::Status DecodeSubscribeResponse(std::span<const std::string_view> pieces,
                                     DecodedResponse* out);

// The same decode without the fast path for messages that lie in one piece
// (subscribe_wire_fast.h): the reference it is tested against.
absl::Status DecodeSubscribeResponseGenerally(std::span<const std::string_view> pieces,
                                              DecodedResponse* out);

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_SUBSCRIBE_WIRE_H_
