#include "backend/kafka/message_headers.h"

#include <gtest/gtest.h>

#include <string>

namespace ferry::backend::kafka {
namespace {

constexpr int kVerified = 0x020002ff;  // 2.0.2, the version this was read in

// A message whose value is the front of `bytes` (`value_size` bytes).
rd_kafka_message_t MessageOver(std::string& bytes, size_t value_size) {
  rd_kafka_message_t message{};
  message.payload = bytes.data();
  message.len = value_size;
  return message;
}

TEST(MessageHeaders, TheVersionsReadAreTwoZeroToTwoFifteen) {
  EXPECT_FALSE(HeaderCountFollowsValue(0x01090200));  // 1.9.2
  EXPECT_TRUE(HeaderCountFollowsValue(0x020000ff));   // 2.0.0
  EXPECT_TRUE(HeaderCountFollowsValue(kVerified));
  EXPECT_TRUE(HeaderCountFollowsValue(0x020f00ff));   // 2.15.0
  EXPECT_FALSE(HeaderCountFollowsValue(0x021000ff));  // 2.16.0
  EXPECT_FALSE(HeaderCountFollowsValue(0x030000ff));
}

TEST(MessageHeaders, AZeroCountAfterTheValueMeansNone) {
  std::string bytes("value\0", 6);
  EXPECT_FALSE(MayHaveHeaders(MessageOver(bytes, 5), kVerified));
}

TEST(MessageHeaders, AnyOtherCountMayHaveHeaders) {
  std::string one("value\x02", 6);  // zig-zag 1
  EXPECT_TRUE(MayHaveHeaders(MessageOver(one, 5), kVerified));
  std::string many("v\x80\x01", 3);  // zig-zag 64, two bytes
  EXPECT_TRUE(MayHaveHeaders(MessageOver(many, 1), kVerified));
}

// librdkafka points an empty value at a static "", whose terminator says
// nothing about the record: the record with headers and an empty value in
// KafkaGroupMemberTest.EachRecordArrivesWithExactlyItsHeaders lost them when
// this was read.
TEST(MessageHeaders, ANullOrEmptyValueOrAnUnreadVersionIsAskedAnyway) {
  rd_kafka_message_t tombstone{};
  EXPECT_TRUE(MayHaveHeaders(tombstone, kVerified));
  std::string empty_value(1, '\0');
  EXPECT_TRUE(MayHaveHeaders(MessageOver(empty_value, 0), kVerified));
  std::string bytes("value\0", 6);
  EXPECT_TRUE(MayHaveHeaders(MessageOver(bytes, 5), 0x021000ff));
  EXPECT_TRUE(MayHaveHeaders(MessageOver(bytes, 5), 0x01090200));
}

}  // namespace
}  // namespace ferry::backend::kafka
