#include "publish_result_wire.h"

#include "common/proto_wire_reader.h"

namespace ferry::client::internal {
namespace {

using proto_wire::kLength;
using proto_wire::kVarint;
using proto_wire::Reader;
using proto_wire::WireType;

// Field numbers of ferry.v1.PublishResponse, PublishResult, Status and
// CompactPublishResults.
constexpr uint32_t kResponseResults = 3;
constexpr uint32_t kResponseCompact = 4;
constexpr uint32_t kCompactCluster = 1;
constexpr uint32_t kCompactPartitions = 2;
constexpr uint32_t kCompactOffsets = 3;
constexpr uint32_t kResultStatus = 1;
constexpr uint32_t kResultCluster = 2;
constexpr uint32_t kResultPartition = 3;
constexpr uint32_t kResultOffset = 4;
constexpr uint32_t kResultId = 6;
constexpr uint32_t kStatusCode = 1;
constexpr uint32_t kStatusMessage = 2;
constexpr uint32_t kStatusRetryable = 3;

// Each reader below reads the message the reader is in, until its end. A
// known field with another wire type is skipped as an unknown field, as the
// generated parser does.
class ResponseReader {
 public:
  ResponseReader(std::span<const std::string_view> pieces,
                 std::deque<std::string>* spilled)
      : reader_(pieces, "PublishResponse"), spilled_(spilled) {}

  bool Response(std::vector<ResultView>* results) {
    while (reader_.More()) {
      uint32_t field = 0;
      WireType type{};
      if (!reader_.Tag(&field, &type)) return false;
      if (field == kResponseResults && type == kLength) {
        if (!Nested([&] { return Result(&results->emplace_back()); })) return false;
      } else if (field == kResponseCompact && type == kLength) {
        if (!Nested([&] { return Compact(results); })) return false;
      } else if (!reader_.SkipField(field, type)) {
        return false;
      }
    }
    return true;
  }

 private:
  // Reads the submessage that starts here with `read`.
  template <typename Read>
  bool Nested(Read read) {
    size_t outer = 0;
    if (!reader_.Enter(&outer) || !read()) return false;
    reader_.Leave(outer);
    return true;
  }

  bool Result(ResultView* out) {
    while (reader_.More()) {
      uint32_t field = 0;
      WireType type{};
      uint64_t number = 0;
      if (!reader_.Tag(&field, &type)) return false;
      if (field == kResultStatus && type == kLength) {
        // A repeated submessage merges, as in the generated parser.
        if (!Nested([&] { return Status(out); })) return false;
      } else if (field == kResultCluster && type == kLength) {
        if (!reader_.View(spilled_, &out->cluster)) return false;
      } else if (field == kResultPartition && type == kVarint) {
        if (!reader_.Varint(&number)) return false;
        out->partition = static_cast<int32_t>(number);
      } else if (field == kResultOffset && type == kVarint) {
        if (!reader_.Varint(&number)) return false;
        out->offset = static_cast<int64_t>(number);
      } else if (field == kResultId && type == kLength) {
        if (!reader_.View(spilled_, &out->id)) return false;
      } else if (!reader_.SkipField(field, type)) {
        return false;
      }
    }
    return true;
  }

  bool Status(ResultView* out) {
    while (reader_.More()) {
      uint32_t field = 0;
      WireType type{};
      uint64_t number = 0;
      if (!reader_.Tag(&field, &type)) return false;
      if (field == kStatusCode && type == kVarint) {
        if (!reader_.Varint(&number)) return false;
        out->code = static_cast<int32_t>(number);
      } else if (field == kStatusMessage && type == kLength) {
        if (!reader_.View(spilled_, &out->error)) return false;
      } else if (field == kStatusRetryable && type == kVarint) {
        if (!reader_.Varint(&number)) return false;
        out->retryable = number != 0;
      } else if (!reader_.SkipField(field, type)) {
        return false;
      }
    }
    return true;
  }

  // CompactPublishResults: an OK result per message, without an id echo.
  bool Compact(std::vector<ResultView>* results) {
    std::string_view cluster;
    partitions_.clear();
    offsets_.clear();
    while (reader_.More()) {
      uint32_t field = 0;
      WireType type{};
      if (!reader_.Tag(&field, &type)) return false;
      if (field == kCompactCluster && type == kLength) {
        if (!reader_.View(spilled_, &cluster)) return false;
      } else if (field == kCompactPartitions && IsVarints(type)) {
        if (!Varints(type, &partitions_)) return false;
      } else if (field == kCompactOffsets && IsVarints(type)) {
        if (!Varints(type, &offsets_)) return false;
      } else if (!reader_.SkipField(field, type)) {
        return false;
      }
    }
    if (partitions_.size() != offsets_.size()) return false;
    for (std::size_t i = 0; i < partitions_.size(); ++i) {
      ResultView& result = results->emplace_back();
      result.cluster = cluster;
      result.partition = static_cast<int32_t>(partitions_[i]);
      result.offset = static_cast<int64_t>(offsets_[i]);
    }
    return true;
  }

  static bool IsVarints(WireType type) { return type == kVarint || type == kLength; }

  // A repeated varint field's values, packed (one length-delimited run) or
  // not (one value per tag): parsers must accept both.
  bool Varints(WireType type, std::vector<uint64_t>* out) {
    uint64_t value = 0;
    if (type == kVarint) {
      if (!reader_.Varint(&value)) return false;
      out->push_back(value);
      return true;
    }
    return Nested([&] {
      while (reader_.More()) {
        if (!reader_.Varint(&value)) return false;
        out->push_back(value);
      }
      return true;
    });
  }

  Reader reader_;
  std::deque<std::string>* spilled_;
  std::vector<uint64_t> partitions_, offsets_;
};

}  // namespace

bool ReadResults(std::span<const std::string_view> pieces,
                 std::deque<std::string>* spilled, std::vector<ResultView>* results) {
  return ResponseReader(pieces, spilled).Response(results);
}

}  // namespace ferry::client::internal
