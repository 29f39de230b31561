// WriteTempFile's files go when the test program exits; after a failed test
// they stay, node logs included, and the program says where.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <iostream>
#include <string>

#include "testing/ferryd_process.h"
#include "testing/process.h"

namespace ferry::testing {
namespace {

constexpr char kChildVariable[] = "FERRY_TEMP_FILES_CHILD";

// Run as a child by the tests below (disabled otherwise): writes a file and
// a directory beside it (as a node's embedded store does), starts and stops
// a node, prints where they are, and fails if told to.
TEST(TempFilesTest, DISABLED_Child) {
  const char* mode = getenv(kChildVariable);
  if (mode == nullptr) GTEST_SKIP() << "run by the tests below";
  const std::string path = WriteTempFile("store", "");
  std::filesystem::create_directories(path + ".d/sub");
  std::cout << "\nwritten=" << path << "\n";
  auto node = FerrydProcess::Start("");
  ASSERT_TRUE(node.ok()) << node.status();
  if (std::string(mode) == "fail") ADD_FAILURE() << "fails on purpose";
  node->reset();
}

struct ChildRun {
  int exit_code;
  std::string out;
  std::string err;
  std::string written;  // the file the child wrote
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

// Before, every run of an integration test left its files in /tmp.
TEST(TempFilesTest, FilesAreRemovedWhenTheProgramExitsAfterPassingTests) {
  const ChildRun child = RunChild("pass");
  EXPECT_EQ(child.exit_code, 0) << child.out;
  ASSERT_FALSE(child.written.empty());
  EXPECT_FALSE(std::filesystem::exists(child.written)) << child.written;
  EXPECT_FALSE(std::filesystem::exists(child.written + ".d")) << child.written;
  EXPECT_FALSE(
      std::filesystem::exists(std::filesystem::path(child.written).parent_path()))
      << child.written;
}

// Before, a failure that showed up once under load left no node log to read.
TEST(TempFilesTest, AfterAFailedTestTheFilesAndNodeLogsAreKeptAndNamed) {
  const ChildRun child = RunChild("fail");
  EXPECT_NE(child.exit_code, 0) << child.out;
  ASSERT_FALSE(child.written.empty());
  const std::filesystem::path dir = std::filesystem::path(child.written).parent_path();
  EXPECT_TRUE(std::filesystem::exists(child.written + ".d/sub")) << child.written;
  EXPECT_NE(child.err.find("kept in " + dir.string()), std::string::npos) << child.err;
  int logs = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    logs += entry.path().filename().string().ends_with("-ferryd.log");
  }
  EXPECT_EQ(logs, 1) << dir;

  // The next program's sweep of dead programs' directories leaves it.
  const ChildRun next = RunChild("pass");
  EXPECT_TRUE(std::filesystem::exists(child.written)) << child.written;
  std::filesystem::remove_all(dir, error);
}

}  // namespace
}  // namespace ferry::testing
