// libFuzzer target (scripts/fuzz): receipt runs come back from clients in
// acks, so any bytes must decode to nullopt or to a run that encodes back to
// the same fields, whose every message's receipt decodes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "subscribe/wire_receipt.h"

namespace {

bool SameFields(const ferry::subscribe::WireReceipt& a,
                const ferry::subscribe::WireReceipt& b) {
  return a.stream == b.stream && a.offset == b.offset && a.topic == b.topic &&
         a.cluster == b.cluster && a.attempt == b.attempt && a.partition == b.partition &&
         a.generation == b.generation && a.partition_epoch == b.partition_epoch;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ferry::subscribe::WireRun;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::optional<WireRun> run = ferry::subscribe::DecodeRun(bytes);
  if (!run.has_value()) return 0;
  // Varints have redundant encodings; the canonical form must give the same.
  std::string canonical;
  ferry::subscribe::AppendRun(*run, canonical);
  std::optional<WireRun> again = ferry::subscribe::DecodeRun(canonical);
  if (!again.has_value() || again->count != run->count ||
      !SameFields(again->first, run->first)) {
    std::abort();
  }
  // The node answers a failed span with these receipts: the last one must
  // not overflow and must decode to the same partition.
  const ferry::subscribe::WireReceipt last = run->At(run->count - 1);
  const std::string receipt = ferry::subscribe::EncodeReceipt(last);
  std::optional<ferry::subscribe::WireReceipt> decoded =
      ferry::subscribe::DecodeReceipt(receipt);
  if (!decoded.has_value() || !SameFields(*decoded, last) ||
      last.offset < run->first.offset) {
    std::abort();
  }
  return 0;
}
