#pragma once

// The opaque receipt a client gets with each delivered message and sends back
// to ack, nack or extend it. Clients never look inside; the node encodes
// everything it needs to find the delivery without a lookup table:
// which stream it was sent on, which cluster and partition (and which
// incarnation of that partition's state on this node), and which delivery of
// which offset.
//
// Versions: 1 had no cluster (one group read one cluster); 2 appends the
// cluster name. Version 1 still decodes, with an empty cluster that matches
// no partition, so a client holding receipts across a node upgrade is told
// "expired" (and the message comes again) rather than "malformed".

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::subscribe {

struct WireReceipt {
  uint64_t stream = 0;
  // Node-unique id of the partition's state; a revoke and re-assignment
  // creates a new one, so receipts from before it cannot match.
  uint64_t partition_epoch = 0;
  uint64_t generation = 0;  // PartitionState generation (seeks)
  int32_t partition = 0;
  int32_t attempt = 0;
  int64_t offset = -1;
  // Views: into the caller's strings for EncodeReceipt, into the decoded bytes
  // for DecodeReceipt (valid while those live), so acking allocates nothing.
  std::string_view topic = {};
  std::string_view cluster = {};  // empty only in a version-1 receipt
};

// Compact binary form (version 2): a version byte, varints, the topic, then
// the cluster, each of the last two after its length.
std::string EncodeReceipt(const WireReceipt& receipt);
// The same, appended to `out` (which keeps its capacity across receipts).
void AppendReceipt(const WireReceipt& receipt, std::string& out);

// nullopt for bytes that are not a receipt of this format (malformed,
// truncated, trailing garbage). The topic and cluster point into `bytes`.
std::optional<WireReceipt> DecodeReceipt(std::string_view bytes);

// A run (v1::ReceiptRun): the receipts of `count` deliveries of one partition
// at offsets first.offset, first.offset + 1, ... made in one generation with
// one attempt number. Message i of the run has the receipt `At(i)`, byte for
// byte what the node sent for it, so a failed span can be answered per
// message exactly as its receipts would be.
struct WireRun {
  WireReceipt first;
  uint32_t count = 0;

  WireReceipt At(uint32_t index) const {
    WireReceipt r = first;
    r.offset += index;
    return r;
  }
};

// A version byte of its own (a run never decodes as a receipt nor the other
// way round), the receipt's fields, then the count.
void AppendRun(const WireRun& run, std::string& out);
// nullopt as DecodeReceipt, and for a count of 0 or one whose last offset
// would overflow.
std::optional<WireRun> DecodeRun(std::string_view bytes);

}  // namespace ferry::subscribe
