// Publisher with Fallback against an in-process fake node that offers no
// Admin service, as an older ferryd without GetClientConfig: publishing
// works through the node, nothing falls back, and a bad FallbackAfter is
// named.
#include "fallback_publisher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "fake_node.h"
#include "ferry/client/publisher.h"

namespace ferry::client {
namespace {

using std::chrono::milliseconds;

TEST(FallbackPublisher, NodeWithoutClientConfigStillCarriesMessages) {
  testing::FakeNode node;
  std::string error;
  std::unique_ptr<Publisher> publisher = Publisher::Builder()
                                             .Endpoints({node.address()})
                                             .Fallback(true)
                                             .FallbackAfter(milliseconds(100))
                                             .Linger(milliseconds(1))
                                             .Build(&error);
  ASSERT_NE(publisher, nullptr) << error;
  std::future<PublishResult> first = publisher->Publish("t", {.key = "k", .value = "1"});
  std::future<PublishResult> second = publisher->Publish("t", {.key = "k", .value = "2"});
  ASSERT_TRUE(publisher->Flush(milliseconds(5000)));
  PublishResult a = first.get();
  PublishResult b = second.get();
  EXPECT_TRUE(a.ok()) << a.error;
  EXPECT_TRUE(b.ok()) << b.error;
  EXPECT_FALSE(a.direct);
  ASSERT_EQ(node.accepted().size(), 2u);
  EXPECT_EQ(node.accepted()[0].value, "1");
  EXPECT_EQ(node.accepted()[1].value, "2");
  // The node answers (UNIMPLEMENTED is an answer): no fallback, no config.
  std::this_thread::sleep_for(milliseconds(300));
  const PublisherStats stats = publisher->Stats();
  EXPECT_EQ(stats.ferry_messages, 2u);
  EXPECT_EQ(stats.direct_messages, 0u);
  EXPECT_FALSE(stats.fallback_active);
  EXPECT_FALSE(stats.config_fetched);
  EXPECT_EQ(stats.linger, milliseconds(1));  // the application's own
}

TEST(FallbackPublisher, UnreachableNodesWithoutConfigFailAsWithoutFallback) {
  std::string error;
  std::unique_ptr<Publisher> publisher =
      Publisher::Builder()
          .Endpoints({"127.0.0.1:1"})
          .Fallback(true)
          .FallbackAfter(milliseconds(100))
          .DeliveryTimeout(milliseconds(1500))
          .RetryBackoff(milliseconds(5), milliseconds(40))
          .Build(&error);
  ASSERT_NE(publisher, nullptr) << error;
  std::future<PublishResult> done = publisher->Publish("t", {.key = "k", .value = "v"});
  ASSERT_EQ(done.wait_for(milliseconds(10'000)), std::future_status::ready);
  PublishResult result = done.get();
  EXPECT_EQ(result.code, 14) << result.error;
  EXPECT_FALSE(result.direct);
  EXPECT_TRUE(publisher->Stats().fallback_active);
  EXPECT_FALSE(publisher->Stats().config_fetched);
}

TEST(FallbackPublisher, FallbackAfterMustBePositive) {
  std::string error;
  EXPECT_EQ(Publisher::Builder()
                .Endpoints({"127.0.0.1:7400"})
                .Fallback(true)
                .FallbackAfter(milliseconds(0))
                .Build(&error),
            nullptr);
  EXPECT_EQ(error, "FallbackAfter: must be > 0 ms, got 0");
}

}  // namespace
}  // namespace ferry::client
