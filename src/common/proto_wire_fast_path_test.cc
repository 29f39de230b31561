// The reader's fast paths against the plain ones they stand in for:
// IsValidUtf8's eight-bytes-at-a-time ASCII skip against a byte-at-a-time
// check, and the inline one- and two-byte varints against the general reader.
#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/proto_wire_reader.h"

namespace ferry::proto_wire {
namespace {

// The reference: IsValidUtf8From, the byte-wise check IsValidUtf8 was
// before the ASCII skip (unchanged, and still what it falls back to).
bool ByteWiseUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  return IsValidUtf8From(p, p + s.size());
}

// Counts the strings checked and how many were valid, so a test sees that
// it covered both outcomes.
struct Checked {
  int strings = 0;
  int valid = 0;
};

void ExpectSame(std::string_view s, Checked* checked) {
  const bool expected = ByteWiseUtf8(s);
  ASSERT_EQ(IsValidUtf8(s), expected) << "bytes (hex): " << [&] {
    std::string hex;
    for (unsigned char c : s)
      hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15];
    return hex;
  }();
  ++checked->strings;
  checked->valid += expected ? 1 : 0;
}

// `middle` with `before` ASCII bytes in front and `after` behind: the
// sequence at every offset mod 8 of a word, and cut at the string's end.
std::string Padded(std::string_view middle, size_t before, size_t after) {
  return std::string(before, 'a') + std::string(middle) + std::string(after, 'z');
}

TEST(ProtoWireUtf8, EveryOneAndTwoByteStringAtEveryOffsetAsTheByteWiseCheck) {
  Checked checked;
  for (size_t before = 0; before < 17 && !HasFatalFailure(); ++before) {
    for (size_t after : {0, 1, 7, 8, 9}) {
      for (int a = 0; a < 256; ++a) {
        ExpectSame(Padded(std::string(1, static_cast<char>(a)), before, after), &checked);
        for (int b = 0; b < 256; ++b) {
          const char pair[] = {static_cast<char>(a), static_cast<char>(b)};
          ExpectSame(Padded(std::string_view(pair, 2), before, after), &checked);
        }
      }
    }
  }
  EXPECT_GT(checked.valid, 0);
  EXPECT_LT(checked.valid, checked.strings);
}

TEST(ProtoWireUtf8, EveryThreeByteStringAsTheByteWiseCheck) {
  Checked checked;
  std::string buffer(24, 'a');
  for (int a = 0; a < 256 && !HasFatalFailure(); ++a) {
    // At an offset that moves with the first byte, ASCII behind.
    const size_t at = static_cast<size_t>(a % 8);
    buffer[at] = static_cast<char>(a);
    for (int b = 0; b < 256; ++b) {
      buffer[at + 1] = static_cast<char>(b);
      for (int c = 0; c < 256; ++c) {
        buffer[at + 2] = static_cast<char>(c);
        ExpectSame(std::string_view(buffer).substr(0, at + 3 + (c % 9)), &checked);
      }
    }
    buffer.assign(24, 'a');
  }
  EXPECT_GT(checked.valid, 0);
  EXPECT_LT(checked.valid, checked.strings);
}

TEST(ProtoWireUtf8, EveryFourByteLeadAndBoundaryAsTheByteWiseCheck) {
  // Continuations that sit at the edges of what each lead allows: overlongs
  // (F0 80..8F), past U+10FFFF (F4 90.., F5..F7), surrogates (ED A0..BF).
  const std::vector<int> seconds = {0x00, 0x7F, 0x80, 0x8F, 0x90,
                                    0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
  Checked checked;
  for (int lead = 0x80; lead < 0x100 && !HasFatalFailure(); ++lead) {
    for (int b : seconds) {
      for (int c : seconds) {
        for (int d : seconds) {
          const char bytes[] = {static_cast<char>(lead), static_cast<char>(b),
                                static_cast<char>(c), static_cast<char>(d)};
          for (size_t before = 0; before < 9; ++before) {
            for (size_t cut = 0; cut <= 4; ++cut) {  // truncated at every byte
              ExpectSame(Padded(std::string_view(bytes, cut), before, 0), &checked);
              ExpectSame(Padded(std::string_view(bytes, cut), before, 11), &checked);
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked.valid, 0);
}

TEST(ProtoWireUtf8, ValidTextCutAtEveryByteAsTheByteWiseCheck) {
  // One character of each length, the limits of each length, surrogates'
  // neighbours, then the same with ASCII runs of every length between.
  const std::string text =
      "topic-\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
      "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf-\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
  Checked checked;
  for (size_t gap = 0; gap < 17 && !HasFatalFailure(); ++gap) {
    std::string spaced;
    for (char c : text) {
      spaced += c;
      if (static_cast<unsigned char>(c) < 0x80) spaced += std::string(gap, 'x');
    }
    ASSERT_TRUE(IsValidUtf8(spaced));
    for (size_t begin = 0; begin < 9; ++begin) {
      for (size_t end = begin; end <= spaced.size(); ++end) {
        ExpectSame(std::string_view(spaced).substr(begin, end - begin), &checked);
      }
    }
  }
  EXPECT_GT(checked.valid, 0);
  EXPECT_LT(checked.valid, checked.strings);
}

TEST(ProtoWireUtf8, RandomStringsAsTheByteWiseCheck) {
  std::mt19937 random(18);
  // Bytes drawn mostly ASCII, or mostly lead and continuation bytes, or any.
  const std::vector<std::vector<int>> alphabets = {
      {'a', 'b', 0x7F, 0x80, 0xBF, 0xC2, 0xE0, 0xED, 0xF0, 0xF4},
      {0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
       0xE0, 0xE1, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xF8, 0xFF, 'q'},
  };
  Checked checked;
  for (int i = 0; i < 300000; ++i) {
    const size_t length = random() % 40;
    const int kind = static_cast<int>(random() % 4);
    std::string s;
    for (size_t j = 0; j < length; ++j) {
      int byte = 0;
      if (kind < 2) {
        byte = alphabets[kind][random() % alphabets[kind].size()];
      } else if (kind == 2 && random() % 8 != 0) {
        byte = static_cast<int>(random() % 0x80);
      } else {
        byte = static_cast<int>(random() % 0x100);
      }
      s += static_cast<char>(byte);
    }
    ExpectSame(s, &checked);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(checked.valid, 1000);
  EXPECT_LT(checked.valid, checked.strings - 1000);
}

// The varint encoding of `v` (at most ten bytes).
std::string Encode(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>(v | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
  return out;
}

// Reads a varint from `bytes` cut at `cut` into two pieces: the value and
// where the reader stopped, or the error.
std::string ReadVarintCut(std::string_view bytes, size_t cut) {
  const std::vector<std::string_view> pieces = {bytes.substr(0, cut), bytes.substr(cut)};
  Reader reader(pieces, "Test");
  uint64_t value = 0;
  if (!reader.Varint(&value)) return std::string(reader.Error().message());
  return std::to_string(value) + " then at byte " + std::to_string(reader.position());
}

TEST(ProtoWireVarint, ShortAndLongVarintsInAnyCutReadAsEncoded) {
  std::vector<uint64_t> values;
  for (uint64_t v = 0; v < 20000; ++v) values.push_back(v);
  for (int bits = 14; bits <= 64; ++bits) {
    const uint64_t top = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits);
    values.insert(values.end(), {top - 1, top, top + 1});
  }
  for (uint64_t v : values) {
    const std::string bytes = Encode(v);
    for (size_t cut = 0; cut <= bytes.size(); ++cut) {
      ASSERT_EQ(ReadVarintCut(bytes, cut),
                std::to_string(v) + " then at byte " + std::to_string(bytes.size()))
          << v << " cut at " << cut;
    }
  }
}

TEST(ProtoWireVarint, TruncatedOrLongVarintsFailAtTheirFirstByte) {
  // A continuation byte with nothing after it, alone or cut between pieces.
  for (const std::string bytes : {"\x80", "\xff", "\x80\x80", "\xff\xff\xff"}) {
    for (size_t cut = 0; cut <= bytes.size(); ++cut) {
      EXPECT_EQ(ReadVarintCut(bytes, cut),
                "malformed Test: varint past the end at byte 0")
          << cut;
    }
  }
  const std::string eleven(10, '\x80');
  EXPECT_EQ(ReadVarintCut(eleven + "\x01", 11),
            "malformed Test: varint longer than 10 bytes at byte 0");
}

TEST(ProtoWireVarint, ATwoByteLengthPastTheMessageFails) {
  // Length 300 (two bytes) with 2 bytes behind it.
  const std::string bytes = "\x0a\xac\x02xy";
  const std::vector<std::string_view> pieces = {bytes};
  Reader reader(pieces, "Test");
  uint32_t number = 0;
  WireType type{};
  ASSERT_TRUE(reader.Tag(&number, &type));
  std::deque<std::string> spilled;
  std::string_view view;
  EXPECT_FALSE(reader.View(&spilled, &view));
  EXPECT_EQ(reader.Error().message(),
            "malformed Test: length 300 past the end (2 bytes left) at byte 1");
}

}  // namespace
}  // namespace ferry::proto_wire
