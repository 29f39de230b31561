#include "publish_wire.h"

#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "ferry/v1/publisher.pb.h"

namespace ferry::client::internal {
namespace {

using std::chrono::system_clock;

// What the generated code makes of `message`: the reference the hand-written
// encoder must match byte for byte.
ferry::v1::OutgoingMessage Reference(const Message& message, const std::string& id) {
  ferry::v1::OutgoingMessage out;
  out.set_key(message.key);
  out.set_value(message.value);
  for (const Header& header : message.headers) {
    ferry::v1::Header* h = out.add_headers();
    h->set_key(header.key);
    h->set_value(header.value);
  }
  out.set_ordering_key(message.ordering_key);
  out.set_id(id);
  if (message.timestamp.has_value()) {
    *out.mutable_timestamp() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            message.timestamp->time_since_epoch())
            .count());
  }
  return out;
}

std::string Encode(const Message& message, const std::string& id) {
  std::string bytes(MessageFieldSize(ViewOf(message), id), '\0');
  char* end = WriteMessageField(ViewOf(message), id, bytes.data());
  EXPECT_EQ(end, bytes.data() + bytes.size()) << "size and writer disagree";
  return bytes;
}

std::string EncodedHeader(uint64_t request_id, const std::string& topic) {
  std::string bytes(RequestHeaderSize(request_id, topic), '\0');
  char* end = WriteRequestHeader(request_id, topic, bytes.data());
  EXPECT_EQ(end, bytes.data() + bytes.size()) << "size and writer disagree";
  return bytes;
}

system_clock::time_point At(int64_t nanos_since_epoch) {
  return system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(
      std::chrono::nanoseconds(nanos_since_epoch)));
}

std::vector<Message> Cases() {
  std::vector<Message> cases;
  cases.push_back(Message{});  // everything empty
  cases.push_back(Message{.key = "k", .value = "v"});
  cases.push_back(Message{.value = std::string(1 << 20, 'x')});  // 3-byte length
  cases.push_back(Message{.key = std::string(200, 'k'), .value = std::string(128, '\0')});
  cases.push_back(Message{.key = "key",
                          .value = "value",
                          .headers = {{"a", "1"},
                                      {"", "empty key"},
                                      {"empty value", ""},
                                      {"", ""},
                                      {"bin", std::string("\0\xff\x80", 3)}},
                          .ordering_key = "order"});
  cases.push_back(Message{.ordering_key = "only the ordering key"});
  cases.push_back(Message{.value = "now", .timestamp = At(1'764'892'800'123'456'789)});
  cases.push_back(Message{.timestamp = At(0)});                    // set, all zero
  cases.push_back(Message{.timestamp = At(5'000'000'000)});        // seconds only
  cases.push_back(Message{.timestamp = At(999)});                  // nanos only
  cases.push_back(Message{.timestamp = At(-1'500'000'000)});       // before 1970
  cases.push_back(Message{.timestamp = At(-86'400'000'000'000)});  // whole seconds before
  return cases;
}

TEST(PublishWireTest, MessagesEncodeAsTheGeneratedSerializerDoes) {
  int i = 0;
  for (const Message& message : Cases()) {
    SCOPED_TRACE(i++);
    const std::string id = "0123456789abcdef0123456789abcdef";
    ferry::v1::PublishRequest expected;
    *expected.add_messages() = Reference(message, id);

    const std::string bytes = Encode(message, id);
    EXPECT_EQ(bytes, expected.SerializeAsString());
    ferry::v1::PublishRequest parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes));
    ASSERT_EQ(parsed.messages_size(), 1);
    EXPECT_EQ(parsed.messages(0).SerializeAsString(),
              expected.messages(0).SerializeAsString());
    EXPECT_EQ(parsed.messages(0).value().size(), message.value.size());
  }
}

TEST(PublishWireTest, EmptyIdIsLeftOut) {
  const Message message{.key = "k"};
  ferry::v1::PublishRequest expected;
  *expected.add_messages() = Reference(message, "");
  EXPECT_EQ(Encode(message, ""), expected.SerializeAsString());
}

TEST(PublishWireTest, RequestIsHeaderAndMessagesBackToBack) {
  for (uint64_t request_id : {uint64_t{0}, uint64_t{1}, uint64_t{300}, ~uint64_t{0}}) {
    SCOPED_TRACE(request_id);
    ferry::v1::PublishRequest expected;
    expected.set_request_id(request_id);
    expected.set_topic("orders.eu");
    expected.set_compact_results(true);
    std::vector<std::unique_ptr<Pending>> pendings;
    int n = 0;
    for (const Message& message : Cases()) {
      const std::string id = "id-" + std::to_string(n++);
      *expected.add_messages() = Reference(message, id);
      std::unique_ptr<Pending> pending =
          Pending::New("orders.eu", message.key, MessageFieldSize(ViewOf(message), id));
      WriteMessageField(ViewOf(message), id, pending->mutable_wire());
      pendings.push_back(std::move(pending));
    }
    EXPECT_EQ(
        EncodedHeader(request_id, "orders.eu") +
            [&] {
              std::string all;
              for (const auto& pending : pendings) all += pending->wire();
              return all;
            }() +
            "\x20\x01",  // the trailer: compact_results = true
        expected.SerializeAsString());

    grpc::ByteBuffer buffer = EncodeRequest(request_id, "orders.eu", pendings);
    std::vector<grpc::Slice> slices;
    ASSERT_TRUE(buffer.Dump(&slices).ok());
    std::string bytes;
    for (const grpc::Slice& slice : slices) {
      bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
    ferry::v1::PublishRequest parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes));
    EXPECT_EQ(parsed.SerializeAsString(), expected.SerializeAsString());
    EXPECT_EQ(parsed.messages_size(), static_cast<int>(Cases().size()));
  }
}

grpc::ByteBuffer InSlices(const std::string& bytes, std::size_t slice_size) {
  std::vector<grpc::Slice> slices;
  for (std::size_t at = 0; at < bytes.size(); at += slice_size) {
    slices.emplace_back(bytes.data() + at, std::min(slice_size, bytes.size() - at));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

std::string Bytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

// A PublishMany part as the generated serializer would write it, and the
// request of a retry of some of its messages.
TEST(PublishWireTest, PartIsTheRequestOfItsMessagesAndRetriesResendTheirBytes) {
  const std::vector<Message> cases = Cases();
  std::vector<MessageView> views;
  PublishManyResult ids;
  std::vector<uint32_t> sizes;
  ferry::v1::PublishRequest expected;
  expected.set_topic("orders.eu");
  expected.set_compact_results(true);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    views.push_back(ViewOf(cases[i]));
    ids.ids += "id-" + std::to_string(i);
    ids.id_ends.push_back(static_cast<uint32_t>(ids.ids.size()));
    sizes.push_back(static_cast<uint32_t>(MessageFieldSize(views.back(), ids.id(i))));
    *expected.add_messages() = Reference(cases[i], std::string(ids.id(i)));
  }
  std::unique_ptr<ManyPart> part = EncodePart("orders.eu", views, ids, 0, sizes);
  const std::string whole(reinterpret_cast<const char*>(part->request.begin()),
                          part->request.size());
  EXPECT_EQ(whole, expected.SerializeAsString());
  // The keys it will hold: ordering key, else key, of the messages with one.
  EXPECT_EQ(part->order_keys,
            (std::vector<std::string_view>{"k", std::string(200, 'k'), "order",
                                           "only the ordering key"}));
  EXPECT_EQ(part->sending.size(), cases.size());

  part->sending = {1, 4, static_cast<uint32_t>(cases.size() - 1)};
  ferry::v1::PublishRequest retry;
  retry.set_topic("orders.eu");
  retry.set_compact_results(true);
  for (uint32_t i : part->sending) *retry.add_messages() = expected.messages(i);
  EXPECT_EQ(Bytes(EncodeRetry(*part)), retry.SerializeAsString());
}

TEST(PublishWireTest, CompactResultsAreOneOkViewPerMessage) {
  ferry::v1::PublishResponse response;
  ferry::v1::CompactPublishResults* compact = response.mutable_compact();
  compact->set_cluster("eu-1");
  for (int i = 0; i < 3; ++i) {
    compact->add_partitions(i);
    compact->add_offsets((int64_t{1} << 40) + i);
    compact->add_timestamps_ms(1'700'000'000'000 + i);  // not read: skipped
  }
  const std::string bytes = response.SerializeAsString();
  for (std::size_t slice_size : {bytes.size(), std::size_t{3}}) {
    ResponseStorage storage;
    std::vector<ResultView> results;
    const grpc::ByteBuffer buffer = InSlices(bytes, slice_size);
    ASSERT_TRUE(ReadResults(buffer, &storage, &results));
    ASSERT_EQ(results.size(), 3u);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(results[i].code, 0);
      EXPECT_EQ(results[i].cluster, "eu-1");
      EXPECT_EQ(results[i].partition, i);
      EXPECT_EQ(results[i].offset, (int64_t{1} << 40) + i);
      EXPECT_TRUE(results[i].id.empty());
    }
  }
  // Unpacked values parse too; arrays of different lengths do not.
  const std::string unpacked =
      "\x22\x0c"  // compact, 12 bytes:
      "\x0a\x02"
      "eu"                 // cluster
      "\x10\x01\x10\x02"   // partitions 1, 2, one tag each
      "\x18\x07\x18\x08";  // offsets 7, 8
  ResponseStorage storage;
  std::vector<ResultView> results;
  ASSERT_TRUE(ReadResults(InSlices(unpacked, unpacked.size()), &storage, &results));
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1].partition, 2);
  EXPECT_EQ(results[1].offset, 8);
  compact->add_partitions(9);
  results.clear();
  const std::string uneven = response.SerializeAsString();
  EXPECT_FALSE(ReadResults(InSlices(uneven, uneven.size()), &storage, &results));
}

TEST(PublishWireTest, PendingKeepsTopicAndOrderKeyBehindTheEncoding) {
  const Message message{.key = "k", .value = "v"};
  std::unique_ptr<Pending> pending =
      Pending::New("topic", "order key", MessageFieldSize(ViewOf(message), "id"));
  WriteMessageField(ViewOf(message), "id", pending->mutable_wire());
  EXPECT_EQ(pending->topic, "topic");
  EXPECT_EQ(pending->order_key, "order key");
  ferry::v1::PublishRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(std::string(pending->wire())));
  EXPECT_EQ(parsed.messages(0).key(), "k");
  EXPECT_EQ(parsed.messages(0).id(), "id");
}

ferry::v1::PublishResponse SampleResponse() {
  ferry::v1::PublishResponse response;
  response.set_request_id(7);  // not read: skipped
  ferry::v1::PublishResult* ok = response.add_results();
  ok->set_cluster("eu-1");
  ok->set_partition(5);
  ok->set_offset(int64_t{1} << 40);
  ok->mutable_timestamp()->set_seconds(1'700'000'000);  // not read: skipped
  ok->set_id("id-ok");
  ferry::v1::PublishResult* failed = response.add_results();
  failed->mutable_status()->set_code(14);
  failed->mutable_status()->set_message("broker unavailable");
  failed->mutable_status()->set_retryable(true);
  failed->set_id("id-failed");
  response.add_results();  // all defaults: an empty message
  ferry::v1::PublishResult* negative = response.add_results();
  negative->set_partition(-1);  // ten-byte varint
  negative->set_offset(-1);
  negative->mutable_status()->set_code(3);
  return response;
}

void ExpectSample(const std::vector<ResultView>& results) {
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0].code, 0);
  EXPECT_EQ(results[0].cluster, "eu-1");
  EXPECT_EQ(results[0].partition, 5);
  EXPECT_EQ(results[0].offset, int64_t{1} << 40);
  EXPECT_EQ(results[0].id, "id-ok");
  EXPECT_EQ(results[1].code, 14);
  EXPECT_EQ(results[1].error, "broker unavailable");
  EXPECT_TRUE(results[1].retryable);
  EXPECT_EQ(results[1].id, "id-failed");
  EXPECT_EQ(results[2].code, 0);
  EXPECT_TRUE(results[2].id.empty());
  EXPECT_TRUE(results[2].cluster.empty());
  EXPECT_EQ(results[3].code, 3);
  EXPECT_FALSE(results[3].retryable);
  EXPECT_EQ(results[3].partition, -1);
  EXPECT_EQ(results[3].offset, -1);
}

TEST(PublishWireTest, ResultsAreReadAsTheGeneratedParserReadsThem) {
  const std::string bytes = SampleResponse().SerializeAsString();
  for (std::size_t slice_size : {bytes.size(), std::size_t{1}, std::size_t{7}}) {
    SCOPED_TRACE(slice_size);
    ResponseStorage storage;
    std::vector<ResultView> results;
    // The views may point into the buffer's slices: it outlives them.
    const grpc::ByteBuffer response = InSlices(bytes, slice_size);
    ASSERT_TRUE(ReadResults(response, &storage, &results));
    ExpectSample(results);
  }
}

TEST(PublishWireTest, UnknownFieldsAndWireTypesAreSkipped) {
  ferry::v1::PublishResponse rest = SampleResponse();
  // Field 9 of each wire type, and `cluster` (2) sent as a varint, inside the
  // first result; the generated parser skips all of them.
  std::string first = rest.results(0).SerializeAsString();
  first += static_cast<char>((9 << 3) | 0);
  first += '\x05';
  first += static_cast<char>((9 << 3) | 1);
  first += std::string(8, 'a');
  first += static_cast<char>((9 << 3) | 5);
  first += std::string(4, 'b');
  first += static_cast<char>((2 << 3) | 0);
  first += '\x01';
  rest.mutable_results()->DeleteSubrange(0, 1);
  ASSERT_LT(first.size(), 128u);  // one-byte length below
  // Serialized messages concatenate: the first result, then the others.
  const std::string bytes = std::string(1, static_cast<char>((3 << 3) | 2)) +
                            static_cast<char>(first.size()) + first +
                            rest.SerializeAsString();
  ferry::v1::PublishResponse check;
  ASSERT_TRUE(check.ParseFromString(bytes));
  EXPECT_EQ(check.results(0).cluster(), "eu-1");
  EXPECT_EQ(check.results_size(), 4);

  ResponseStorage storage;
  std::vector<ResultView> results;
  const grpc::ByteBuffer response = InSlices(bytes, 5);
  ASSERT_TRUE(ReadResults(response, &storage, &results));
  ExpectSample(results);
}

TEST(PublishWireTest, TruncatedResponseIsRejected) {
  const std::string bytes = SampleResponse().SerializeAsString();
  for (std::size_t cut : {bytes.size() - 1, bytes.size() - 2, std::size_t{3}}) {
    SCOPED_TRACE(cut);
    ResponseStorage storage;
    std::vector<ResultView> results;
    EXPECT_FALSE(ReadResults(InSlices(bytes.substr(0, cut), 4), &storage, &results));
  }
}

TEST(PublishWireTest, EmptyResponseHasNoResults) {
  ResponseStorage storage;
  std::vector<ResultView> results;
  EXPECT_TRUE(ReadResults(grpc::ByteBuffer(), &storage, &results));
  EXPECT_TRUE(results.empty());
}

}  // namespace
}  // namespace ferry::client::internal
