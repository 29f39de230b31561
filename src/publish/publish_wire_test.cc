#include "publish/publish_wire.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ferry/v1/publisher.pb.h"

namespace ferry::publish {
namespace {

using namespace std::string_literals;

// `bytes` cut into pieces of 1..max_piece bytes, as gRPC may deliver it.
std::vector<std::string_view> Cut(std::string_view bytes, std::mt19937& random,
                                  size_t max_piece) {
  std::vector<std::string_view> pieces;
  while (!bytes.empty()) {
    const size_t n = std::min(
        bytes.size(), std::uniform_int_distribution<size_t>(1, max_piece)(random));
    pieces.push_back(bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
  return pieces;
}

// What the decoder read, rebuilt as the generated message (timestamps as
// milliseconds, the only form the publish path uses).
struct Decoded {
  v1::PublishRequest request;
  std::vector<int64_t> timestamp_ms;
};

Decoded Rebuild(const PublishRequestView& view) {
  Decoded d;
  d.request.set_request_id(view.request_id);
  d.request.set_topic(view.topic);
  d.request.set_compact_results(view.compact_results);
  for (const MessageView& m : view.messages) {
    v1::OutgoingMessage* out = d.request.add_messages();
    out->set_key(std::string(m.key));
    out->set_value(std::string(m.value));
    out->set_ordering_key(std::string(m.ordering_key));
    out->set_id(std::string(m.id));
    for (uint32_t h = 0; h < m.header_count; ++h) {
      v1::Header* header = out->add_headers();
      header->set_key(std::string(view.headers[m.first_header + h].key));
      header->set_value(std::string(view.headers[m.first_header + h].value));
    }
    if (m.has_timestamp) out->mutable_timestamp();
    d.timestamp_ms.push_back(m.has_timestamp && m.timestamp_in_range ? m.timestamp_ms
                                                                     : -1);
    int64_t bytes = static_cast<int64_t>(m.key.size() + m.value.size() +
                                         m.ordering_key.size() + m.id.size());
    for (const v1::Header& h : out->headers()) {
      bytes += static_cast<int64_t>(h.key().size() + h.value().size());
    }
    EXPECT_EQ(m.bytes, bytes);
  }
  return d;
}

// The generated parser's view of the same request, in the same form.
Decoded Expected(v1::PublishRequest request) {
  Decoded d;
  for (v1::OutgoingMessage& m : *request.mutable_messages()) {
    int64_t ms = -1;
    if (m.has_timestamp()) {
      int64_t millis = 0;
      if (!__builtin_mul_overflow(m.timestamp().seconds(), int64_t{1000}, &millis) &&
          !__builtin_add_overflow(millis, m.timestamp().nanos() / 1'000'000, &millis)) {
        ms = millis;
      }
      m.mutable_timestamp()->Clear();
    }
    d.timestamp_ms.push_back(ms);
  }
  request.DiscardUnknownFields();
  d.request = std::move(request);
  return d;
}

void ExpectSameAsGeneratedParser(const std::string& bytes, std::mt19937& random) {
  v1::PublishRequest reference;
  const bool parsed = reference.ParseFromString(bytes);
  for (size_t max_piece : {bytes.size() + 1, size_t{7}, size_t{1}}) {
    const std::vector<std::string_view> pieces = Cut(bytes, random, max_piece);
    PublishRequestView view;
    const absl::Status decoded = DecodePublishRequest(pieces, &view);
    ASSERT_EQ(decoded.ok(), parsed)
        << decoded << " for " << absl::BytesToHexString(bytes);
    if (!parsed) {
      EXPECT_EQ(decoded.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_TRUE(absl::StrContains(decoded.message(), "malformed PublishRequest"));
      continue;
    }
    const Decoded got = Rebuild(view);
    const Decoded want = Expected(reference);
    ASSERT_EQ(got.request.SerializeAsString(), want.request.SerializeAsString())
        << got.request.DebugString() << "\nwant\n"
        << want.request.DebugString();
    EXPECT_EQ(got.timestamp_ms, want.timestamp_ms);
  }
}

v1::PublishRequest RandomRequest(std::mt19937& random) {
  auto coin = [&] { return std::bernoulli_distribution(0.5)(random); };
  auto bytes = [&](size_t max) {
    std::string s(std::uniform_int_distribution<size_t>(0, max)(random), '\0');
    for (char& c : s) c = static_cast<char>(random());
    return s;
  };
  auto text = [&](size_t max) {
    std::string s(std::uniform_int_distribution<size_t>(0, max)(random), 'a');
    for (char& c : s) c = static_cast<char>('a' + random() % 26);
    if (coin() && !s.empty()) s += "é€😀";  // 2-, 3- and 4-byte forms
    return s;
  };
  v1::PublishRequest request;
  if (coin()) request.set_request_id(random() * uint64_t{random()});
  request.set_topic(text(20));
  request.set_compact_results(coin());
  const int count = std::uniform_int_distribution<int>(0, 6)(random);
  for (int i = 0; i < count; ++i) {
    v1::OutgoingMessage* m = request.add_messages();
    if (coin()) m->set_key(bytes(20));
    m->set_value(bytes(coin() ? 40 : 300));
    if (coin()) m->set_ordering_key(bytes(10));
    if (coin()) m->set_id(text(32));
    for (int h = std::uniform_int_distribution<int>(0, 3)(random); h > 0; --h) {
      v1::Header* header = m->add_headers();
      header->set_key(text(8));
      header->set_value(bytes(8));
    }
    if (coin()) {
      m->mutable_timestamp()->set_seconds(static_cast<int64_t>(random()) -
                                          (coin() ? 0 : int64_t{1} << 31));
      m->mutable_timestamp()->set_nanos(static_cast<int32_t>(random() % 1'000'000'000));
    }
  }
  return request;
}

TEST(PublishWire, DecodesWhatTheGeneratedSerializerWritesInAnyPieces) {
  std::mt19937 random(1);
  for (int i = 0; i < 500; ++i) {
    ExpectSameAsGeneratedParser(RandomRequest(random).SerializeAsString(), random);
  }
}

TEST(PublishWire, KeysAndValuesAreViewsOfTheReceivedPiecesUnlessSplit) {
  v1::PublishRequest request;
  request.set_topic("t");
  request.add_messages()->set_value(std::string(100, 'v'));
  const std::string bytes = request.SerializeAsString();
  std::string_view whole = bytes;
  PublishRequestView view;
  ASSERT_TRUE(DecodePublishRequest({&whole, 1}, &view).ok());
  EXPECT_EQ(view.messages[0].value.data(), bytes.data() + bytes.size() - 100);
  EXPECT_TRUE(view.spilled.empty());

  // Cut in the middle of the value: that one is copied.
  const std::string_view pieces[] = {whole.substr(0, bytes.size() - 50),
                                     whole.substr(bytes.size() - 50)};
  PublishRequestView split;
  ASSERT_TRUE(DecodePublishRequest(pieces, &split).ok());
  EXPECT_EQ(split.messages[0].value, std::string(100, 'v'));
  EXPECT_EQ(split.spilled.size(), 1u);
}

// Every truncation and every single-byte change of valid requests, plus
// unknown fields of each wire type, groups and known fields with the wrong
// wire type: accepted exactly when the generated parser accepts, with the
// same content.
TEST(PublishWire, AgreesWithTheGeneratedParserOnMalformedAndUnknownInput) {
  std::mt19937 random(2);
  // 20 inputs, each cut at and changed in every byte: the fuzz target goes
  // deeper; more here took minutes under the sanitizers.
  for (int i = 0; i < 20; ++i) {
    const std::string bytes = RandomRequest(random).SerializeAsString();
    for (size_t n = 0; n < bytes.size(); ++n) {
      ExpectSameAsGeneratedParser(bytes.substr(0, n), random);
      std::string changed = bytes;
      changed[n] = static_cast<char>(random());
      ExpectSameAsGeneratedParser(changed, random);
    }
  }
  const std::string message =
      "\x1a\x05\x12\x03"
      "abc";  // messages { value: "abc" }
  const std::string extras[] = {
      "\x28\x96\x01",  // field 5 varint
      "\x31"
      "12345678",  // field 6 fixed64
      "\x3d"
      "1234",                          // field 7 fixed32
      "\x42\x02xy",                    // field 8 length-delimited
      "\x4b\x08\x01\x4c",              // group 9 { field 1 varint }
      "\x4b\x53\x08\x01\x54\x4c",      // nested groups
      "\x4b\x4c\x4c",                  // an end tag too many
      "\x4b\x54",                      // a group closed by another field's end tag
      "\x4b",                          // a group never closed
      "\x0a\x01x",                     // request_id as a length-delimited field
      "\x12\x02\xc3\x28",              // a topic that is not UTF-8
      "\x1a\x04\x2a\x02\xed\xa0",      // an id that is a surrogate half
      "\x1a\x05\x1a\x03\x0a\x01\xff",  // a header key that is not UTF-8
      "\x1a\x04\x32\x02\x08\x05",      // a timestamp of 5 s
      "\x1a\x08\x32\x02\x08\x05\x32\x02\x10\x07",      // two timestamps merge
      "\x1a\x03\x0a\x01",                              // a key past its message's end
      "\x1a\x02\x08\x01",                              // key as a varint: skipped
      "\x07",                                          // wire type 7
      std::string(1, '\0'),                            // field 0
      "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  // an 11-byte varint tag
      "\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  // compact_results, 10 bytes
  };
  for (const std::string& extra : extras) {
    ExpectSameAsGeneratedParser(message + extra, random);
    ExpectSameAsGeneratedParser(extra + message, random);
  }
}

// Groups nested in a message count against the same depth limit as the
// messages around them, as in the generated parser (a message holds 99).
TEST(PublishWire, AgreesWithTheGeneratedParserOnNestedGroupsInsideAMessage) {
  std::mt19937 random(3);
  for (int groups : {98, 99, 100}) {
    const std::string inner = std::string(groups, '\x4b') + std::string(groups, '\x4c');
    std::string length;
    for (size_t n = inner.size();; n >>= 7) {
      length.push_back(static_cast<char>((n & 0x7f) | (n >= 0x80 ? 0x80 : 0)));
      if (n < 0x80) break;
    }
    ExpectSameAsGeneratedParser("\x1a" + length + inner, random);
  }
}

TEST(PublishWire, AMalformedRequestNamesTheFieldTheReasonAndTheByte) {
  const struct {
    std::string bytes;
    std::string error;
  } cases[] = {
      {std::string("\x12\x01t\x1a\x05\x12\x20") + "abc",
       "malformed PublishRequest.messages[0].value: length 32 past the end (3 bytes "
       "left) at byte 6"},
      {"\x12\x01\xff", "malformed PublishRequest.topic: not UTF-8 at byte 2"},
      {"\x1a\x00\x1a\x05\x1a\x03\x0a\x01\xff"s,
       "malformed PublishRequest.messages[1].headers[0].key: not UTF-8 at byte 8"},
      {"\x1a\x04\x32\x02\x08\x80",
       "malformed PublishRequest.messages[0].timestamp.seconds: varint past the end at "
       "byte 5"},
      {"\x1a\x01\x0b",
       "malformed PublishRequest.messages[0].(field 1): group 1 never closed at byte 2"},
      {"\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
       "malformed PublishRequest.compact_results: varint longer than 10 bytes at byte 1"},
  };
  for (const auto& c : cases) {
    const std::string_view piece = c.bytes;
    PublishRequestView view;
    const absl::Status s = DecodePublishRequest({&piece, 1}, &view);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message(), c.error);
  }
}

// The response to `request` with `answer`, serialized by the encoder and by
// the generated serializer from the same content.
struct ResponsePair {
  std::string encoded;
  std::string reference;
};

ResponsePair Encode(const v1::PublishRequest& request, const BatchResults& answer) {
  const std::string bytes = request.SerializeAsString();
  const std::string_view piece = bytes;
  PublishRequestView view;
  EXPECT_TRUE(DecodePublishRequest({&piece, 1}, &view).ok());
  ResponsePair pair;
  const ResponsePlan plan = PlanPublishResponse(view, answer);
  pair.encoded.resize(plan.size);
  EXPECT_EQ(WritePublishResponse(view, answer, plan, pair.encoded.data()),
            pair.encoded.data() + plan.size);

  v1::PublishResponse reference;
  reference.set_request_id(request.request_id());
  bool all_ok = true;
  for (const MessageResult& r : answer.results) all_ok = all_ok && r.status.ok();
  if (request.compact_results() && all_ok) {
    v1::CompactPublishResults* compact = reference.mutable_compact();
    compact->set_cluster(answer.cluster);
    for (const MessageResult& r : answer.results) {
      compact->add_partitions(r.partition);
      compact->add_offsets(r.offset);
      compact->add_timestamps_ms(r.timestamp_ms);
    }
  } else {
    for (size_t i = 0; i < answer.results.size(); ++i) {
      const MessageResult& r = answer.results[i];
      v1::PublishResult* result = reference.add_results();
      result->set_id(request.messages(static_cast<int>(i)).id());
      v1::Status* status = result->mutable_status();
      status->set_code(static_cast<int>(r.status.code()));
      status->set_message(std::string(r.status.message()));
      status->set_retryable(!r.status.ok() && r.retryable);
      if (!r.status.ok()) continue;
      result->set_cluster(answer.cluster);
      result->set_partition(r.partition);
      result->set_offset(r.offset);
      int64_t seconds = r.timestamp_ms / 1000, rest = r.timestamp_ms % 1000;
      if (rest < 0) rest += 1000, --seconds;
      result->mutable_timestamp()->set_seconds(seconds);
      result->mutable_timestamp()->set_nanos(static_cast<int32_t>(rest * 1'000'000));
    }
  }
  pair.reference = reference.SerializeAsString();
  return pair;
}

TEST(PublishWire, ResponsesAreTheGeneratedSerializersBytes) {
  std::mt19937 random(3);
  const int64_t timestamps[] = {0, 1, 999, 1000, 1700000000123, -1, -1500, INT64_MAX};
  const int64_t offsets[] = {0, 1, 127, 128, int64_t{1} << 40, -1, INT64_MAX};
  const int32_t partitions[] = {0, 1, 5, 200, -1, INT32_MAX};
  for (int i = 0; i < 400; ++i) {
    v1::PublishRequest request = RandomRequest(random);
    if (request.messages_size() == 0) request.add_messages();
    BatchResults answer;
    answer.cluster = i % 7 == 0 ? "" : "cluster-" + std::to_string(i % 3);
    const bool failures = i % 3 == 0;
    for (int m = 0; m < request.messages_size(); ++m) {
      MessageResult r;
      r.partition = partitions[random() % std::size(partitions)];
      r.offset = offsets[random() % std::size(offsets)];
      r.timestamp_ms = timestamps[random() % std::size(timestamps)];
      if (failures && random() % 2 == 0) {
        r.status = random() % 2 ? absl::UnavailableError("broker down")
                                : absl::InvalidArgumentError("");
        r.retryable = random() % 2 == 0;
      }
      answer.results.push_back(r);
    }
    const ResponsePair pair = Encode(request, answer);
    ASSERT_EQ(pair.encoded, pair.reference) << i;
  }
}

TEST(PublishWire, TheCompactFormOnlyWhenAskedAndEveryMessageWasWritten) {
  v1::PublishRequest request;
  request.set_request_id(7);
  request.add_messages()->set_id("a");
  request.add_messages()->set_id("b");
  BatchResults answer;
  answer.cluster = "main";
  answer.results.resize(2);
  answer.results[0].partition = 1, answer.results[0].offset = 10;
  answer.results[0].timestamp_ms = 5;
  answer.results[1].partition = 2, answer.results[1].offset = 20;
  answer.results[1].timestamp_ms = 6;
  v1::PublishResponse response;

  ASSERT_TRUE(response.ParseFromString(Encode(request, answer).encoded));
  EXPECT_FALSE(response.has_compact());
  EXPECT_EQ(response.results_size(), 2);

  request.set_compact_results(true);
  ASSERT_TRUE(response.ParseFromString(Encode(request, answer).encoded));
  EXPECT_EQ(response.request_id(), 7u);
  EXPECT_EQ(response.results_size(), 0);
  EXPECT_EQ(response.compact().cluster(), "main");
  EXPECT_EQ(response.compact().partitions(1), 2);
  EXPECT_EQ(response.compact().offsets(1), 20);
  EXPECT_EQ(response.compact().timestamps_ms(1), 6);

  answer.results[1].status = absl::UnavailableError("down");
  ASSERT_TRUE(response.ParseFromString(Encode(request, answer).encoded));
  EXPECT_FALSE(response.has_compact());
  ASSERT_EQ(response.results_size(), 2);
  EXPECT_EQ(response.results(0).id(), "a");
  EXPECT_EQ(response.results(1).status().code(), 14);
}

}  // namespace
}  // namespace ferry::publish
