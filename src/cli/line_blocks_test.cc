#include "cli/line_blocks.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

namespace ferry::cli {
namespace {

// The lines of `input` read in blocks of `block_bytes`, and how many calls
// handed them out.
struct Read {
  std::vector<std::string> lines;
  int calls = 0;
  bool ok = false;
};

Read ReadAll(const std::string& input, std::size_t block_bytes) {
  Read read;
  std::FILE* in = std::tmpfile();
  EXPECT_NE(in, nullptr);
  if (in == nullptr) return read;
  std::fwrite(input.data(), 1, input.size(), in);
  std::rewind(in);
  read.ok =
      ForEachBlockOfLines(in, block_bytes, [&](std::span<const std::string_view> lines) {
        ++read.calls;
        for (std::string_view line : lines) read.lines.emplace_back(line);
      });
  std::fclose(in);
  return read;
}

TEST(ForEachBlockOfLines, HandsOutEveryLineInOrderWhateverTheBlockSize) {
  const std::string input = "first\n\nthird line\nfourth\nlast without newline";
  const std::vector<std::string> expected = {"first", "", "third line", "fourth",
                                             "last without newline"};
  for (std::size_t block : {1, 2, 3, 5, 7, 16, 1 << 20}) {
    Read read = ReadAll(input, block);
    EXPECT_TRUE(read.ok);
    EXPECT_EQ(read.lines, expected) << "block of " << block;
  }
}

TEST(ForEachBlockOfLines, AFinalNewlineStartsNoLineAndEmptyInputHasNone) {
  EXPECT_EQ(ReadAll("a\nb\n", 4).lines, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ReadAll("\n", 4).lines, (std::vector<std::string>{""}));
  Read empty = ReadAll("", 4);
  EXPECT_TRUE(empty.ok);
  EXPECT_EQ(empty.calls, 0);
}

TEST(ForEachBlockOfLines, HandsOutABlockOfLinesPerCall) {
  std::string input;
  for (int i = 0; i < 1000; ++i) input += std::to_string(1000 + i) + "\n";  // 5 B a line
  Read read = ReadAll(input, 1000);
  ASSERT_EQ(read.lines.size(), 1000U);
  EXPECT_EQ(read.lines.front(), "1000");
  EXPECT_EQ(read.lines.back(), "1999");
  EXPECT_EQ(read.calls, 5);  // 200 lines per 1000-byte block
}

TEST(ForEachBlockOfLines, ReportsAReadError) {
  // A directory opens for reading, and every read of it fails (EISDIR).
  std::FILE* directory = std::fopen("/", "r");
  ASSERT_NE(directory, nullptr);
  int calls = 0;
  EXPECT_FALSE(ForEachBlockOfLines(directory, 16,
                                   [&](std::span<const std::string_view>) { ++calls; }));
  EXPECT_EQ(calls, 0);
  std::fclose(directory);
}

}  // namespace
}  // namespace ferry::cli
