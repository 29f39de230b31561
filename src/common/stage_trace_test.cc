#include "common/stage_trace.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace ferry::stage_trace {
namespace {

// FERRY_STAGE_TRACE set to a fresh directory for the test's lifetime.
class TraceDir {
 public:
  TraceDir()
      : dir_(std::filesystem::temp_directory_path() /
             ("stage_trace_test." + std::to_string(getpid()))) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    setenv("FERRY_STAGE_TRACE", dir_.c_str(), 1);
  }
  ~TraceDir() {
    unsetenv("FERRY_STAGE_TRACE");
    std::filesystem::remove_all(dir_);
  }
  std::vector<std::string> Lines() const {
    std::vector<std::string> lines;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      std::ifstream in(entry.path());
      for (std::string line; std::getline(in, line);) lines.push_back(line);
    }
    return lines;
  }
  std::filesystem::path path() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

TEST(StageTrace, OffWithoutTheVariable) {
  unsetenv("FERRY_STAGE_TRACE");
  EXPECT_EQ(Tracer::Open("off", "h"), nullptr);
  setenv("FERRY_STAGE_TRACE", "", 1);
  EXPECT_EQ(Tracer::Open("off", "h"), nullptr);
  unsetenv("FERRY_STAGE_TRACE");
}

TEST(StageTrace, NoTracerAndAWordOnStderrWhenTheDirectoryIsMissing) {
  TraceDir dir;
  const std::string missing = (dir.path() / "missing").string();
  setenv("FERRY_STAGE_TRACE", missing.c_str(), 1);
  testing::internal::CaptureStderr();
  EXPECT_EQ(Tracer::Open("lost", "h"), nullptr);
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("cannot create " + missing + "/lost-"), std::string::npos) << said;
  EXPECT_TRUE(dir.Lines().empty());
}

TEST(StageTrace, WritesTheHeaderAndWholeRowsFromManyThreads) {
  TraceDir dir;
  {
    std::unique_ptr<Tracer> trace = Tracer::Open("test", "key\ta\tb");
    ASSERT_NE(trace, nullptr);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&trace, t] {
        for (int i = 0; i < 1000; ++i) trace->Row("k" + std::to_string(t), {i, -i});
      });
    }
    for (std::thread& thread : threads) thread.join();
  }  // Closing writes what is buffered.
  std::vector<std::string> lines = dir.Lines();
  ASSERT_EQ(lines.size(), 4001u);
  EXPECT_EQ(lines[0], "key\ta\tb");
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const int a = std::stoi(line.substr(tab + 1));
    EXPECT_EQ(line.substr(line.rfind('\t') + 1), std::to_string(-a)) << line;
  }
}

// A process that exits without destroying its tracer (ferryd) still leaves
// whole lines: they are written out 64 KiB (or a second) at a time.
TEST(StageTrace, WholeLinesReachTheFileWhileTheTracerIsOpen) {
  TraceDir dir;
  std::unique_ptr<Tracer> trace = Tracer::Open("open", "key\tn");
  ASSERT_NE(trace, nullptr);
  for (int i = 0; i < 100000; ++i) trace->Row("some-batch-id", {i});
  std::vector<std::string> lines = dir.Lines();
  // About 2 MB of rows: all but the last 64 KiB are in the file already.
  ASSERT_GT(lines.size(), 90000u);
  EXPECT_EQ(lines[0], "key\tn");
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i], "some-batch-id\t" + std::to_string(i - 1));
  }
  trace.reset();
  EXPECT_EQ(dir.Lines().size(), 100001u);
}

TEST(StageTrace, StampsFollowTheMonotonicClock) {
  const int64_t first = NowNs();
  const int64_t second = NowNs();
  EXPECT_LE(first, second);
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const int64_t mono = int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  EXPECT_LE(second, mono);
  EXPECT_LT(mono - second, int64_t{1000000000});
}

}  // namespace
}  // namespace ferry::stage_trace
