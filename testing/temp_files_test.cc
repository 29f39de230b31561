// WriteTempFile's files go when the test program exits; after a failed test
// they stay, node logs included, and the program says where.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "testing/ferryd_process.h"
#include "testing/process.h"

namespace ferry::testing {
namespace {

constexpr char kChildVariable[] = "FERRY_TEMP_FILES_CHILD";
constexpr char kKeptMarker[] = "KEPT-AFTER-A-FAILED-TEST";

// Run as a child by the tests below (disabled otherwise): writes a file and
// a directory beside it (as a node's embedded store does), prints where
// they are, then per mode: "pass" and "fail" start and stop a node, "fail"
// failing; "fail-abort" fails and dies (as under a ctest timeout);
// "abort" dies without a failure (a hang killed, a crash).
TEST(TempFilesTest, DISABLED_Child) {
  const char* env = getenv(kChildVariable);
  if (env == nullptr) GTEST_SKIP() << "run by the tests below";
  const std::string mode = env;
  const std::string path = WriteTempFile("store", "");
  std::filesystem::create_directories(path + ".d/sub");
  std::cout << "\nwritten=" << path << std::endl;
  if (mode == "fail-abort") ADD_FAILURE() << "fails on purpose, then dies";
  if (mode.ends_with("abort")) std::abort();
  auto node = FerrydProcess::Start("");
  ASSERT_TRUE(node.ok()) << node.status();
  if (mode == "fail") ADD_FAILURE() << "fails on purpose";
  node->reset();
}

struct ChildRun {
  int exit_code;
  std::string out;
  std::string err;
  std::string written;  // the file the child wrote
  std::filesystem::path dir() const {
    return std::filesystem::path(written).parent_path();
  }
};

ChildRun RunChild(const std::string& mode) {
  auto child = RunProcess(
      {std::filesystem::read_symlink("/proc/self/exe").string(),
       "--gtest_also_run_disabled_tests", "--gtest_filter=TempFilesTest.DISABLED_Child"},
      {{kChildVariable, mode}});
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) return {-1, "", "", ""};
  const size_t at = child->out.find("written=");
  EXPECT_NE(at, std::string::npos) << child->out;
  if (at == std::string::npos) return {child->exit_code, child->out, child->err, ""};
  return {child->exit_code, child->out, child->err,
          child->out.substr(at + 8, child->out.find('\n', at) - at - 8)};
}

// Makes `dir` and what is in it look last changed `age` ago.
void Age(const std::filesystem::path& dir, std::chrono::hours age) {
  const auto then = std::filesystem::file_time_type::clock::now() - age;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    std::filesystem::last_write_time(entry.path(), then, error);
  }
  std::filesystem::last_write_time(dir, then, error);
}

// Before, every run of an integration test left its files in /tmp.
TEST(TempFilesTest, FilesAreRemovedWhenTheProgramExitsAfterPassingTests) {
  const ChildRun child = RunChild("pass");
  EXPECT_EQ(child.exit_code, 0) << child.out;
  ASSERT_FALSE(child.written.empty());
  EXPECT_FALSE(std::filesystem::exists(child.written)) << child.written;
  EXPECT_FALSE(std::filesystem::exists(child.written + ".d")) << child.written;
  EXPECT_FALSE(std::filesystem::exists(child.dir())) << child.written;
}

// Before, a failure that showed up once under load left no node log to read.
TEST(TempFilesTest, AfterAFailedTestTheFilesAndNodeLogsAreKeptAndNamed) {
  const ChildRun child = RunChild("fail");
  EXPECT_NE(child.exit_code, 0) << child.out;
  ASSERT_FALSE(child.written.empty());
  std::error_code error;
  const absl::Cleanup remove = [&] { std::filesystem::remove_all(child.dir(), error); };
  EXPECT_TRUE(std::filesystem::exists(child.written + ".d/sub")) << child.written;
  EXPECT_NE(child.err.find("kept in " + child.dir().string()), std::string::npos)
      << child.err;
  int logs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(child.dir(), error)) {
    logs += entry.path().filename().string().ends_with(
        "-TempFilesTest.DISABLED_Child-ferryd.log");
  }
  EXPECT_EQ(logs, 1) << child.dir();

  // The next program's sweep of dead programs' directories leaves it.
  const ChildRun next = RunChild("pass");
  EXPECT_EQ(next.exit_code, 0) << next.out;
  EXPECT_TRUE(std::filesystem::exists(child.written)) << child.written;
}

// Before, the directory was marked kept only at a normal exit: a program
// killed after a failure (a ctest timeout) left it unmarked, and the next
// program's sweep removed it with its logs.
TEST(TempFilesTest, AProgramThatDiesAfterAFailureLeavesItsFilesKeptForDays) {
  const ChildRun child = RunChild("fail-abort");
  EXPECT_NE(child.exit_code, 0) << child.out;
  ASSERT_FALSE(child.written.empty());
  std::error_code error;
  const absl::Cleanup remove = [&] { std::filesystem::remove_all(child.dir(), error); };
  EXPECT_TRUE(std::filesystem::exists(child.dir() / kKeptMarker)) << child.dir();
  EXPECT_NE(child.err.find("kept in " + child.dir().string()), std::string::npos)
      << child.err;
  Age(child.dir(), std::chrono::hours(48));
  EXPECT_EQ(RunChild("pass").exit_code, 0);
  EXPECT_TRUE(std::filesystem::exists(child.written)) << child.written;

  Age(child.dir(), std::chrono::hours(80));
  EXPECT_EQ(RunChild("pass").exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(child.dir())) << "kept for 3 days only";
}

// A program killed without a failed test (it hung) leaves its files unmarked:
// they stay an hour for its logs to be read, then the sweep removes them.
TEST(TempFilesTest, AnUnmarkedDirectoryOfADeadProgramGoesAfterAnHour) {
  const ChildRun child = RunChild("abort");
  EXPECT_NE(child.exit_code, 0) << child.out;
  ASSERT_FALSE(child.written.empty());
  std::error_code error;
  const absl::Cleanup remove = [&] { std::filesystem::remove_all(child.dir(), error); };
  EXPECT_FALSE(std::filesystem::exists(child.dir() / kKeptMarker)) << child.dir();
  EXPECT_EQ(RunChild("pass").exit_code, 0);
  EXPECT_TRUE(std::filesystem::exists(child.written)) << child.written;

  Age(child.dir(), std::chrono::hours(2));
  EXPECT_EQ(RunChild("pass").exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(child.dir()));
}

}  // namespace
}  // namespace ferry::testing
