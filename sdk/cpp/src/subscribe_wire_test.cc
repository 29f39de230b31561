#include "subscribe_wire.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "ferry/v1/subscriber.pb.h"

namespace ferry::client::internal {
namespace {

using namespace std::string_literals;

// `bytes` cut into pieces of 1..max_piece bytes, as gRPC may deliver it.
std::vector<std::string_view> Cut(std::string_view bytes, std::mt19937& random,
                                  std::size_t max_piece) {
  std::vector<std::string_view> pieces;
  while (!bytes.empty()) {
    const std::size_t n = std::min(
        bytes.size(), std::uniform_int_distribution<std::size_t>(1, max_piece)(random));
    pieces.push_back(bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
  return pieces;
}

constexpr int64_t kNanosPerSecond = 1'000'000'000;

// A publish time as the Timestamp the decoder read it from (seconds and
// nanos normalized: only their sum reaches the clock).
void SetTime(std::chrono::system_clock::time_point at, google::protobuf::Timestamp* out) {
  const int64_t nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
  int64_t seconds = nanos / kNanosPerSecond, rest = nanos % kNanosPerSecond;
  if (rest < 0) rest += kNanosPerSecond, --seconds;
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rest));
}

// What the decoder read, rebuilt as the generated message.
v1::SubscribeResponse Rebuild(const DecodedResponse& decoded) {
  v1::SubscribeResponse response;
  switch (decoded.kind) {
    case DecodedResponse::Kind::kNotSet:
      break;
    case DecodedResponse::Kind::kOpened:
      response.mutable_opened();
      break;
    case DecodedResponse::Kind::kMessages: {
      v1::MessageBatch* batch = response.mutable_messages();
      EXPECT_EQ(decoded.receipts.size(), decoded.messages.size());
      for (std::size_t i = 0; i < decoded.messages.size(); ++i) {
        const ReceivedView& m = decoded.messages[i];
        v1::ReceivedMessage* out = batch->add_messages();
        out->set_receipt(std::string(decoded.receipts.At(i)));
        out->set_topic(std::string(m.topic));
        out->set_partition(m.partition);
        out->set_offset(m.offset);
        out->set_key(std::string(m.key));
        out->set_value(std::string(m.value));
        for (const HeaderView& header : m.headers) {
          v1::Header* h = out->add_headers();
          h->set_key(std::string(header.key));
          h->set_value(std::string(header.value));
        }
        if (m.publish_time.has_value())
          SetTime(*m.publish_time, out->mutable_publish_time());
        out->set_delivery_attempt(m.delivery_attempt);
        out->set_cluster(std::string(m.cluster));
        out->set_id(std::string(m.id));
      }
      for (const DecodedRun& run : decoded.runs) {
        v1::ReceiptRun* out = batch->add_runs();
        out->set_run(run.token);
        out->set_first_message(run.first_message);
        out->set_count(run.count);
      }
      break;
    }
    case DecodedResponse::Kind::kReceiptResults: {
      v1::ReceiptResults* results = response.mutable_receipt_results();
      for (const DecodedResult& result : decoded.results) {
        v1::ReceiptResult* out = results->add_results();
        out->set_receipt(result.receipt);
        out->mutable_status()->set_code(result.code);
        out->mutable_status()->set_message(result.message);
      }
      break;
    }
  }
  return response;
}

// The generated parser's reading in the same form: without what the decoder
// checks but does not keep, and publish times as the clock holds them.
v1::SubscribeResponse Expected(v1::SubscribeResponse response) {
  response.DiscardUnknownFields();
  if (response.has_opened()) response.mutable_opened()->Clear();
  // (mutable_* would set the oneof.)
  google::protobuf::RepeatedPtrField<v1::ReceivedMessage> none;
  for (v1::ReceivedMessage& m : response.has_messages()
                                    ? *response.mutable_messages()->mutable_messages()
                                    : none) {
    if (!m.has_publish_time()) continue;
    int64_t ticks = 0;
    if (__builtin_mul_overflow(m.publish_time().seconds(), kNanosPerSecond, &ticks) ||
        __builtin_add_overflow(ticks, int64_t{m.publish_time().nanos()}, &ticks)) {
      m.clear_publish_time();
      continue;
    }
    SetTime(std::chrono::system_clock::time_point(std::chrono::nanoseconds(ticks)),
            m.mutable_publish_time());
  }
  if (response.has_receipt_results()) {
    for (v1::ReceiptResult& r : *response.mutable_receipt_results()->mutable_results()) {
      r.clear_span();
      r.mutable_status()->set_retryable(false);
    }
  }
  return response;
}

void ExpectSameAsGeneratedParser(const std::string& bytes, std::mt19937& random) {
  v1::SubscribeResponse reference;
  const bool parsed = reference.ParseFromString(bytes);
  for (std::size_t max_piece : {bytes.size() + 1, std::size_t{7}, std::size_t{1}}) {
    const std::vector<std::string_view> pieces = Cut(bytes, random, max_piece);
    DecodedResponse decoded;
    const absl::Status status = DecodeSubscribeResponse(pieces, &decoded);
    ASSERT_EQ(status.ok(), parsed) << status << " for " << absl::BytesToHexString(bytes);
    if (!parsed) {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_TRUE(absl::StrContains(status.message(), "malformed SubscribeResponse"));
      continue;
    }
    const v1::SubscribeResponse got = Rebuild(decoded);
    const v1::SubscribeResponse want = Expected(reference);
    ASSERT_EQ(got.SerializeAsString(), want.SerializeAsString())
        << got.DebugString() << "\nwant\n"
        << want.DebugString() << "\nfor " << absl::BytesToHexString(bytes);
  }
}

v1::SubscribeResponse RandomResponse(std::mt19937& random) {
  auto coin = [&] { return std::bernoulli_distribution(0.5)(random); };
  auto bytes = [&](std::size_t max) {
    std::string s(std::uniform_int_distribution<std::size_t>(0, max)(random), '\0');
    for (char& c : s) c = static_cast<char>(random());
    return s;
  };
  auto text = [&](std::size_t max) {
    std::string s(std::uniform_int_distribution<std::size_t>(0, max)(random), 'a');
    for (char& c : s) c = static_cast<char>('a' + random() % 26);
    if (coin() && !s.empty()) s += "é€😀";  // 2-, 3- and 4-byte forms
    return s;
  };
  auto number = [&] {
    return static_cast<int64_t>(random()) - (coin() ? 0 : int64_t{1} << 31);
  };
  v1::SubscribeResponse response;
  switch (random() % 4) {
    case 0:
      response.mutable_opened()->set_node_id(text(10));
      response.mutable_opened()->set_stream_id(text(10));
      break;
    case 1:
    case 2: {
      v1::MessageBatch* batch = response.mutable_messages();
      const int count = std::uniform_int_distribution<int>(0, 6)(random);
      for (int i = 0; i < count; ++i) {
        v1::ReceivedMessage* m = batch->add_messages();
        m->set_receipt(bytes(40));
        m->set_topic(text(20));
        m->set_partition(static_cast<int32_t>(number()));
        m->set_offset(number() * (coin() ? 1 : 1 << 20));
        if (coin()) m->set_key(bytes(20));
        m->set_value(bytes(coin() ? 40 : 300));
        for (int h = std::uniform_int_distribution<int>(0, 3)(random); h > 0; --h) {
          v1::Header* header = m->add_headers();
          header->set_key(text(8));
          header->set_value(bytes(8));
        }
        if (coin()) {
          m->mutable_publish_time()->set_seconds(number() * (coin() ? 1 : 1 << 30));
          m->mutable_publish_time()->set_nanos(
              static_cast<int32_t>(random() % 1'000'000'000));
        }
        m->set_delivery_attempt(static_cast<int32_t>(random() % 5));
        m->set_cluster(text(6));
        if (coin()) m->set_id(text(32));
      }
      for (int r = std::uniform_int_distribution<int>(0, 2)(random); r > 0; --r) {
        v1::ReceiptRun* run = batch->add_runs();
        run->set_run(bytes(30));
        run->set_first_message(static_cast<uint32_t>(random() % 8));
        run->set_count(static_cast<uint32_t>(random() % 8));
      }
      break;
    }
    case 3: {
      v1::ReceiptResults* results = response.mutable_receipt_results();
      for (int r = std::uniform_int_distribution<int>(0, 3)(random); r > 0; --r) {
        v1::ReceiptResult* result = results->add_results();
        result->set_receipt(bytes(30));
        result->mutable_status()->set_code(static_cast<int32_t>(random() % 17));
        result->mutable_status()->set_message(text(30));
        result->mutable_status()->set_retryable(coin());
        if (coin()) {
          result->mutable_span()->set_run(bytes(20));
          result->mutable_span()->set_first(static_cast<uint32_t>(random() % 9));
          result->mutable_span()->set_count(static_cast<uint32_t>(random() % 9));
        }
      }
      break;
    }
  }
  return response;
}

TEST(SubscribeWire, DecodesWhatTheGeneratedSerializerWritesInAnyPieces) {
  std::mt19937 random(1);
  for (int i = 0; i < 500; ++i) {
    ExpectSameAsGeneratedParser(RandomResponse(random).SerializeAsString(), random);
  }
}

TEST(SubscribeWire, ReceiptsLieBackToBackInOneString) {
  v1::SubscribeResponse response;
  for (const char* receipt : {"r-one", "", "r-three"}) {
    response.mutable_messages()->add_messages()->set_receipt(receipt);
  }
  const std::string bytes = response.SerializeAsString();
  const std::string_view piece = bytes;
  DecodedResponse decoded;
  ASSERT_TRUE(DecodeSubscribeResponse({&piece, 1}, &decoded).ok());
  EXPECT_EQ(decoded.receipts.bytes, "r-oner-three");
  ASSERT_EQ(decoded.receipts.size(), 3u);
  EXPECT_EQ(decoded.receipts.At(0), "r-one");
  EXPECT_EQ(decoded.receipts.At(1), "");
  EXPECT_EQ(decoded.receipts.At(2), "r-three");
}

// The decoded messages view the bytes they arrived in: a field that lies in
// one piece is not copied; one that lies across two is copied once, into
// `spilled`; each message's headers are its own stretch of `headers`.
TEST(SubscribeWire, MessagesViewThePiecesAndCopyOnlyAFieldThatCrossesTwo) {
  v1::SubscribeResponse response;
  v1::ReceivedMessage* first = response.mutable_messages()->add_messages();
  first->set_topic("orders");
  first->set_value(std::string(100, 'a'));
  for (const char* key : {"h1", "h2"}) {
    v1::Header* header = first->add_headers();
    header->set_key(key);
    header->set_value("x");
  }
  v1::ReceivedMessage* second = response.mutable_messages()->add_messages();
  second->set_topic("orders");
  second->set_key("k");
  second->set_value(std::string(100, 'b'));
  second->add_headers()->set_key("h3");
  const std::string bytes = response.SerializeAsString();
  auto in = [](std::string_view view, std::string_view range) {
    return view.data() >= range.data() &&
           view.data() + view.size() <= range.data() + range.size();
  };

  // Given the response in one piece.
  const std::string_view whole = bytes;
  DecodedResponse decoded;
  ASSERT_TRUE(DecodeSubscribeResponse({&whole, 1}, &decoded).ok());
  ASSERT_EQ(decoded.messages.size(), 2u);
  EXPECT_TRUE(decoded.spilled.empty());
  const ReceivedView& a = decoded.messages[0];
  const ReceivedView& b = decoded.messages[1];
  EXPECT_EQ(a.value, std::string(100, 'a'));
  EXPECT_TRUE(in(a.value, whole) && in(a.topic, whole) && in(b.key, whole));
  ASSERT_EQ(a.headers.size(), 2u);
  EXPECT_EQ(a.headers[1].key, "h2");
  EXPECT_TRUE(in(a.headers[1].key, whole));
  ASSERT_EQ(b.headers.size(), 1u);
  EXPECT_EQ(b.headers[0].key, "h3");
  EXPECT_EQ(b.headers.data(), a.headers.data() + 2);

  // When the second value is cut between two pieces.
  const std::size_t cut = bytes.rfind(std::string(100, 'b')) + 50;
  const std::string_view pieces[] = {whole.substr(0, cut), whole.substr(cut)};
  DecodedResponse split;
  ASSERT_TRUE(DecodeSubscribeResponse(pieces, &split).ok());
  ASSERT_EQ(split.spilled.size(), 1u);
  EXPECT_EQ(split.messages[1].value, std::string(100, 'b'));
  EXPECT_EQ(split.messages[1].value.data(), split.spilled.front().data());
  EXPECT_TRUE(in(split.messages[0].value, pieces[0]));
  EXPECT_TRUE(in(split.messages[1].headers[0].key, pieces[1]));
}

// Every truncation and every single-byte change of valid responses, plus
// unknown fields of each wire type, groups, known fields with the wrong wire
// type and the oneof's members in turn: accepted exactly when the generated
// parser accepts, with the same content.
TEST(SubscribeWire, AgreesWithTheGeneratedParserOnMalformedAndUnknownInput) {
  std::mt19937 random(2);
  // 20 inputs, each cut at and changed in every byte: the fuzz target goes
  // deeper; more here took minutes under the sanitizers.
  for (int i = 0; i < 20; ++i) {
    const std::string bytes = RandomResponse(random).SerializeAsString();
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      ExpectSameAsGeneratedParser(bytes.substr(0, n), random);
      std::string changed = bytes;
      changed[n] = static_cast<char>(random());
      ExpectSameAsGeneratedParser(changed, random);
    }
  }
  // messages { messages { receipt: "r" value: "abc" } }
  const std::string batch = std::string("\x12\x0a\x0a\x08\x0a\x01r\x32\x03") + "abc";
  const std::string extras[] = {
      "\x28\x96\x01",  // field 5 varint
      "\x31"
      "12345678",  // field 6 fixed64
      "\x3d"
      "1234",                              // field 7 fixed32
      "\x42\x02xy",                        // field 8 length-delimited
      "\x4b\x08\x01\x4c",                  // group 9 { field 1 varint }
      "\x4b\x53\x08\x01\x54\x4c",          // nested groups
      "\x4b\x4c\x4c",                      // an end tag too many
      "\x4b\x54",                          // a group closed by another field's end tag
      "\x4b",                              // a group never closed
      "\x0a\x00"s,                         // opened: replaces the batch
      "\x0a\x03\x0a\x01\xff",              // a node_id that is not UTF-8
      "\x1a\x00"s,                         // receipt_results: replaces the batch
      "\x12\x05\x0a\x03\x12\x01t",         // a second batch merges
      "\x12\x05\x0a\x03\x12\x01\xc3",      // a topic that is not UTF-8
      "\x12\x06\x0a\x04\x5a\x02\xed\xa0",  // an id that is a surrogate half
      "\x12\x07\x0a\x05\x3a\x03\x0a\x01\xff",  // a header key that is not UTF-8
      "\x12\x06\x0a\x04\x42\x02\x08\x05",      // a publish time of 5 s
      "\x12\x0a\x0a\x08\x42\x02\x08\x05\x42\x02\x10\x07",  // two times merge
      "\x12\x07\x0a\x05\x0a\x01x\x0a\x00"s,                // the last receipt wins
      "\x12\x04\x0a\x02\x18\x80",           // a partition past its message's end
      "\x12\x04\x0a\x02\x1a\x00"s,          // partition as length-delimited: skipped
      "\x12\x06\x12\x04\x0a\x00\x10\x01"s,  // a run
      "\x1a\x09\x0a\x07\x12\x05\x08\x05\x12\x01\xff",  // a status message not UTF-8
      "\x1a\x08\x0a\x06\x1a\x04\x0a\x00\x18\x02"s,     // a failed span
      "\x07",                                          // wire type 7
      std::string(1, '\0'),                            // field 0
      "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  // an 11-byte varint tag
      "\x12\x0d\x0a\x0b\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  // 10-byte offset
  };
  for (const std::string& extra : extras) {
    ExpectSameAsGeneratedParser(batch + extra, random);
    ExpectSameAsGeneratedParser(extra + batch, random);
    ExpectSameAsGeneratedParser(extra, random);
  }
}

// A length prefix as the wire writes it.
std::string VarintBytes(uint64_t n) {
  std::string out;
  for (; n >= 0x80; n >>= 7) out += static_cast<char>(n | 0x80);
  return out + static_cast<char>(n);
}

// `m`'s fields one by one, each serialized alone (a repeated field's
// elements apart).
std::vector<std::string> FieldChunks(const google::protobuf::Message& m) {
  const google::protobuf::Reflection* reflection = m.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(m, &fields);
  std::vector<std::string> chunks;
  for (const google::protobuf::FieldDescriptor* field : fields) {
    const int n = field->is_repeated() ? reflection->FieldSize(m, field) : 1;
    for (int i = 0; i < n; ++i) {
      std::unique_ptr<google::protobuf::Message> one(m.New());
      one->CopyFrom(m);
      for (const google::protobuf::FieldDescriptor* other : fields) {
        if (other != field || field->is_repeated())
          reflection->ClearField(one.get(), other);
      }
      if (field->is_repeated()) {
        reflection->AddMessage(one.get(), field)
            ->CopyFrom(reflection->GetRepeatedMessage(m, field, i));
      }
      chunks.push_back(one->SerializeAsString());
    }
  }
  return chunks;
}

// Fields a ReceivedMessage's reader does not know, of each kind, in the
// message, a header or a publish time: first those the fast path skips itself
// (a one-byte tag, wire type varint or length, a known number with another
// wire type among them), then those it leaves to the general path.
const std::vector<std::string> kUnknownFields = {
    "\x68\x05"s,                                      // field 13, varint
    "\x68\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s,  // field 13, ten-byte varint
    "\x62\x02"
    "ab"s,                // field 12, length
    "\x1a\x01x"s,         // partition as bytes
    "\x38\x01"s,          // headers as a varint
    "\x3a\x02\x18\x01"s,  // a header's field 3, varint
    "\x3a\x04\x1a\x02"
    "ab"s,                                    // a header's field 3, length
    "\x42\x02\x18\x01"s,                      // a publish time's field 3
    "\x42\x03\x2a\x01x"s,                     // a publish time's field 5
    "\x6d\x01\x02\x03\x04"s,                  // field 13, fixed32
    "\x69\x01\x02\x03\x04\x05\x06\x07\x08"s,  // field 13, fixed64
    "\x73\x08\x01\x74"s,                      // group 14 holding a varint
    "\x80\x01\x05"s,                          // field 16: a two-byte tag
    "\x3a\x03\x80\x01\x05"s,                  // the same in a header
    "\x42\x03\x80\x01\x05"s,                  // the same in a publish time
};
// Fields the general path rejects.
const std::vector<std::string> kBadFields = {
    "\x00\x01"s,          // field number 0
    "\x6e\x00"s,          // wire type 6
    "\x6c"s,              // end of group 13 outside a group
    "\x3a\x02\x00\x01"s,  // field number 0 in a header
};

// `response`'s messages' bytes with their fields in a random order, some
// repeated (the last wins, or they merge) and, now and then, unknown fields
// of each kind (rarely a bad one) among them.
std::vector<std::string> ShuffledBodies(const v1::SubscribeResponse& response,
                                        std::mt19937& random) {
  std::vector<std::string> bodies;
  for (const v1::ReceivedMessage& m : response.messages().messages()) {
    std::vector<std::string> chunks = FieldChunks(m);
    if (!chunks.empty() && random() % 3 == 0)
      chunks.push_back(chunks[random() % chunks.size()]);
    for (unsigned i = random() % 3; i > 0; --i)
      chunks.push_back(kUnknownFields[random() % kUnknownFields.size()]);
    if (random() % 32 == 0) chunks.push_back(kBadFields[random() % kBadFields.size()]);
    std::shuffle(chunks.begin(), chunks.end(), random);
    std::string body;
    for (const std::string& chunk : chunks) body += chunk;
    bodies.push_back(std::move(body));
  }
  return bodies;
}

// A response of a batch of messages with these bytes and `response`'s runs.
std::string Framed(const std::vector<std::string>& bodies,
                   const v1::SubscribeResponse& response) {
  std::string batch;
  for (const std::string& body : bodies)
    batch += "\x0a" + VarintBytes(body.size()) + body;
  v1::MessageBatch runs;
  *runs.mutable_runs() = response.messages().runs();
  batch += runs.SerializeAsString();
  return "\x12" + VarintBytes(batch.size()) + batch;
}

// The decoder with its fast path and without it read `pieces` alike: the
// same content or the same error.
void ExpectFastPathSameAsGeneral(const std::vector<std::string_view>& pieces,
                                 const std::string& bytes) {
  DecodedResponse fast, general;
  const absl::Status fast_status = DecodeSubscribeResponse(pieces, &fast);
  const absl::Status general_status = DecodeSubscribeResponseGenerally(pieces, &general);
  ASSERT_EQ(fast_status, general_status)
      << absl::BytesToHexString(bytes) << " in " << pieces.size() << " pieces, first "
      << pieces[0].size();
  if (!fast_status.ok()) return;
  ASSERT_EQ(Rebuild(fast).SerializeAsString(), Rebuild(general).SerializeAsString())
      << absl::BytesToHexString(bytes);
  EXPECT_EQ(fast.receipts.bytes, general.receipts.bytes);
  EXPECT_EQ(fast.receipts.ends, general.receipts.ends);
  EXPECT_EQ(fast.spilled.size(), general.spilled.size());
}

// ... on `bytes` whole, in one piece, and cut at random into small pieces.
void ExpectFastPathSameAsGeneral(const std::string& bytes, std::mt19937& random) {
  ExpectFastPathSameAsGeneral({bytes}, bytes);
  if (!bytes.empty()) ExpectFastPathSameAsGeneral(Cut(bytes, random, 64), bytes);
}

// ... on `bytes` split in two at every offset.
void ExpectFastPathSameAsGeneralAtEverySplit(const std::string& bytes) {
  const std::string_view all = bytes;
  for (std::size_t k = 1; k < bytes.size(); ++k)
    ExpectFastPathSameAsGeneral({all.substr(0, k), all.substr(k)}, bytes);
}

// The fast path against the general path on batches in ferryd's field order
// and in shuffled orders with unknown fields, whole and in pieces; for some,
// split at every offset, every truncation inside one message (its length and
// the batch's re-encoded, so that its fields overrun its end while it lies
// in one piece) and every single-byte change.
TEST(SubscribeWire, TheFastPathReadsExactlyWhatTheGeneralPathReads) {
  std::mt19937 random(3);
  int batches = 0;
  while (batches < 300) {
    const v1::SubscribeResponse response = RandomResponse(random);
    if (!response.has_messages()) continue;
    ++batches;
    ExpectFastPathSameAsGeneral(response.SerializeAsString(), random);
    const std::vector<std::string> bodies = ShuffledBodies(response, random);
    const std::string shuffled = Framed(bodies, response);
    ExpectFastPathSameAsGeneral(shuffled, random);
    if (batches > 30 || bodies.empty()) continue;
    ExpectFastPathSameAsGeneralAtEverySplit(shuffled);
    const std::size_t k = random() % bodies.size();
    for (std::size_t n = 0; n < bodies[k].size(); ++n) {
      std::vector<std::string> truncated = bodies;
      truncated[k].resize(n);
      ExpectFastPathSameAsGeneral(Framed(truncated, response), random);
    }
    for (std::size_t n = 0; n < shuffled.size(); ++n) {
      std::string changed = shuffled;
      changed[n] = static_cast<char>(random());
      ExpectFastPathSameAsGeneral(changed, random);
    }
  }
}

// Piece ends at the places the fast path must leave to the general one or
// take up again: a message's tag the last byte of a piece, its length prefix
// split, a field's tag the last byte, a message ending exactly at a piece end.
TEST(SubscribeWire, TheFastPathAndTheGeneralPathMeetAtPieceEnds) {
  v1::SubscribeResponse response;
  for (int i = 0; i < 2; ++i) {
    v1::ReceivedMessage* m = response.mutable_messages()->add_messages();
    m->set_receipt("r" + std::to_string(i));
    m->set_topic("orders");
    m->set_offset(7 + i);
    m->set_value(std::string(200, 'v'));  // a two-byte message length
    v1::Header* h = m->add_headers();
    h->set_key("ferry.id");
    h->set_value("id" + std::to_string(i));
  }
  const std::string bytes = response.SerializeAsString();
  const std::size_t body = response.messages().messages(0).ByteSizeLong();
  ASSERT_TRUE(body >= 128 && body < 16 * 1024);
  std::size_t first = 1;  // past the batch's tag and length
  while (static_cast<uint8_t>(bytes[first]) >= 0x80) ++first;
  ++first;
  ASSERT_EQ(static_cast<uint8_t>(bytes[first]), 0x0a);
  const std::size_t first_end = first + 1 + 2 + body;
  ASSERT_EQ(static_cast<uint8_t>(bytes[first_end]), 0x0a);
  const std::string want = Expected(response).SerializeAsString();
  const std::string_view all = bytes;
  for (std::size_t k : {first + 1,         // message 0's tag ends the piece
                        first + 2,         // its length prefix split
                        first + 4,         // its first field's tag ends the piece
                        first_end,         // message 0 ends with the piece
                        first_end + 1,     // message 1's tag ends the piece
                        first_end + 2}) {  // its length prefix split
    const std::vector<std::string_view> pieces = {all.substr(0, k), all.substr(k)};
    for (auto decode : {DecodeSubscribeResponse, DecodeSubscribeResponseGenerally}) {
      DecodedResponse decoded;
      ASSERT_TRUE(decode(pieces, &decoded).ok()) << k;
      EXPECT_EQ(Rebuild(decoded).SerializeAsString(), want) << k;
    }
  }
}

// A first message of many empty headers and a long receipt, then one huge
// value: the vectors reserved from the first message stay bounded each on
// its own, not a multiple of the batch.
TEST(SubscribeWire, ReservesBoundedRoomFromTheFirstMessage) {
  v1::SubscribeResponse response;
  v1::ReceivedMessage* first = response.mutable_messages()->add_messages();
  first->set_receipt(std::string(16 * 1024, 'r'));
  for (int i = 0; i < 8192; ++i) first->add_headers();
  response.mutable_messages()->add_messages()->set_value(std::string(60 << 20, 'v'));
  const std::string bytes = response.SerializeAsString();
  DecodedResponse decoded;
  const std::vector<std::string_view> pieces = {bytes};
  ASSERT_TRUE(DecodeSubscribeResponse(pieces, &decoded).ok());
  ASSERT_EQ(decoded.messages.size(), 2u);
  EXPECT_EQ(decoded.headers.size(), 8192u);
  EXPECT_LE(decoded.headers.capacity(), 16u * 1024);
  EXPECT_LE(decoded.receipts.bytes.capacity(), 256u * 1024);
}

TEST(SubscribeWire, AMalformedResponseNamesTheFieldTheReasonAndTheByte) {
  const struct {
    std::string bytes;
    std::string error;
  } cases[] = {
      {std::string("\x12\x06\x0a\x04\x32\x20") + "ab",
       "malformed SubscribeResponse.messages.messages[0].value: length 32 past the end "
       "(2 bytes left) at byte 5"},
      {"\x12\x07\x0a\x00\x0a\x03\x12\x01\xff"s,
       "malformed SubscribeResponse.messages.messages[1].topic: not UTF-8 at byte 8"},
      {"\x1a\x09\x0a\x07\x12\x05\x08\x05\x12\x01\xff",
       "malformed SubscribeResponse.receipt_results.results[0].status.message: not UTF-8 "
       "at byte 10"},
      {"\x12\x03\x0a\x01\x63",
       "malformed SubscribeResponse.messages.messages[0].(field 12): group 12 never "
       "closed at byte 4"},
      {"\x12\x05\x12\x03\x18\x80\x80",
       "malformed SubscribeResponse.messages.runs[0].count: varint past the end at byte "
       "5"},
      {"\x0a\x03\x12\x01\xc3",
       "malformed SubscribeResponse.opened.stream_id: not UTF-8 at byte 4"},
  };
  for (const auto& c : cases) {
    const std::string_view piece = c.bytes;
    DecodedResponse decoded;
    const absl::Status status = DecodeSubscribeResponse({&piece, 1}, &decoded);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(status.message(), c.error);
  }
}

}  // namespace
}  // namespace ferry::client::internal
