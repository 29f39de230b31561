#include "publish/publish_wire.h"

#include <cstring>
#include <string>

#include "common/proto_wire_reader.h"
#include "common/proto_wire_writer.h"

namespace ferry::publish {
namespace {

using proto_wire::kLength;
using proto_wire::kVarint;
using proto_wire::VarintSize;
using proto_wire::WireType;
using proto_wire::WriteVarint;

// Decodes a PublishRequest; each nested message is read between the reader's
// Enter and Leave, so no field may overrun its parent. A failed read returns
// false after naming its field (Reader::In), innermost first.
class RequestDecoder {
 public:
  RequestDecoder(std::span<const std::string_view> pieces, PublishRequestView* out)
      : reader_(pieces, "PublishRequest"), out_(out) {}

  absl::Status Request() { return Fields() ? absl::OkStatus() : reader_.Error(); }

 private:
  bool Fields() {
    while (reader_.More()) {
      uint32_t number = 0;
      WireType type{};
      if (!reader_.Tag(&number, &type)) return false;
      if (number == 1 && type == kVarint) {
        if (!reader_.Varint(&out_->request_id)) return reader_.In("request_id");
      } else if (number == 2 && type == kLength) {
        std::string_view topic;
        if (!String(&topic)) return reader_.In("topic");
        out_->topic.assign(topic);
      } else if (number == 3 && type == kLength) {
        if (!Message()) return reader_.In("messages", out_->messages.size());
      } else if (number == 4 && type == kVarint) {
        uint64_t flag = 0;
        if (!reader_.Varint(&flag)) return reader_.In("compact_results");
        out_->compact_results = flag != 0;
      } else if (!reader_.SkipField(number, type)) {
        return reader_.InField(number);
      }
    }
    return true;
  }

  bool Message() {
    size_t outer = 0;
    if (!reader_.Enter(&outer)) return false;
    MessageView m;
    m.first_header = static_cast<uint32_t>(out_->headers.size());
    int64_t seconds = 0;
    int32_t nanos = 0;
    while (reader_.More()) {
      uint32_t number = 0;
      WireType type{};
      if (!reader_.Tag(&number, &type)) return false;
      if (type != kLength || number > 6) {
        if (!reader_.SkipField(number, type)) return reader_.InField(number);
        continue;
      }
      switch (number) {
        case 1:
          if (!reader_.View(&out_->spilled, &m.key)) return reader_.In("key");
          break;
        case 2:
          if (!reader_.View(&out_->spilled, &m.value)) return reader_.In("value");
          break;
        case 3:
          if (!Header()) {
            return reader_.In("headers", out_->headers.size() - m.first_header);
          }
          break;
        case 4:
          if (!reader_.View(&out_->spilled, &m.ordering_key)) {
            return reader_.In("ordering_key");
          }
          break;
        case 5:
          if (!String(&m.id)) return reader_.In("id");
          break;
        case 6:
          // Repeated occurrences merge, as the generated parser's do.
          m.has_timestamp = true;
          if (!Timestamp(&seconds, &nanos)) return reader_.In("timestamp");
          break;
      }
    }
    reader_.Leave(outer);
    m.header_count = static_cast<uint32_t>(out_->headers.size()) - m.first_header;
    if (m.has_timestamp) {
      int64_t millis = 0;
      m.timestamp_in_range = !__builtin_mul_overflow(seconds, int64_t{1000}, &millis) &&
                             !__builtin_add_overflow(millis, nanos / 1'000'000, &millis);
      m.timestamp_ms = m.timestamp_in_range ? millis : 0;
    }
    m.bytes = static_cast<int64_t>(m.key.size() + m.value.size() + m.ordering_key.size() +
                                   m.id.size());
    for (uint32_t h = m.first_header; h < out_->headers.size(); ++h) {
      m.bytes += static_cast<int64_t>(out_->headers[h].key.size() +
                                      out_->headers[h].value.size());
    }
    out_->messages.push_back(m);
    return true;
  }

  bool Header() {
    size_t outer = 0;
    if (!reader_.Enter(&outer)) return false;
    HeaderView h;
    while (reader_.More()) {
      uint32_t number = 0;
      WireType type{};
      if (!reader_.Tag(&number, &type)) return false;
      if (type == kLength && number == 1) {
        if (!String(&h.key)) return reader_.In("key");
      } else if (type == kLength && number == 2) {
        if (!reader_.View(&out_->spilled, &h.value)) return reader_.In("value");
      } else if (!reader_.SkipField(number, type)) {
        return reader_.InField(number);
      }
    }
    reader_.Leave(outer);
    out_->headers.push_back(h);
    return true;
  }

  bool Timestamp(int64_t* seconds, int32_t* nanos) {
    size_t outer = 0;
    if (!reader_.Enter(&outer)) return false;
    while (reader_.More()) {
      uint32_t number = 0;
      WireType type{};
      if (!reader_.Tag(&number, &type)) return false;
      uint64_t v = 0;
      if (number == 1 && type == kVarint) {
        if (!reader_.Varint(&v)) return reader_.In("seconds");
        *seconds = static_cast<int64_t>(v);
      } else if (number == 2 && type == kVarint) {
        if (!reader_.Varint(&v)) return reader_.In("nanos");
        *nanos = static_cast<int32_t>(static_cast<uint32_t>(v));
      } else if (!reader_.SkipField(number, type)) {
        return reader_.InField(number);
      }
    }
    reader_.Leave(outer);
    return true;
  }

  bool String(std::string_view* out) {
    return reader_.View(&out_->spilled, out) && reader_.Utf8(*out);
  }

  proto_wire::Reader reader_;
  PublishRequestView* out_;
};

// Writing. Sizes first, so nested lengths are known and one buffer holds it all.

// int32 and int64 fields: negative values take ten bytes (sign-extended).
size_t Int64Size(int64_t v) { return VarintSize(static_cast<uint64_t>(v)); }

size_t LengthFieldSize(size_t length) { return 1 + VarintSize(length) + length; }

// Field numbers here are below 16: the tag is one byte.
char* WriteTag(uint32_t number, WireType type, char* out) {
  *out++ = static_cast<char>((number << 3) | type);
  return out;
}

char* WriteInt64Field(uint32_t number, int64_t v, char* out) {
  if (v == 0) return out;
  return WriteVarint(static_cast<uint64_t>(v), WriteTag(number, kVarint, out));
}

size_t Int64FieldSize(int64_t v) { return v == 0 ? 0 : 1 + Int64Size(v); }

char* WriteLengthHeader(uint32_t number, size_t length, char* out) {
  return WriteVarint(length, WriteTag(number, kLength, out));
}

char* WriteBytesField(uint32_t number, std::string_view bytes, char* out) {
  if (bytes.empty()) return out;
  out = WriteLengthHeader(number, bytes.size(), out);
  std::memcpy(out, bytes.data(), bytes.size());
  return out + bytes.size();
}

size_t BytesFieldSize(std::string_view bytes) {
  return bytes.empty() ? 0 : LengthFieldSize(bytes.size());
}

// google.protobuf.Timestamp of `millis`, as api::FromUnixMillis sets it.
struct Timestamp {
  int64_t seconds;
  int32_t nanos;
};
Timestamp FromMillis(int64_t millis) {
  int64_t seconds = millis / 1000;
  int64_t rest = millis % 1000;
  if (rest < 0) {
    rest += 1000;
    --seconds;
  }
  return {seconds, static_cast<int32_t>(rest * 1'000'000)};
}
size_t TimestampSize(Timestamp t) {
  return Int64FieldSize(t.seconds) + Int64FieldSize(t.nanos);
}

// absl::string_view is not std::string_view in Debian's Abseil.
std::string_view MessageOf(const absl::Status& status) {
  return {status.message().data(), status.message().size()};
}

// ferry.v1.Status of a result, as api::ToProtoStatus fills it.
size_t StatusSize(const MessageResult& r) {
  return Int64FieldSize(static_cast<int32_t>(r.status.code())) +
         BytesFieldSize(MessageOf(r.status)) + (!r.status.ok() && r.retryable ? 2 : 0);
}

size_t ResultSize(const MessageResult& r, std::string_view cluster, std::string_view id,
                  size_t status_size) {
  size_t n = LengthFieldSize(status_size) + BytesFieldSize(id);
  if (r.status.ok()) {
    n += BytesFieldSize(cluster) + Int64FieldSize(r.partition) +
         Int64FieldSize(r.offset) +
         LengthFieldSize(TimestampSize(FromMillis(r.timestamp_ms)));
  }
  return n;
}

char* WriteResult(const MessageResult& r, std::string_view cluster, std::string_view id,
                  size_t status_size, char* out) {
  out = WriteLengthHeader(1, status_size, out);
  out = WriteInt64Field(1, static_cast<int32_t>(r.status.code()), out);
  out = WriteBytesField(2, MessageOf(r.status), out);
  if (!r.status.ok() && r.retryable) {
    out = WriteTag(3, kVarint, out);
    *out++ = 1;
  }
  if (r.status.ok()) {
    out = WriteBytesField(2, cluster, out);
    out = WriteInt64Field(3, r.partition, out);
    out = WriteInt64Field(4, r.offset, out);
    const Timestamp t = FromMillis(r.timestamp_ms);
    out = WriteLengthHeader(5, TimestampSize(t), out);
    out = WriteInt64Field(1, t.seconds, out);
    out = WriteInt64Field(2, t.nanos, out);
  }
  return WriteBytesField(6, id, out);
}

bool Compact(const PublishRequestView& request, const BatchResults& answer) {
  if (!request.compact_results || answer.results.empty()) return false;
  for (const MessageResult& r : answer.results) {
    if (!r.status.ok()) return false;
  }
  return true;
}

void PlanCompact(const BatchResults& answer, ResponsePlan* plan) {
  for (const MessageResult& r : answer.results) {
    plan->packed_partitions += Int64Size(r.partition);
    plan->packed_offsets += Int64Size(r.offset);
    plan->packed_timestamps += Int64Size(r.timestamp_ms);
  }
  plan->compact_size =
      BytesFieldSize(answer.cluster) + LengthFieldSize(plan->packed_partitions) +
      LengthFieldSize(plan->packed_offsets) + LengthFieldSize(plan->packed_timestamps);
  plan->size += LengthFieldSize(plan->compact_size);
}

void PlanResults(const PublishRequestView& request, const BatchResults& answer,
                 ResponsePlan* plan) {
  plan->results.resize(answer.results.size());
  for (size_t i = 0; i < answer.results.size(); ++i) {
    const MessageResult& r = answer.results[i];
    ResponsePlan::ResultSizes& sizes = plan->results[i];
    sizes.status = StatusSize(r);
    sizes.result = ResultSize(r, answer.cluster, request.messages[i].id, sizes.status);
    plan->size += LengthFieldSize(sizes.result);
  }
}

}  // namespace

absl::Status DecodePublishRequest(std::span<const std::string_view> pieces,
                                  PublishRequestView* out) {
  return RequestDecoder(pieces, out).Request();
}

ResponsePlan PlanPublishResponse(const PublishRequestView& request,
                                 const BatchResults& answer) {
  ResponsePlan plan;
  plan.compact = Compact(request, answer);
  plan.size = request.request_id == 0 ? 0 : 1 + VarintSize(request.request_id);
  if (plan.compact) {
    PlanCompact(answer, &plan);
  } else {
    PlanResults(request, answer, &plan);
  }
  return plan;
}

char* WritePublishResponse(const PublishRequestView& request, const BatchResults& answer,
                           const ResponsePlan& plan, char* out) {
  if (request.request_id != 0) {
    out = WriteVarint(request.request_id, WriteTag(1, kVarint, out));
  }
  if (plan.compact) {
    out = WriteLengthHeader(4, plan.compact_size, out);
    out = WriteBytesField(1, answer.cluster, out);
    out = WriteLengthHeader(2, plan.packed_partitions, out);
    for (const MessageResult& r : answer.results) {
      out = WriteVarint(static_cast<uint64_t>(int64_t{r.partition}), out);
    }
    out = WriteLengthHeader(3, plan.packed_offsets, out);
    for (const MessageResult& r : answer.results) {
      out = WriteVarint(static_cast<uint64_t>(r.offset), out);
    }
    out = WriteLengthHeader(4, plan.packed_timestamps, out);
    for (const MessageResult& r : answer.results) {
      out = WriteVarint(static_cast<uint64_t>(r.timestamp_ms), out);
    }
    return out;
  }
  for (size_t i = 0; i < answer.results.size(); ++i) {
    const ResponsePlan::ResultSizes& sizes = plan.results[i];
    out = WriteLengthHeader(3, sizes.result, out);
    out = WriteResult(answer.results[i], answer.cluster, request.messages[i].id,
                      sizes.status, out);
  }
  return out;
}

}  // namespace ferry::publish
