// ferryd's side of the Publisher wire form, by hand: a PublishRequest read
// in place from the pieces gRPC received it in, and the PublishResponse
// written straight into one buffer, with no PublishRequest, OutgoingMessage,
// PublishResult, Status or Timestamp object and no string per field.
//
// The request's keys, values, ordering keys, ids and headers stay views of
// the received bytes (copied only when a field straddles two pieces), which
// the caller keeps alive until the batch's last delivery report. The
// response's bytes equal what the generated serializer writes for the same
// response (fields in number order, defaults left out), so every client's
// generated parser reads it. Plain functions: no gRPC and no protobuf
// runtime, so the libFuzzer target builds them alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace ferry::publish {

// A ferry.v1.Header of a request.
struct HeaderView {
  std::string_view key;
  std::string_view value;
};

// A ferry.v1.OutgoingMessage of a request.
struct MessageView {
  std::string_view key;
  std::string_view value;
  std::string_view ordering_key;
  std::string_view id;
  // Its headers are PublishRequestView::headers[first_header,
  // first_header + header_count).
  uint32_t first_header = 0;
  uint32_t header_count = 0;
  bool has_timestamp = false;
  // The timestamp's seconds * 1000 + nanos / 10^6 (as api::ToUnixMillis);
  // `timestamp_in_range` is false when that does not fit an int64.
  int64_t timestamp_ms = 0;
  bool timestamp_in_range = true;
  // Key, value, ordering key, id and header bytes (what limits count).
  int64_t bytes = 0;
};

// A decoded ferry.v1.PublishRequest. The views point into the pieces it was
// decoded from or into `spilled`; both must outlive it. Not copyable, so
// views into `spilled` cannot dangle; move only before decoding into it.
struct PublishRequestView {
  PublishRequestView() = default;
  PublishRequestView(const PublishRequestView&) = delete;
  PublishRequestView& operator=(const PublishRequestView&) = delete;

  uint64_t request_id = 0;
  std::string topic;
  bool compact_results = false;
  std::vector<MessageView> messages;
  std::vector<HeaderView> headers;
  // Fields that straddled two pieces, copied (a deque never moves them).
  std::deque<std::string> spilled;
};

// Decodes the PublishRequest whose bytes are `pieces` back to back into
// *out (which must be fresh). Unknown fields, and known ones with another
// wire type, are skipped, as the generated parser does; repeated singular
// fields: the last one wins. INVALID_ARGUMENT naming the field, the reason
// and the byte when the bytes are not a PublishRequest (truncated or overlong
// field, bad tag, string field not UTF-8, groups nested too deep), e.g.
// "malformed PublishRequest.messages[0].value: length 32 past the end (3
// bytes left) at byte 6".
absl::Status DecodePublishRequest(std::span<const std::string_view> pieces,
                                  PublishRequestView* out);

// The outcome of one message, in the form the response carries.
struct MessageResult {
  absl::Status status;     // OK once the broker acknowledged the message
  bool retryable = false;  // for a failure: the error table's decision
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
};

// What the publish path answers for one batch.
struct BatchResults {
  std::string cluster;  // the cluster the OK messages were written to
  // One per request message, in order.
  std::vector<MessageResult> results;
};

// How the PublishResponse for `request` and its `answer` is laid out: the
// compact form (PublishResponse.compact) when the request asked for it and
// every message is OK, else a PublishResult per message (id echoed; cluster,
// partition, offset and timestamp for OK ones), as publisher.proto
// describes. Decided and sized once, so the writer does not repeat the
// passes over the results.
struct ResponsePlan {
  bool compact = false;
  // The compact form's packed arrays, one entry per message each.
  size_t packed_partitions = 0;
  size_t packed_offsets = 0;
  size_t packed_timestamps = 0;
  size_t compact_size = 0;  // the CompactPublishResults message
  // The per-message form: each PublishResult's and its Status's size.
  struct ResultSizes {
    size_t result = 0;
    size_t status = 0;
  };
  std::vector<ResultSizes> results;
  size_t size = 0;  // the whole response
};
ResponsePlan PlanPublishResponse(const PublishRequestView& request,
                                 const BatchResults& answer);
// Writes the plan.size bytes of that response to `out`; returns their end.
// `plan` must come from PlanPublishResponse for the same request and answer.
char* WritePublishResponse(const PublishRequestView& request, const BatchResults& answer,
                           const ResponsePlan& plan, char* out);

}  // namespace ferry::publish
