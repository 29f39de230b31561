#pragma once

// A fresh directory per test for files a test writes (stores, certificates), removed with
// everything in it.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace ferry::testing {

class TestDir {
 public:
  TestDir() {
    std::string pattern = ::testing::TempDir() + "/ferry-test-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      // Not a test failure only: with no directory the files would land in /.
      std::fprintf(stderr, "cannot make a directory for the test's files: %s\n",
                   std::strerror(errno));
      std::abort();
    }
    path_ = pattern;
  }
  ~TestDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TestDir(const TestDir&) = delete;
  TestDir& operator=(const TestDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace ferry::testing
