// libFuzzer target (scripts/fuzz): responses come from a node the SDK does
// not control, so any bytes, in any cut into pieces, must decode to
// INVALID_ARGUMENT or to the same content whatever the cut, with a receipt
// per message, and the fast path must read what the general path reads.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "common/fuzz_pieces.h"
#include "subscribe_wire.h"

namespace {

using ferry::client::internal::DecodedResponse;

bool Same(const DecodedResponse& a, const DecodedResponse& b) {
  if (a.kind != b.kind || a.messages.size() != b.messages.size() ||
      a.receipts.bytes != b.receipts.bytes || a.receipts.ends != b.receipts.ends ||
      a.runs.size() != b.runs.size() || a.results.size() != b.results.size()) {
    return false;
  }
  for (size_t i = 0; i < a.messages.size(); ++i) {
    const auto& x = a.messages[i];
    const auto& y = b.messages[i];
    if (x.topic != y.topic || x.partition != y.partition || x.offset != y.offset ||
        x.key != y.key || x.value != y.value || x.headers.size() != y.headers.size() ||
        x.publish_time != y.publish_time || x.delivery_attempt != y.delivery_attempt ||
        x.cluster != y.cluster || x.id != y.id) {
      return false;
    }
    for (size_t h = 0; h < x.headers.size(); ++h) {
      if (x.headers[h].key != y.headers[h].key ||
          x.headers[h].value != y.headers[h].value) {
        return false;
      }
    }
  }
  for (size_t i = 0; i < a.runs.size(); ++i) {
    if (a.runs[i].token != b.runs[i].token ||
        a.runs[i].first_message != b.runs[i].first_message ||
        a.runs[i].count != b.runs[i].count) {
      return false;
    }
  }
  for (size_t i = 0; i < a.results.size(); ++i) {
    if (a.results[i].receipt != b.results[i].receipt ||
        a.results[i].code != b.results[i].code ||
        a.results[i].message != b.results[i].message) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const ferry::fuzz::Pieces input = ferry::fuzz::CutInput(data, size);

  DecodedResponse whole;
  const absl::Status decoded =
      ferry::client::internal::DecodeSubscribeResponse({&input.whole, 1}, &whole);
  DecodedResponse cut;
  const absl::Status decoded_cut =
      ferry::client::internal::DecodeSubscribeResponse(input.cut, &cut);
  if (decoded.ok() != decoded_cut.ok()) std::abort();
  // The fast path for messages in one piece reads exactly what the general
  // path reads: the same content, or the same error.
  DecodedResponse general;
  const absl::Status decoded_generally =
      ferry::client::internal::DecodeSubscribeResponseGenerally({&input.whole, 1},
                                                                &general);
  if (decoded != decoded_generally) std::abort();
  if (decoded.ok() && !Same(whole, general)) std::abort();
  if (!decoded.ok()) {
    if (decoded.code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  // In one piece nothing is copied: every field is a view of the input.
  if (!whole.spilled.empty()) std::abort();
  if (!Same(whole, cut) || cut.receipts.size() != cut.messages.size()) std::abort();
  for (size_t i = 0; i < cut.receipts.size(); ++i) {
    if (cut.receipts.ends[i] > cut.receipts.bytes.size() ||
        (i > 0 && cut.receipts.ends[i] < cut.receipts.ends[i - 1])) {
      std::abort();
    }
    (void)cut.receipts.At(i);
  }
  return 0;
}
