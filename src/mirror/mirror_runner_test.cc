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

}  // namespace
}  // namespace ferry::mirror
