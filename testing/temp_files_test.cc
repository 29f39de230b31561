// WriteTempFile's files go when the test program exits, also after a
// failed test.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <iostream>

#include "testing/ferryd_process.h"
#include "testing/process.h"

namespace ferry::testing {
namespace {

constexpr char kChildVariable[] = "FERRY_TEMP_FILES_CHILD";

// Run as a child by the test below (disabled otherwise): writes a file and
// a directory beside it (as a node's embedded store does), prints where,
// and fails.
TEST(TempFilesTest, DISABLED_Child) {
  if (getenv(kChildVariable) == nullptr) GTEST_SKIP() << "run by the test below";
  const std::string path = WriteTempFile("store", "");
  std::filesystem::create_directories(path + ".d/sub");
  std::cout << "\nwritten=" << path << "\n";
  FAIL() << "fails on purpose";
}

// Before, every run of an integration test left its files in /tmp.
TEST(TempFilesTest, FilesAreRemovedWhenTheProgramExitsAfterAFailedTest) {
  auto child = RunProcess(
      {std::filesystem::read_symlink("/proc/self/exe").string(),
       "--gtest_also_run_disabled_tests", "--gtest_filter=TempFilesTest.DISABLED_Child"},
      {{kChildVariable, "1"}});
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_NE(child->exit_code, 0) << child->out;
  const size_t at = child->out.find("written=");
  ASSERT_NE(at, std::string::npos) << child->out;
  const std::string path = child->out.substr(at + 8, child->out.find('\n', at) - at - 8);
  EXPECT_FALSE(std::filesystem::exists(path)) << path;
  EXPECT_FALSE(std::filesystem::exists(path + ".d")) << path;
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(path).parent_path()))
      << path;
}

}  // namespace
}  // namespace ferry::testing
