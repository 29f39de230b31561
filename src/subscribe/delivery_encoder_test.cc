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

TEST(DeliveryEncoderTest, WritesWhatProtobufWouldForEveryKindOfRecord) {
  const std::string cluster = "main", empty_cluster;
  const std::string big(300, 'x');  // lengths past one varint byte
  const std::vector<backend::ConsumedRecord> records = {
      {.topic = "orders",
       .partition = 2,
       .offset = 9,
       .key = "k",
       .value = "value",
       .headers = {{"a", "1"}, {"ferry.id", "id-9"}, {"", ""}, {"ferry.id", "id-last"}},
       .timestamp_ms = 1'700'000'000'123},
      {.topic = "t", .offset = 0, .timestamp_ms = 0},  // every default left out
      {.topic = "t", .partition = 1, .offset = 1, .value = big, .timestamp_ms = -1},
  };
  const std::vector<Delivery> deliveries = {
      {.offset = 9, .attempt = 3, .generation = 4, .stream = 7, .deadline = {}},
      {.offset = 0, .attempt = 1, .generation = 0, .stream = 7, .deadline = {}},
      {.offset = 1, .attempt = 2, .generation = 1, .stream = 7, .deadline = {}},
  };
  const std::vector<DeliveryContext> contexts = {
      {.stream = 7, .partition_epoch = 11, .cluster = &cluster},
      {.stream = 7, .partition_epoch = 0, .cluster = &empty_cluster},
      {.stream = 7, .partition_epoch = 1ULL << 40, .cluster = &cluster},
  };

  DeliveryBatchWriter writer;
  v1::SubscribeResponse expected;
  for (size_t i = 0; i < records.size(); ++i) {
    writer.Add(records[i], deliveries[i], contexts[i]);
    *expected.mutable_messages()->add_messages() =
        Expected(records[i], deliveries[i], contexts[i]);
  }
  EXPECT_EQ(writer.size(), 3u);
  const size_t bytes = writer.bytes();
  SerializedResponse written = writer.Finish();
  EXPECT_EQ(writer.size(), 0u) << "Finish starts over";
  EXPECT_EQ(writer.bytes(), 0u);

  v1::SubscribeResponse parsed;
  ASSERT_TRUE(
      parsed.ParseFromArray(written.view().data(), static_cast<int>(written.size())));
  ASSERT_EQ(parsed.messages().messages_size(), 3);
  EXPECT_EQ(parsed.messages().ByteSizeLong(), bytes);
  for (int i = 0; i < 3; ++i) {
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
  EXPECT_EQ(written.view(), expected.SerializeAsString());
  const v1::ReceivedMessage& first = parsed.messages().messages(0);
  EXPECT_EQ(first.id(), "id-last");
  EXPECT_EQ(first.value(), "value");
  EXPECT_EQ(parsed.messages().messages(2).value(), big);
}

// Runs break wherever one span could not stand for the receipts: a gap in
// the offsets, another partition, another attempt; a single message gets
// none (its receipt is as short).
TEST(DeliveryEncoderTest, ConsecutiveDeliveriesOfAPartitionShareARun) {
  const std::string cluster = "main";
  struct Case {
    int32_t partition;
    int64_t offset;
    int32_t attempt;
    uint64_t epoch;
  };
  const std::vector<Case> cases = {
      {0, 5, 1, 3}, {0, 6, 1, 3}, {0, 7, 1, 3},  // run 0: messages 0-2
      {0, 9, 1, 3},                              // a gap: alone
      {1, 0, 1, 4}, {1, 1, 1, 4},                // run 1: messages 4-5
      {1, 2, 2, 4},                              // a redelivery: alone
  };
  std::vector<backend::ConsumedRecord> records;
  std::vector<Delivery> deliveries;
  for (const Case& c : cases) {
    records.push_back({.topic = "orders", .partition = c.partition, .offset = c.offset});
    deliveries.push_back({.offset = c.offset,
                          .attempt = c.attempt,
                          .generation = 2,
                          .stream = 7,
                          .deadline = {}});
  }
  DeliveryBatchWriter writer;
  for (size_t i = 0; i < cases.size(); ++i) {
    writer.Add(records[i], deliveries[i],
               {.stream = 7, .partition_epoch = cases[i].epoch, .cluster = &cluster});
  }
  const size_t bytes = writer.bytes();
  SerializedResponse written = writer.Finish();

  v1::SubscribeResponse parsed;
  ASSERT_TRUE(
      parsed.ParseFromArray(written.view().data(), static_cast<int>(written.size())));
  const v1::MessageBatch& batch = parsed.messages();
  ASSERT_EQ(batch.runs_size(), 2);
  EXPECT_EQ(batch.runs(0).first_message(), 0u);
  EXPECT_EQ(batch.runs(0).count(), 3u);
  EXPECT_EQ(batch.runs(1).first_message(), 4u);
  EXPECT_EQ(batch.runs(1).count(), 2u);
  for (const v1::ReceiptRun& r : batch.runs()) {
    std::optional<WireRun> run = DecodeRun(r.run());
    ASSERT_TRUE(run.has_value());
    EXPECT_EQ(run->count, r.count());
    for (uint32_t i = 0; i < r.count(); ++i) {
      EXPECT_EQ(EncodeReceipt(run->At(i)),
                batch.messages(r.first_message() + i).receipt())
          << "message " << r.first_message() + i;
    }
  }
  EXPECT_EQ(written.view(), parsed.SerializeAsString()) << "what protobuf writes";
  EXPECT_EQ(bytes, batch.ByteSizeLong())
      << "bytes() counts every run closed before (the last message is alone)";
}

TEST(DeliveryEncoderTest, AnEmptyBatchIsAnEmptyMessageBatch) {
  DeliveryBatchWriter writer;
  v1::SubscribeResponse expected;
  expected.mutable_messages();
  EXPECT_EQ(writer.Finish().view(), expected.SerializeAsString());
}

TEST(DeliveryEncoderTest, SerializesOtherResponsesAsProtobufDoes) {
  v1::SubscribeResponse opened;
  opened.mutable_opened()->set_node_id("n1");
  EXPECT_EQ(SerializedResponse::Of(opened).view(), opened.SerializeAsString());
}

TEST(DeliveryEncoderTest, RecordBytesCountKeyValueAndHeaders) {
  backend::ConsumedRecord record{.key = "ab", .value = "cde", .headers = {{"f", "gh"}}};
  EXPECT_EQ(RecordBytes(record), 8);
}

}  // namespace
}  // namespace ferry::subscribe
