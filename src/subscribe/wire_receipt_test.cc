#include "subscribe/wire_receipt.h"

#include <gtest/gtest.h>

namespace ferry::subscribe {
namespace {

WireReceipt Sample() {
  return {.stream = 7,
          .partition_epoch = 1234567,
          .generation = 3,
          .partition = 11,
          .attempt = 2,
          .offset = int64_t{1} << 40,
          .topic = "orders.v1"};
}

TEST(WireReceipt, RoundTrips) {
  const WireReceipt in = Sample();
  std::optional<WireReceipt> out = DecodeReceipt(EncodeReceipt(in));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->stream, in.stream);
  EXPECT_EQ(out->partition_epoch, in.partition_epoch);
  EXPECT_EQ(out->generation, in.generation);
  EXPECT_EQ(out->partition, in.partition);
  EXPECT_EQ(out->attempt, in.attempt);
  EXPECT_EQ(out->offset, in.offset);
  EXPECT_EQ(out->topic, in.topic);
}

TEST(WireReceipt, RejectsGarbageTruncationAndTrailingBytes) {
  const std::string good = EncodeReceipt(Sample());
  EXPECT_FALSE(DecodeReceipt("").has_value());
  EXPECT_FALSE(DecodeReceipt("hello world").has_value());
  EXPECT_FALSE(DecodeReceipt(std::string(40, '\xff')).has_value());
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(DecodeReceipt(good.substr(0, n)).has_value()) << "length " << n;
  }
  EXPECT_FALSE(DecodeReceipt(good + "x").has_value());
}

TEST(WireReceipt, RejectsOutOfRangeFields) {
  WireReceipt bad = Sample();
  bad.offset = -5;
  EXPECT_FALSE(DecodeReceipt(EncodeReceipt(bad)).has_value());
  bad = Sample();
  bad.attempt = 0;
  EXPECT_FALSE(DecodeReceipt(EncodeReceipt(bad)).has_value());
  bad = Sample();
  bad.topic.clear();
  EXPECT_FALSE(DecodeReceipt(EncodeReceipt(bad)).has_value());
}

}  // namespace
}  // namespace ferry::subscribe
