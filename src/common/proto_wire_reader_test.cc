#include "common/proto_wire_reader.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "ferry/v1/common.pb.h"

namespace ferry::proto_wire {
namespace {

using namespace std::string_literals;

// Every way to cut `bytes` into three pieces and an empty one, and the whole:
// each must read the same.
std::vector<std::vector<std::string_view>> Cuts(std::string_view bytes) {
  std::vector<std::vector<std::string_view>> cuts = {{bytes}};
  for (size_t a = 0; a <= bytes.size(); ++a) {
    for (size_t b = a; b <= bytes.size(); ++b) {
      cuts.push_back({bytes.substr(0, a), bytes.substr(a, b - a), "", bytes.substr(b)});
    }
  }
  if (bytes.empty()) cuts.push_back({});  // no piece at all
  return cuts;
}

// Reads the fields of a ferry.v1.Header (key = 1, value = 2) and skips the
// rest, as the decoders do; "" when the bytes are a Header, else the error.
struct Read {
  std::string key, value;
  std::string error;
};
Read ReadHeader(std::span<const std::string_view> pieces) {
  Reader reader(pieces, "Header");
  std::deque<std::string> spilled;
  Read read;
  const auto fields = [&] {
    while (reader.More()) {
      uint32_t number = 0;
      WireType type{};
      if (!reader.Tag(&number, &type)) return false;
      std::string_view view;
      if (number == 1 && type == kLength) {
        if (!reader.View(&spilled, &view) || !reader.Utf8(view)) return reader.In("key");
        read.key = view;
      } else if (number == 2 && type == kLength) {
        read.value.clear();
        if (!reader.Append(&read.value)) return reader.In("value");
      } else if (!reader.SkipField(number, type)) {
        return reader.InField(number);
      }
    }
    return true;
  };
  if (!fields()) read.error = std::string(reader.Error().message());
  return read;
}

// The reader accepts `bytes` in every cut exactly when the generated parser
// does, with the same key and value; returns the error of the whole.
std::string ExpectSameAsGeneratedParser(const std::string& bytes) {
  v1::Header reference;
  const bool parsed = reference.ParseFromString(bytes);
  const std::string_view whole = bytes;
  const Read first = ReadHeader({&whole, 1});
  for (const std::vector<std::string_view>& cut : Cuts(bytes)) {
    const Read read = ReadHeader(cut);
    EXPECT_EQ(read.error.empty(), parsed) << read.error;
    EXPECT_EQ(read.error, first.error);
    if (parsed && read.error.empty()) {
      EXPECT_EQ(read.key, reference.key());
      EXPECT_EQ(read.value, reference.value());
    }
  }
  return first.error;
}

std::string Groups(int depth) {
  return std::string(depth, '\x1b') + std::string(depth, '\x1c');  // field 3
}

TEST(ProtoWireReader, ReadsWhatTheGeneratedSerializerWritesInAnyCut) {
  v1::Header header;
  header.set_key("k\xc3\xa9y");
  header.set_value(std::string(300, 'v'));
  ExpectSameAsGeneratedParser(header.SerializeAsString());
  ExpectSameAsGeneratedParser("");
}

TEST(ProtoWireReader, SkipsUnknownFieldsOfEveryWireTypeAsTheGeneratedParserDoes) {
  const std::string key = "\x0a\x01k";
  for (const std::string& unknown : {
           std::string("\x18\x96\x01"),                                      // varint
           std::string("\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),      // ten bytes
           std::string("\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),  // eleven
           std::string("\x19") + "12345678",                                 // fixed64
           std::string("\x19") + "1234567",              // fixed64, short
           std::string("\x1d") + "1234",                 // fixed32
           std::string("\x1d") + "123",                  // fixed32, short
           std::string("\x1a\x02xy"),                    // length-delimited
           std::string("\x1a\x03xy"),                    // length past the end
           std::string("\x1a\x80\x80\x80\x80\x08"),      // length of 2^31
           std::string("\x1a\x80\x80\x80\x80\x80\x00"),  // length of six bytes
           std::string("\x9a\x80\x80\x80\x00\x00"),      // tag of five bytes
           std::string("\x9a\x80\x80\x80\x80\x00\x00"),  // tag of six bytes
           Groups(1),
           Groups(99),
           Groups(100),
           Groups(101),
           std::string("\x1b\x24"),  // a group closed by another's end tag
           std::string("\x1b"),      // a group never closed
           std::string("\x1c"),      // an end tag without a group
           std::string("\x1e"),      // wire type 6
           std::string(1, '\0'),     // field 0
       }) {
    ExpectSameAsGeneratedParser(key + unknown);
    ExpectSameAsGeneratedParser(unknown + key);
  }
}

TEST(ProtoWireReader, AnErrorNamesMessageFieldReasonAndByte) {
  EXPECT_EQ(ExpectSameAsGeneratedParser(std::string("\x0a\x01k\x12\x20") + "ab"),
            "malformed Header.value: length 32 past the end (2 bytes left) at byte 4");
  EXPECT_EQ(ExpectSameAsGeneratedParser("\x0a\x02k\xff"),
            "malformed Header.key: not UTF-8 at byte 2");
  EXPECT_EQ(ExpectSameAsGeneratedParser("\x0a\x00\x1b"s),
            "malformed Header.(field 3): group 3 never closed at byte 2");
  EXPECT_EQ(ExpectSameAsGeneratedParser("\x0a\x00\x1b\x24"s),
            "malformed Header.(field 3): end of group 4 closes group 3 at byte 3");
  EXPECT_EQ(ExpectSameAsGeneratedParser("\x18\x80\x80"),
            "malformed Header.(field 3): varint past the end at byte 1");
  EXPECT_EQ(ExpectSameAsGeneratedParser("\x0a\x00\x80"s),
            "malformed Header: tag past the end at byte 2");
  EXPECT_EQ(ExpectSameAsGeneratedParser("\x1e"),
            "malformed Header.(field 3): wire type 6 at byte 0");
  EXPECT_TRUE(absl::StrContains(ExpectSameAsGeneratedParser(Groups(101)),
                                "groups nested deeper than 100"));
}

// A submessage's fields stay inside it: a length that fits the outer message
// but not the submessage fails, and the outer message resumes after Leave.
TEST(ProtoWireReader, EnterBoundsReadsByTheSubmessage) {
  // field 1 { field 2: "ab" }, field 3: 7, in every cut.
  const std::string good =
      "\x0a\x04\x12\x02"
      "ab"
      "\x18\x07";
  // The same with field 2's length 4: past the submessage, not past the whole.
  const std::string bad =
      "\x0a\x04\x12\x04"
      "ab"
      "\x18\x07";
  for (const std::string* bytes : {&good, &bad}) {
    for (const std::vector<std::string_view>& cut : Cuts(*bytes)) {
      Reader reader(cut, "Outer");
      std::deque<std::string> spilled;
      uint32_t number = 0;
      WireType type{};
      size_t outer = 0;
      ASSERT_TRUE(reader.Tag(&number, &type));
      ASSERT_TRUE(reader.Enter(&outer));
      ASSERT_TRUE(reader.More());
      ASSERT_TRUE(reader.Tag(&number, &type));
      std::string_view inner;
      if (bytes == &bad) {
        ASSERT_FALSE(reader.View(&spilled, &inner));
        reader.In("inner");
        EXPECT_EQ(
            reader.Error().message(),
            "malformed Outer.inner: length 4 past the end (2 bytes left) at byte 3");
        continue;
      }
      ASSERT_TRUE(reader.View(&spilled, &inner));
      EXPECT_EQ(inner, "ab");
      EXPECT_FALSE(reader.More());
      reader.Leave(outer);
      ASSERT_TRUE(reader.More());
      uint64_t value = 0;
      ASSERT_TRUE(reader.Tag(&number, &type));
      ASSERT_TRUE(reader.Varint(&value));
      EXPECT_EQ(number, 3u);
      EXPECT_EQ(value, 7u);
      EXPECT_FALSE(reader.More());
      EXPECT_EQ(reader.position(), good.size());
    }
  }
}

// Bytes within one piece are a view of it; bytes across pieces are copied.
TEST(ProtoWireReader, ViewsPointIntoTheirPieceUnlessSplit) {
  const std::string bytes =
      "\x0a\x03"
      "abc";
  for (size_t split : {size_t{2}, size_t{3}}) {
    const std::string_view pieces[] = {std::string_view(bytes).substr(0, split),
                                       std::string_view(bytes).substr(split)};
    Reader reader(pieces, "M");
    std::deque<std::string> spilled;
    uint32_t number = 0;
    WireType type{};
    std::string_view view;
    ASSERT_TRUE(reader.Tag(&number, &type));
    ASSERT_TRUE(reader.View(&spilled, &view));
    EXPECT_EQ(view, "abc");
    EXPECT_EQ(view.data() == pieces[1].data(), split == 2);
    EXPECT_EQ(spilled.size(), split == 2 ? 0u : 1u);
  }
}

}  // namespace
}  // namespace ferry::proto_wire
