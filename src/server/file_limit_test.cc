#include "server/file_limit.h"

#include <gtest/gtest.h>

#include <vector>

namespace ferry::server {
namespace {

// A process limit held in memory; records what was set.
struct FakeLimit {
  FileLimit limit = {};
  absl::Status set_error = {};
  std::vector<FileLimit> sets = {};

  FileLimitCalls Calls() {
    return FileLimitCalls{
        .get = [this]() -> absl::StatusOr<FileLimit> { return limit; },
        .set =
            [this](const FileLimit& wanted) {
              sets.push_back(wanted);
              if (!set_error.ok()) return set_error;
              limit = wanted;
              return absl::OkStatus();
            },
    };
  }
};

TEST(RaiseFileLimit, GivenASoftLimitBelowTheHardOneWhenRaisedThenSoftEqualsHard) {
  FakeLimit fake{.limit = {.soft = 1024, .hard = 524288}};
  absl::StatusOr<FileLimitChange> change = RaiseFileLimit(fake.Calls());
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->before, (FileLimit{.soft = 1024, .hard = 524288}));
  EXPECT_EQ(change->after, (FileLimit{.soft = 524288, .hard = 524288}));
  EXPECT_EQ(fake.limit, (FileLimit{.soft = 524288, .hard = 524288}));
}

TEST(RaiseFileLimit, GivenSoftEqualToHardWhenRaisedThenNothingIsSet) {
  FakeLimit fake{.limit = {.soft = 4096, .hard = 4096}};
  absl::StatusOr<FileLimitChange> change = RaiseFileLimit(fake.Calls());
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->after, change->before);
  EXPECT_TRUE(fake.sets.empty());
}

TEST(RaiseFileLimit, GivenARefusedSetWhenRaisedThenTheErrorIsReturnedAndTheLimitKept) {
  FakeLimit fake{.limit = {.soft = 1024, .hard = 8192},
                 .set_error = absl::InternalError("setrlimit: Operation not permitted")};
  absl::StatusOr<FileLimitChange> change = RaiseFileLimit(fake.Calls());
  EXPECT_EQ(change.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(fake.limit, (FileLimit{.soft = 1024, .hard = 8192}));
}

TEST(RaiseFileLimit,
     GivenThisProcessWithALoweredSoftLimitWhenRaisedThenItIsTheHardLimit) {
  const FileLimitCalls system = SystemFileLimitCalls();
  absl::StatusOr<FileLimit> original = system.get();
  ASSERT_TRUE(original.ok()) << original.status();
  if (original->hard < 2) GTEST_SKIP() << "hard limit too low to lower the soft one";
  const FileLimit lowered{.soft = original->hard / 2, .hard = original->hard};
  ASSERT_TRUE(system.set(lowered).ok());

  absl::StatusOr<FileLimitChange> change = RaiseFileLimit(system);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->before, lowered);
  EXPECT_EQ(change->after, (FileLimit{.soft = original->hard, .hard = original->hard}));
  absl::StatusOr<FileLimit> now = system.get();
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->soft, original->hard);
  // Leave the test process as it was.
  ASSERT_TRUE(system.set(*original).ok());
}

}  // namespace
}  // namespace ferry::server
