// MirrorRunner on fake clusters whose members hang while leaving.
#include "mirror/mirror_runner.h"

#include <gtest/gtest.h>

#include "backend/fake_cluster.h"

namespace ferry::mirror {
namespace {

// Before, the runner stopped its jobs one after another, each waiting its
// own leave_timeout: K stuck jobs took K of them.
TEST(MirrorRunnerTest, StuckJobsStopTogetherWithinOneLeaveTimeout) {
  backend::FakeCluster source("old");
  backend::FakeCluster target("new");
  for (const char* topic : {"a", "b", "c"}) {
    source.AddTopic(topic, 1);
    target.AddTopic(topic, 1);
  }
  metrics::Registry metrics;
  constexpr absl::Duration kLeaveTimeout = absl::Milliseconds(500);
  auto runner = std::make_unique<MirrorRunner>(
      std::map<std::string, backend::Cluster*>{{"old", &source}, {"new", &target}},
      MirrorJob::Options{.node_id = "n1", .leave_timeout = kLeaveTimeout}, &metrics);
  std::vector<control::MirrorSpec> jobs;
  for (const char* topic : {"a", "b", "c"}) {
    jobs.push_back({.name = topic, .source = "old", .target = "new", .topics = {topic}});
  }
  runner->SetJobs(jobs);
  for (const char* topic : {"a", "b", "c"}) {
    ASSERT_TRUE(source.AwaitMembers(MirrorGroup(topic), 1, absl::Seconds(10)));
  }
  backend::LeaveHold hold(source, absl::Seconds(8));
  const absl::Time start = absl::Now();
  runner.reset();
  EXPECT_LT(absl::Now() - start, kLeaveTimeout + absl::Milliseconds(400));
}

// Before, cutting the starts (draining) also ended the runner thread: a job
// removed during the grace (a rollback) went on copying until the end.
TEST(MirrorRunnerTest, JobRemovedAfterStartsCutStopsWithinLeaveTimeout) {
  backend::FakeCluster source("old");
  backend::FakeCluster target("new");
  source.AddTopic("a", 1);
  target.AddTopic("a", 1);
  source.AddTopic("b", 1);
  target.AddTopic("b", 1);
  metrics::Registry metrics;
  constexpr absl::Duration kLeaveTimeout = absl::Milliseconds(500);
  MirrorRunner runner(
      std::map<std::string, backend::Cluster*>{{"old", &source}, {"new", &target}},
      MirrorJob::Options{.node_id = "n1", .leave_timeout = kLeaveTimeout}, &metrics);
  runner.SetJobs({{.name = "a", .source = "old", .target = "new", .topics = {"a"}}});
  ASSERT_TRUE(source.AwaitMembers(MirrorGroup("a"), 1, absl::Seconds(10)));
  source.members(MirrorGroup("a"))[0]->Assign(
      {{.partition = {"a", 0}, .next_offset = 0}});
  runner.CutStarts();
  runner.SetJobs({{.name = "b", .source = "old", .target = "new", .topics = {"b"}}});
  EXPECT_TRUE(source.AwaitLeaveCommits(MirrorGroup("a"), 1,
                                       kLeaveTimeout + absl::Milliseconds(500)));
  // The added job does not start while draining.
  EXPECT_FALSE(source.AwaitMembers(MirrorGroup("b"), 1, absl::Milliseconds(200)));
  EXPECT_EQ(runner.States().count("a"), 0u);
}

}  // namespace
}  // namespace ferry::mirror
