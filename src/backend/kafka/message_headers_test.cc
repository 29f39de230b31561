#include "backend/kafka/message_headers.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace ferry::backend::kafka {
namespace {

constexpr int kVerified = 0x020002ff;  // 2.0.2, the version this was read in

// The bytes of one record, allocated to their exact size (so that ASan sees
// a read past the end), and a message whose value points into them.
struct Record {
  std::unique_ptr<char[]> bytes;
  rd_kafka_message_t message{};
};

Record Over(std::string_view before, std::string_view value, std::string_view after) {
  Record record;
  const size_t size = before.size() + value.size() + after.size();
  record.bytes = std::make_unique<char[]>(size);
  std::string(before).append(value).append(after).copy(record.bytes.get(), size);
  record.message.payload = record.bytes.get() + before.size();
  record.message.len = value.size();
  return record;
}

// A v2 record up to its value: length, attributes, timestamp and offset
// deltas, a null key (zig-zag -1) and the value's zig-zag length.
std::string V2Front(std::string_view value) {
  return std::string("\x20\x00\x00\x00\x01", 5) + static_cast<char>(value.size() * 2);
}

Record V2(std::string_view value, std::string_view header_count) {
  return Over(V2Front(value), value, header_count);
}

// A v1 message: crc, magic, attributes, timestamp, a null key and the
// value's big-endian int32 length; the value ends it.
Record Legacy(std::string_view value) {
  std::string front("\0\0\0\0\x01\x00", 6);
  front.append(8, '\0').append("\xff\xff\xff\xff", 4);
  const auto size = static_cast<uint32_t>(value.size());
  for (int shift = 24; shift >= 0; shift -= 8) front += static_cast<char>(size >> shift);
  return Over(front, value, "");
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
  EXPECT_FALSE(MayHaveHeaders(V2("value", std::string(1, '\0')).message, kVerified));
}

TEST(MessageHeaders, AnyOtherCountMayHaveHeaders) {
  EXPECT_TRUE(MayHaveHeaders(V2("value", "\x02").message, kVerified));  // zig-zag 1
  EXPECT_TRUE(MayHaveHeaders(V2("v", "\x80\x01").message, kVerified));  // 64, two bytes
}

// librdkafka points an empty value at a static "", whose terminator says
// nothing about the record: the record with headers and an empty value in
// KafkaGroupMemberTest.EachRecordArrivesWithExactlyItsHeaders lost them when
// this was read.
TEST(MessageHeaders, ANullOrEmptyValueOrAnUnreadVersionIsAskedAnyway) {
  rd_kafka_message_t tombstone{};
  EXPECT_TRUE(MayHaveHeaders(tombstone, kVerified));
  EXPECT_TRUE(MayHaveHeaders(V2("", std::string(1, '\0')).message, kVerified));
  const Record record = V2("value", std::string(1, '\0'));
  EXPECT_TRUE(MayHaveHeaders(record.message, 0x021000ff));
  EXPECT_TRUE(MayHaveHeaders(record.message, 0x01090200));
}

// A legacy value is the last byte of its record, here of its allocation:
// nothing after it is read (ASan would report it) and librdkafka is asked.
TEST(MessageHeaders, ALegacyValueIsAskedWithoutReadingPastIt) {
  EXPECT_TRUE(MayHaveHeaders(Legacy("value").message, kVerified));
  EXPECT_TRUE(MayHaveHeaders(Legacy(std::string(300, 'x')).message, kVerified));
}

}  // namespace
}  // namespace ferry::backend::kafka
