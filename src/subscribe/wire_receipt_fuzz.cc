// libFuzzer target (scripts/fuzz): receipts come from clients, so any bytes
// must decode to nullopt or to a receipt that encodes back to the same bytes.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "subscribe/wire_receipt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::optional<ferry::subscribe::WireReceipt> receipt =
      ferry::subscribe::DecodeReceipt(bytes);
  if (!receipt.has_value()) return 0;
  // Varints have redundant encodings (e.g. 0x80 0x00); re-decoding the
  // canonical form must give the same fields.
  const std::string canonical = ferry::subscribe::EncodeReceipt(*receipt);
  std::optional<ferry::subscribe::WireReceipt> again =
      ferry::subscribe::DecodeReceipt(canonical);
  if (!again.has_value() || again->stream != receipt->stream ||
      again->offset != receipt->offset || again->topic != receipt->topic ||
      again->cluster != receipt->cluster || again->attempt != receipt->attempt ||
      again->partition != receipt->partition ||
      again->generation != receipt->generation ||
      again->partition_epoch != receipt->partition_epoch) {
    std::abort();
  }
  return 0;
}
