#include "subscribe/delivery_encoder.h"

#include <gtest/gtest.h>

#include "subscribe/wire_receipt.h"

namespace ferry::subscribe {
namespace {

TEST(DeliveryEncoderTest, EncodesPositionPayloadIdAndAReceiptThatDecodesBack) {
  backend::ConsumedRecord record{.topic = "orders",
                                 .partition = 2,
                                 .offset = 9,
                                 .key = "k",
                                 .value = "value",
                                 .headers = {{"a", "1"}, {"ferry.id", "id-9"}},
                                 .timestamp_ms = 1'700'000'000'123};
  const std::string cluster = "main";
  Delivery delivery{
      .offset = 9, .attempt = 3, .generation = 4, .stream = 7, .deadline = {}};
  v1::ReceivedMessage out;
  EncodeDelivery(record, delivery,
                 {.stream = 7, .partition_epoch = 11, .cluster = &cluster}, out);
  EXPECT_EQ(out.topic(), "orders");
  EXPECT_EQ(out.partition(), 2);
  EXPECT_EQ(out.offset(), 9);
  EXPECT_EQ(out.key(), "k");
  EXPECT_EQ(out.value(), "value");
  EXPECT_EQ(out.id(), "id-9");
  ASSERT_EQ(out.headers_size(), 2);
  EXPECT_EQ(out.delivery_attempt(), 3);
  EXPECT_EQ(out.cluster(), "main");
  EXPECT_EQ(out.publish_time().seconds(), 1'700'000'000);
  std::optional<WireReceipt> receipt = DecodeReceipt(out.receipt());
  ASSERT_TRUE(receipt.has_value());
  EXPECT_EQ(receipt->stream, 7u);
  EXPECT_EQ(receipt->partition_epoch, 11u);
  EXPECT_EQ(receipt->generation, 4u);
  EXPECT_EQ(receipt->attempt, 3);
  EXPECT_EQ(receipt->offset, 9);
  EXPECT_EQ(receipt->topic, "orders");
  EXPECT_EQ(receipt->partition, 2);
  EXPECT_EQ(receipt->cluster, "main");
}

TEST(DeliveryEncoderTest, RecordBytesCountKeyValueAndHeaders) {
  backend::ConsumedRecord record{.key = "ab", .value = "cde", .headers = {{"f", "gh"}}};
  EXPECT_EQ(RecordBytes(record), 8);
}

}  // namespace
}  // namespace ferry::subscribe
