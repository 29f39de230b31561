#include "subscribe_wire.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <optional>
#include <utility>

#include "common/proto_wire_reader.h"
#include "subscribe_wire_fast.h"

namespace ferry::client::internal {
namespace {

using proto_wire::kLength;
using proto_wire::kVarint;
using proto_wire::WireType;

// A message's fields before any is read: the wire's defaults, not the public
// struct's (partition and offset -1).
constexpr ReceivedView kWireDefaults{.partition = 0, .offset = 0, .delivery_attempt = 0};

// A Timestamp as the clock's time, or nullopt when it does not fit.
std::optional<std::chrono::system_clock::time_point> TimePoint(int64_t seconds,
                                                               int32_t nanos) {
  using Clock = std::chrono::system_clock;
  constexpr int64_t kTicksPerSecond = Clock::period::den / Clock::period::num;
  int64_t ticks = 0;
  if (__builtin_mul_overflow(seconds, kTicksPerSecond, &ticks) ||
      __builtin_add_overflow(ticks, nanos / (1'000'000'000 / kTicksPerSecond), &ticks)) {
    return std::nullopt;
  }
  return Clock::time_point(Clock::duration(ticks));
}

// Reads one response; each nested message is read between the reader's Enter
// and Leave, so no field overruns its parent. A failed read returns false
// after naming its field (Reader::In), innermost first.
class ResponseDecoder {
 public:
  // `fast`: whether a message that lies whole in one piece is read by the
  // fast path (subscribe_wire_fast.h) first.
  ResponseDecoder(std::span<const std::string_view> pieces, DecodedResponse* out,
                  bool fast)
      : reader_(pieces, "SubscribeResponse"), out_(out), fast_(fast) {}

  absl::Status Response() {
    if (!Fields()) return reader_.Error();
    // Spans only now: the headers vector no longer moves.
    for (size_t i = 0; i < out_->messages.size(); ++i) {
      const auto [begin, count] = header_ranges_[i];
      out_->messages[i].headers = std::span(out_->headers).subspan(begin, count);
    }
    return absl::OkStatus();
  }

 private:
  bool Fields() {
    while (reader_.More()) {
      uint32_t number = 0;
      WireType type{};
      if (!reader_.Tag(&number, &type)) return false;
      if (number == 1 && type == kLength) {
        Switch(DecodedResponse::Kind::kOpened);
        if (!Opened()) return reader_.In("opened");
      } else if (number == 2 && type == kLength) {
        Switch(DecodedResponse::Kind::kMessages);
        if (!Batch()) return reader_.In("messages");
      } else if (number == 3 && type == kLength) {
        Switch(DecodedResponse::Kind::kReceiptResults);
        if (!Results()) return reader_.In("receipt_results");
      } else if (!reader_.SkipField(number, type)) {
        return reader_.InField(number);
      }
    }
    return true;
  }

  // The oneof: a member other than the current one replaces it; the same one
  // again merges into it.
  void Switch(DecodedResponse::Kind kind) {
    if (out_->kind == kind) return;
    out_->kind = kind;
    out_->messages.clear();
    out_->headers.clear();
    header_ranges_.clear();
    out_->receipts.bytes.clear();
    out_->receipts.ends.clear();
    out_->runs.clear();
    out_->results.clear();
  }

  // Reads the submessage whose length comes next: `field(number, type)` reads
  // each field it knows and returns kOk, or kBad after naming the field; the
  // others are skipped.
  enum class Read { kOk, kBad, kUnknown };

  template <typename Field>
  bool Submessage(Field field) {
    size_t outer = 0;
    if (!reader_.Enter(&outer)) return false;
    while (reader_.More()) {
      uint32_t number = 0;
      WireType type{};
      if (!reader_.Tag(&number, &type)) return false;
      const Read read = field(number, type);
      if (read == Read::kBad) return false;
      if (read == Read::kUnknown && !reader_.SkipField(number, type)) {
        return reader_.InField(number);
      }
    }
    reader_.Leave(outer);
    return true;
  }

  // kOk, or kBad after naming `name` as the field that failed.
  Read Named(bool ok, std::string_view name) {
    return ok || reader_.In(name) ? Read::kOk : Read::kBad;
  }

  bool Opened() {
    // node_id and stream_id: checked, not kept.
    return Submessage([this](uint32_t number, WireType type) {
      std::string_view unused;
      if (number == 1 && type == kLength) return Named(String(&unused), "node_id");
      if (number == 2 && type == kLength) return Named(String(&unused), "stream_id");
      return Read::kUnknown;
    });
  }

  bool Batch() {
    return Submessage([this](uint32_t number, WireType type) {
      if (number == 1 && type == kLength) {
        const bool first = out_->messages.empty();
        const size_t left = first ? reader_.left() : 0;
        if (!Message()) {
          reader_.In("messages", out_->messages.size() - 1);
          return Read::kBad;
        }
        if (first) Reserve(left, left - reader_.left());
        return Read::kOk;
      }
      if (number == 2 && type == kLength) {
        return Run() || reader_.In("runs", out_->runs.size() - 1) ? Read::kOk
                                                                  : Read::kBad;
      }
      return Read::kUnknown;
    });
  }

  // Room for as many messages as the batch's `left` bytes hold if they are
  // like the first (`first_bytes` of them), so the vectors do not grow message
  // by message. Others only cost growth again. Each reservation is capped on
  // its own: a first message of many empty headers or a long receipt followed
  // by one huge value must not reserve a multiple of the batch.
  void Reserve(size_t left, size_t first_bytes) {
    constexpr size_t kMaxMessages = 4096;
    constexpr size_t kMaxHeaders = 16 * 1024;
    constexpr size_t kMaxReceiptBytes = 256 * 1024;
    const size_t n = std::min(left / std::max<size_t>(first_bytes, 1), kMaxMessages);
    out_->messages.reserve(n);
    header_ranges_.reserve(n);
    out_->receipts.ends.reserve(n);
    out_->headers.reserve(std::min(n * out_->headers.size(), kMaxHeaders));
    out_->receipts.bytes.reserve(
        std::min({n * out_->receipts.bytes.size(), kMaxReceiptBytes, left}));
  }

  bool Message() {
    ReceivedView& m = out_->messages.emplace_back(kWireDefaults);
    std::vector<HeaderView>& headers = out_->headers;
    const size_t headers_begin = headers.size();
    std::string& receipts = out_->receipts.bytes;
    const size_t receipt_begin = receipts.size();
    FastTime time;
    std::string_view bytes;
    if (fast_ && reader_.PeekField(&bytes)) {
      if (FastMessageReader(bytes).Message(&m, &headers, &receipts, receipt_begin,
                                           &time)) {
        reader_.SkipPast(bytes);
        return Done(m, headers_begin, time);
      }
      // Read again, on the general path: undo what the fast one wrote.
      m = kWireDefaults;
      headers.resize(headers_begin);
      receipts.resize(receipt_begin);
      time = FastTime{};
    }
    const bool ok = Submessage([&](uint32_t number, WireType type) {
      uint64_t v = 0;
      if (type == kVarint) {
        switch (number) {
          case 3:
            if (!reader_.Varint(&v)) return Named(false, "partition");
            m.partition = static_cast<int32_t>(v);
            return Read::kOk;
          case 4:
            if (!reader_.Varint(&v)) return Named(false, "offset");
            m.offset = static_cast<int64_t>(v);
            return Read::kOk;
          case 9:
            if (!reader_.Varint(&v)) return Named(false, "delivery_attempt");
            m.delivery_attempt = static_cast<int32_t>(v);
            return Read::kOk;
          default:
            return Read::kUnknown;
        }
      }
      if (type != kLength) return Read::kUnknown;
      switch (number) {
        case 1:
          receipts.resize(receipt_begin);  // the last receipt wins
          return Named(reader_.Append(&receipts), "receipt");
        case 2:
          return Named(String(&m.topic), "topic");
        case 5:
          return Named(Bytes(&m.key), "key");
        case 6:
          return Named(Bytes(&m.value), "value");
        case 7:
          return Header(&headers.emplace_back()) ||
                         reader_.In("headers", headers.size() - 1 - headers_begin)
                     ? Read::kOk
                     : Read::kBad;
        case 8:
          time.seen = true;
          return Named(Timestamp(&time.seconds, &time.nanos), "publish_time");
        case 10:
          return Named(String(&m.cluster), "cluster");
        case 11:
          return Named(String(&m.id), "id");
        default:
          return Read::kUnknown;
      }
    });
    return ok && Done(m, headers_begin, time);
  }

  // What is left of a message once its fields are read.
  bool Done(ReceivedView& m, size_t headers_begin, const FastTime& time) {
    const std::string& receipts = out_->receipts.bytes;
    if (receipts.size() > std::numeric_limits<uint32_t>::max()) {
      return reader_.Reject("a batch's receipts past 4 GiB");
    }
    if (time.seen) m.publish_time = TimePoint(time.seconds, time.nanos);
    header_ranges_.emplace_back(headers_begin, out_->headers.size() - headers_begin);
    out_->receipts.ends.push_back(static_cast<uint32_t>(receipts.size()));
    return true;
  }

  bool Header(HeaderView* header) {
    return Submessage([&](uint32_t number, WireType type) {
      if (number == 1 && type == kLength) return Named(String(&header->key), "key");
      if (number == 2 && type == kLength) return Named(Bytes(&header->value), "value");
      return Read::kUnknown;
    });
  }

  // Repeated occurrences merge, as the generated parser's do.
  bool Timestamp(int64_t* seconds, int32_t* nanos) {
    return Submessage([&](uint32_t number, WireType type) {
      uint64_t v = 0;
      if (number == 1 && type == kVarint) {
        if (!reader_.Varint(&v)) return Named(false, "seconds");
        *seconds = static_cast<int64_t>(v);
        return Read::kOk;
      }
      if (number == 2 && type == kVarint) {
        if (!reader_.Varint(&v)) return Named(false, "nanos");
        *nanos = static_cast<int32_t>(v);
        return Read::kOk;
      }
      return Read::kUnknown;
    });
  }

  bool Run() {
    DecodedRun& run = out_->runs.emplace_back();
    return Submessage([&](uint32_t number, WireType type) {
      uint64_t v = 0;
      if (number == 1 && type == kLength) return Named(Copy(&run.token), "run");
      if ((number == 2 || number == 3) && type == kVarint) {
        if (!reader_.Varint(&v))
          return Named(false, number == 2 ? "first_message" : "count");
        (number == 2 ? run.first_message : run.count) = static_cast<uint32_t>(v);
        return Read::kOk;
      }
      return Read::kUnknown;
    });
  }

  bool Results() {
    return Submessage([this](uint32_t number, WireType type) {
      if (number == 1 && type == kLength) {
        return Result(&out_->results.emplace_back()) ||
                       reader_.In("results", out_->results.size() - 1)
                   ? Read::kOk
                   : Read::kBad;
      }
      return Read::kUnknown;
    });
  }

  bool Result(DecodedResult* result) {
    return Submessage([&](uint32_t number, WireType type) {
      if (type != kLength) return Read::kUnknown;
      if (number == 1) return Named(Copy(&result->receipt), "receipt");
      if (number == 2) return Named(Status(result), "status");
      if (number == 3) return Named(Span(), "span");
      return Read::kUnknown;
    });
  }

  bool Status(DecodedResult* result) {
    return Submessage([&](uint32_t number, WireType type) {
      uint64_t v = 0;
      if (number == 1 && type == kVarint) {
        if (!reader_.Varint(&v)) return Named(false, "code");
        result->code = static_cast<int32_t>(v);
        return Read::kOk;
      }
      if (number == 2 && type == kLength)
        return Named(Copy(&result->message) && reader_.Utf8(result->message), "message");
      if (number == 3 && type == kVarint) {
        return Named(reader_.Varint(&v), "retryable");  // unused
      }
      return Read::kUnknown;
    });
  }

  // A failed span: checked, not kept.
  bool Span() {
    return Submessage([this](uint32_t number, WireType type) {
      uint64_t v = 0;
      std::string_view unused;
      if (number == 1 && type == kLength) return Named(Bytes(&unused), "run");
      if (number == 2 && type == kVarint) return Named(reader_.Varint(&v), "first");
      if (number == 3 && type == kVarint) return Named(reader_.Varint(&v), "count");
      return Read::kUnknown;
    });
  }

  // A bytes field, viewed: the last occurrence wins.
  bool Bytes(std::string_view* out) { return reader_.View(&out_->spilled, out); }

  bool String(std::string_view* out) { return Bytes(out) && reader_.Utf8(*out); }

  // A bytes field copied, for what outlives the pieces.
  bool Copy(std::string* out) {
    out->clear();
    return reader_.Append(out);
  }

  proto_wire::Reader reader_;
  DecodedResponse* const out_;
  const bool fast_;
  // Per message: its first header and how many it has.
  std::vector<std::pair<size_t, size_t>> header_ranges_;
};

}  // namespace

absl::Status DecodeSubscribeResponse(std::span<const std::string_view> pieces,
                                     DecodedResponse* out) {
  return ResponseDecoder(pieces, out, /*fast=*/true).Response();
}

absl::Status DecodeSubscribeResponseGenerally(std::span<const std::string_view> pieces,
                                              DecodedResponse* out) {
  return ResponseDecoder(pieces, out, /*fast=*/false).Response();
}

}  // namespace ferry::client::internal
