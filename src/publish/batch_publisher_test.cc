#include "publish/batch_publisher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "api/retry.h"
#include "publish/admin_only_cluster.h"

namespace ferry::publish {
namespace {

using ::testing::Return;

// A batch for a topic the route would create, when looking the topic up
// fails: every message fails with the lookup's status, and whether the SDK
// may retry it is the one table's decision (api/retry.h), whatever the code.
TEST(BatchPublisher, AFailedAutoCreationFailsEachMessageRetryableByTheTable) {
  AdminOnlyCluster cluster("main");
  routing::RouteTable router(std::make_shared<const routing::Router>(
      std::vector<config::RouteConfig>{{.topic = "auto.*",
                                        .write = {"main"},
                                        .read = {"main"},
                                        .auto_create_topics = true}},
      std::vector<std::string>{"main"}));
  metrics::Registry registry;
  InflightLimiter limiter(1 << 20);
  BatchPublisher publisher(config::PublishConfig{}, &router, {{"main", &cluster}},
                           &registry, &limiter);
  const absl::StatusCode codes[] = {
      absl::StatusCode::kUnavailable,       absl::StatusCode::kDeadlineExceeded,
      absl::StatusCode::kResourceExhausted, absl::StatusCode::kAborted,
      absl::StatusCode::kPermissionDenied,  absl::StatusCode::kInvalidArgument,
      absl::StatusCode::kInternal,          absl::StatusCode::kFailedPrecondition};
  for (absl::StatusCode code : codes) {
    // A topic per code: a failed lookup answers everyone who joins it.
    const std::string topic = absl::StrCat("auto.", static_cast<int>(code));
    EXPECT_CALL(cluster, DescribeTopic(topic))
        .WillOnce(Return(absl::StatusOr<backend::TopicInfo>(absl::Status(code, "no"))));
    v1::PublishRequest request;
    request.set_topic(topic);
    request.add_messages()->set_value("a");
    request.add_messages()->set_value("b");
    auto batch = publisher.Prepare(request);
    ASSERT_TRUE(batch.ok()) << batch.status();
    ASSERT_TRUE(limiter.TryAcquire(batch->bytes));
    absl::Notification answered;
    v1::PublishResponse response;
    publisher.Publish(request, *batch, [&](v1::PublishResponse r) {
      response = std::move(r);
      answered.Notify();
    });
    ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
    ASSERT_EQ(response.results_size(), 2);
    for (const v1::PublishResult& result : response.results()) {
      EXPECT_EQ(result.status().code(), static_cast<int>(code));
      EXPECT_EQ(result.status().retryable(), api::IsRetryable(code))
          << absl::StatusCodeToString(code);
    }
  }
  EXPECT_EQ(limiter.in_use(), 0);
}

}  // namespace
}  // namespace ferry::publish
