// Issue 20's pushed client settings for a C++ publisher without fallback,
// on a real ferryd (embedded store): a change made at runtime with `ferry
// client-settings set` reaches the running publisher and its batches to the
// node; an option the application set is not overridden.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "absl/time/clock.h"
#include "ferry/client/publisher.h"
#include "testing/ferryd_process.h"
#include "testing/publisher_batches.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;

constexpr char kTopic[] = "settings.follow";

std::unique_ptr<client::Publisher> NewPublisher(const std::string& endpoint,
                                                int max_batch_messages = 0) {
  client::Publisher::Builder builder;
  builder.Endpoints({endpoint});
  if (max_batch_messages > 0) builder.MaxBatchMessages(max_batch_messages);
  std::string error;
  auto publisher = builder.Build(&error);
  EXPECT_NE(publisher, nullptr) << error;
  return publisher;
}

uint64_t BatchesFor(client::Publisher& publisher, int count) {
  return testing::NodeBatchesFor(publisher, kTopic, count);
}

// Polls until `done` or 10 s passed; returns `done()`.
template <typename Done>
bool WaitUntil(Done done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!done() && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

TEST(ClientSettings, PublisherWithoutFallbackFollowsASettingPushedAtRuntime) {
  auto node = FerrydProcess::Start(
      "clusters: { main: { type: embedded, path: ./store } }\n"
      "client: { refresh_interval: 1s }\n");
  ASSERT_TRUE(node.ok()) << node.status();
  const std::string endpoint = (*node)->grpc_address();
  auto created = testing::RunFerryCli(
      {"--server", endpoint, "topics", "create", kTopic, "--partitions", "1"});
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_EQ(created->exit_code, 0) << created->err;
  auto pushed = NewPublisher(endpoint);
  auto own = NewPublisher(endpoint, /*max_batch_messages=*/500);
  ASSERT_NE(pushed, nullptr);
  ASSERT_NE(own, nullptr);
  ASSERT_TRUE(WaitUntil([&] { return pushed->Stats().config_fetched; }));
  EXPECT_EQ(pushed->Stats().max_batch_messages, 500);  // the SDK default
  EXPECT_EQ(pushed->Stats().linger, std::chrono::milliseconds(5));
  EXPECT_LE(BatchesFor(*pushed, 200), 10u);

  auto set = testing::RunFerryCli({"--server", endpoint, "client-settings", "set",
                                   "--linger", "40ms", "--max-batch-messages", "5"});
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->exit_code, 0) << set->err;

  // Refreshed within client.refresh_interval (1 s).
  ASSERT_TRUE(WaitUntil([&] { return pushed->Stats().max_batch_messages == 5; }));
  EXPECT_EQ(pushed->Stats().linger, std::chrono::milliseconds(40));
  // The node path follows: 200 messages at most 5 a batch.
  EXPECT_GE(BatchesFor(*pushed, 200), 40u);

  // MaxBatchMessages(500) set on the Builder wins; the pushed linger applies.
  ASSERT_TRUE(WaitUntil([&] { return own->Stats().linger.count() == 40; }));
  EXPECT_EQ(own->Stats().max_batch_messages, 500);
  EXPECT_LE(BatchesFor(*own, 200), 10u);
}

}  // namespace
}  // namespace ferry
