#include "subscribe/delivery_encoder.h"

#include <gtest/gtest.h>

#include "api/convert.h"
#include "subscribe/wire_receipt.h"

namespace ferry::subscribe {
namespace {

// What protobuf makes of the same delivery, but for the receipt (checked
// apart): the oracle for the hand-written wire form.
v1::ReceivedMessage Expected(const backend::ConsumedRecord& record,
                             const Delivery& delivery, const DeliveryContext& context) {
  v1::ReceivedMessage out;
  out.set_topic(record.topic);
  out.set_partition(record.partition);
  out.set_offset(delivery.offset);
  out.set_key(std::string(record.key));
  out.set_value(std::string(record.value));
  for (const auto& h : record.headers) {
    v1::Header& header = *out.add_headers();
    header.set_key(std::string(h.key));
    header.set_value(std::string(h.value));
    if (h.key == "ferry.id") out.set_id(std::string(h.value));
  }
  api::FromUnixMillis(record.timestamp_ms, out.mutable_publish_time());
  out.set_delivery_attempt(delivery.attempt);
  out.set_cluster(*context.cluster);
  return out;
}

// Every value copied, the default, every value lent.
class DeliveryEncoderTest : public testing::TestWithParam<size_t> {};
INSTANTIATE_TEST_SUITE_P(LendValuesFrom, DeliveryEncoderTest,
                         testing::Values(SIZE_MAX, DeliveryBatchWriter::kLendValuesFrom,
                                         1));

TEST_P(DeliveryEncoderTest, WritesWhatProtobufWouldForEveryKindOfRecord) {
  const std::string cluster = "main", empty_cluster;
  const std::string big(300, 'x');  // lengths past one varint byte
  // Records own their bytes, as fetched ones do, so values may be lent.
  const std::vector<backend::ConsumedRecord> records = {
      backend::Owned({.topic = "orders",
                      .partition = 2,
                      .offset = 9,
                      .key = "k",
                      .value = "value",
                      .headers = {{"a", "1"},
                                  {"ferry.id", "id-9"},
                                  {"", ""},
                                  {"ferry.id", "id-last"}},
                      .timestamp_ms = 1'700'000'000'123}),
      backend::Owned({.topic = "t", .offset = 0, .timestamp_ms = 0}),  // all defaults
      backend::Owned(
          {.topic = "t", .partition = 1, .offset = 1, .value = big, .timestamp_ms = -1}),
      backend::Owned({.topic = "t", .partition = 1, .offset = 2, .value = big}),
  };
  const std::vector<Delivery> deliveries = {
      {.offset = 9, .attempt = 3, .generation = 4, .stream = 7, .deadline = {}},
      {.offset = 0, .attempt = 1, .generation = 0, .stream = 7, .deadline = {}},
      {.offset = 1, .attempt = 2, .generation = 1, .stream = 7, .deadline = {}},
      {.offset = 2, .attempt = 1, .generation = 1, .stream = 7, .deadline = {}},
  };
  const std::vector<DeliveryContext> contexts = {
      {.stream = 7, .partition_epoch = 11, .cluster = &cluster},
      {.stream = 7, .partition_epoch = 0, .cluster = &empty_cluster},
      {.stream = 7, .partition_epoch = 1ULL << 40, .cluster = &cluster},
      {.stream = 7, .partition_epoch = 1ULL << 40, .cluster = &cluster},
  };

  DeliveryBatchWriter writer(GetParam());
  v1::SubscribeResponse expected;
  for (size_t i = 0; i < records.size(); ++i) {
    writer.Add(records[i], deliveries[i], contexts[i]);
    *expected.mutable_messages()->add_messages() =
        Expected(records[i], deliveries[i], contexts[i]);
  }
  EXPECT_EQ(writer.size(), 4u);
  const size_t bytes = writer.bytes();
  SerializedResponse written = writer.Finish();
  EXPECT_EQ(writer.size(), 0u) << "Finish starts over";
  EXPECT_EQ(writer.bytes(), 0u);

  EXPECT_EQ(written.messages(), 4u);
  v1::SubscribeResponse parsed;
  const std::string flat = written.Flatten();
  ASSERT_TRUE(parsed.ParseFromString(flat));
  ASSERT_EQ(parsed.messages().messages_size(), 4);
  EXPECT_EQ(parsed.messages().ByteSizeLong(), bytes);
  for (int i = 0; i < 4; ++i) {
    const std::string& bytes = parsed.messages().messages(i).receipt();
    std::optional<WireReceipt> receipt = DecodeReceipt(bytes);
    ASSERT_TRUE(receipt.has_value()) << i;
    EXPECT_EQ(receipt->stream, contexts[i].stream);
    EXPECT_EQ(receipt->partition_epoch, contexts[i].partition_epoch);
    EXPECT_EQ(receipt->generation, deliveries[i].generation);
    EXPECT_EQ(receipt->partition, records[i].partition);
    EXPECT_EQ(receipt->attempt, deliveries[i].attempt);
    EXPECT_EQ(receipt->offset, deliveries[i].offset);
    EXPECT_EQ(receipt->topic, records[i].topic);
    EXPECT_EQ(receipt->cluster, *contexts[i].cluster);
    expected.mutable_messages()->mutable_messages(i)->set_receipt(bytes);
  }
  EXPECT_EQ(flat, expected.SerializeAsString());
  EXPECT_EQ(written.size(), flat.size());
  const v1::ReceivedMessage& first = parsed.messages().messages(0);
  EXPECT_EQ(first.id(), "id-last");
  EXPECT_EQ(first.value(), "value");
  EXPECT_EQ(parsed.messages().messages(2).value(), big);
}

TEST_P(DeliveryEncoderTest, AnEmptyBatchIsAnEmptyMessageBatch) {
  DeliveryBatchWriter writer(GetParam());
  v1::SubscribeResponse expected;
  expected.mutable_messages();
  EXPECT_EQ(writer.Finish().Flatten(), expected.SerializeAsString());
}

Delivery At(int64_t offset, int32_t attempt) {
  return {
      .offset = offset, .attempt = attempt, .generation = 0, .stream = 1, .deadline = {}};
}

// Which of the response's slices point into `record`'s value.
int SlicesOver(const SerializedResponse& response,
               const backend::ConsumedRecord& record) {
  int count = 0;
  for (const grpc::Slice& slice : response.Slices()) {
    count += reinterpret_cast<const char*>(slice.begin()) == record.value.data() &&
             slice.size() == record.value.size();
  }
  return count;
}

TEST(DeliveryEncoderLendingTest, LendsValuesFromTheThresholdAndCopiesTheRest) {
  const std::string cluster = "main";
  const DeliveryContext context{.stream = 1, .cluster = &cluster};
  const size_t from = DeliveryBatchWriter::kLendValuesFrom;
  const std::string large(from, 'l'), small(from - 1, 's');
  const backend::ConsumedRecord lent = backend::Owned({.topic = "t", .value = large});
  const backend::ConsumedRecord copied =
      backend::Owned({.topic = "t", .offset = 1, .value = small});
  // No owner: the value may live anywhere, so it is copied whatever its size.
  const backend::ConsumedRecord unowned{.topic = "t", .offset = 2, .value = large};

  DeliveryBatchWriter writer;
  writer.Add(lent, At(0, 1), context);
  writer.Add(copied, At(1, 1), context);
  writer.Add(unowned, At(2, 1), context);
  const SerializedResponse response = writer.Finish();

  EXPECT_EQ(SlicesOver(response, lent), 1);
  EXPECT_EQ(SlicesOver(response, copied), 0);
  EXPECT_EQ(SlicesOver(response, unowned), 0);
  // Framing before and after the lent value.
  EXPECT_EQ(response.Slices().size(), 3u);
}

TEST(DeliveryEncoderLendingTest, LentValuesLiveUntilGrpcLetsGoOfTheResponse) {
  const std::string cluster = "main";
  const DeliveryContext context{.stream = 1, .cluster = &cluster};
  const std::string value(4096, 'v');
  std::weak_ptr<const void> first_bytes, second_bytes;
  grpc::ByteBuffer sent;
  std::string expected;
  {
    // A redelivered record is lent twice; two records share one owner.
    backend::ConsumedRecord first = backend::Owned({.topic = "t", .value = value});
    backend::ConsumedRecord second = backend::Owned({.topic = "t", .value = value});
    backend::ConsumedRecord shares_first = first;
    shares_first.offset = 1;
    first_bytes = first.bytes;
    second_bytes = second.bytes;
    DeliveryBatchWriter writer(1);
    writer.Add(first, At(0, 1), context);
    writer.Add(second, At(0, 1), context);
    writer.Add(shares_first, At(1, 1), context);
    writer.Add(first, At(0, 2), context);
    SerializedResponse response = writer.Finish();
    ASSERT_EQ(SlicesOver(response, first), 3);
    expected = response.Flatten();
    sent = response.Release();
    EXPECT_EQ(response.size(), 0u) << "released";
    // The records go (acked, or their bytes copied for a long hold) while
    // the write is still queued.
    first.OwnBytes();
  }
  EXPECT_FALSE(first_bytes.expired());
  EXPECT_FALSE(second_bytes.expired());
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(sent.Dump(&slices).ok());
  std::string read;
  for (const grpc::Slice& s : slices) {
    read.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  EXPECT_EQ(read, expected);
  slices.clear();
  sent.Clear();
  EXPECT_TRUE(first_bytes.expired()) << "released with the last slice";
  EXPECT_TRUE(second_bytes.expired());
}

TEST(DeliveryEncoderOtherTest, SerializesOtherResponsesAsProtobufDoes) {
  v1::SubscribeResponse opened;
  opened.mutable_opened()->set_node_id("n1");
  EXPECT_EQ(SerializedResponse::Of(opened).Flatten(), opened.SerializeAsString());
}

TEST(DeliveryEncoderOtherTest, RecordBytesCountKeyValueAndHeaders) {
  backend::ConsumedRecord record{.key = "ab", .value = "cde", .headers = {{"f", "gh"}}};
  EXPECT_EQ(RecordBytes(record), 8);
}

}  // namespace
}  // namespace ferry::subscribe
