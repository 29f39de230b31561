#include "cli/line_blocks.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace ferry::cli {
namespace {

// The lines of `input` read in blocks of `block_bytes`, and how many calls
// handed them out.
struct Read {
  std::vector<std::string> lines;
  int calls = 0;
  int error = -1;
};

Read ReadAll(const std::string& input, std::size_t block_bytes) {
  Read read;
  std::FILE* in = std::tmpfile();
  EXPECT_NE(in, nullptr);
  if (in == nullptr) return read;
  std::fwrite(input.data(), 1, input.size(), in);
  std::rewind(in);
  read.error = ForEachBlockOfLines(fileno(in), block_bytes,
                                   [&](std::span<const std::string_view> lines) {
                                     ++read.calls;
                                     for (std::string_view line : lines)
                                       read.lines.emplace_back(line);
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
    EXPECT_EQ(read.error, 0);
    EXPECT_EQ(read.lines, expected) << "block of " << block;
  }
}

TEST(ForEachBlockOfLines, AFinalNewlineStartsNoLineAndEmptyInputHasNone) {
  EXPECT_EQ(ReadAll("a\nb\n", 4).lines, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ReadAll("\n", 4).lines, (std::vector<std::string>{""}));
  Read empty = ReadAll("", 4);
  EXPECT_EQ(empty.error, 0);
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
  EXPECT_EQ(ForEachBlockOfLines(fileno(directory), 16,
                                [&](std::span<const std::string_view>) { ++calls; }),
            EISDIR);
  EXPECT_EQ(calls, 0);
  std::fclose(directory);
}

TEST(ForEachBlockOfLines, HandsOutPipedLinesAsTheyArriveNotWhenABlockIsFull) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::promise<void> first_line_out;
  std::future<void> first_out = first_line_out.get_future();
  bool out_before_the_rest = false;
  // The rest of the input is written only once the first line went out (or
  // after 10 s, which a reader waiting for a full block would need).
  std::thread writer([&] {
    EXPECT_EQ(write(fds[1], "first\n", 6), 6);
    out_before_the_rest =
        first_out.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    EXPECT_EQ(write(fds[1], "second\n", 7), 7);
    close(fds[1]);
  });
  std::vector<std::string> lines;
  EXPECT_EQ(ForEachBlockOfLines(fds[0], 1 << 20,
                                [&](std::span<const std::string_view> got) {
                                  for (std::string_view line : got)
                                    lines.emplace_back(line);
                                  if (lines.size() == 1) first_line_out.set_value();
                                }),
            0);
  writer.join();
  close(fds[0]);
  EXPECT_TRUE(out_before_the_rest);
  EXPECT_EQ(lines, (std::vector<std::string>{"first", "second"}));
}

}  // namespace
}  // namespace ferry::cli
