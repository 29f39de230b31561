#pragma once

// The fixture of the backend conformance suite: one parameterised test suite,
// `Conformance`, instantiated over every backend (conformance_test.cc). Each
// TEST_P talks to ferryd only, through its gRPC API: topics are created with
// Admin.CreateTopic, written with Publisher.Publish and read back with
// Subscriber.Subscribe, so one test body asserts one outcome on every backend.

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "ferry/v1/publisher.grpc.pb.h"
#include "testing/ferryd_process.h"
#include "testing/subscriber_stream.h"
#include "tests/conformance/backend.h"

namespace ferry::conformance {

inline constexpr absl::Duration kWait = absl::Seconds(30);

// Skips the current test, naming the backend and its reason, when the backend
// lacks `capability`.
#define REQUIRE_CAPABILITY(capability)                                             \
  do {                                                                             \
    const ::ferry::conformance::Support support_ = backend().Supports(capability); \
    if (!support_.supported) {                                                     \
      GTEST_SKIP() << "known difference, " << backend().name() << ": "             \
                   << support_.reason;                                             \
    }                                                                              \
  } while (0)

// Extra node configuration on top of the backend's clusters.
struct NodeOptions {
  // Lines under `subscribe:` (commit_interval is 100ms already), e.g.
  // "  group_idle_timeout: 0s\n".
  std::string subscribe = {};
  // Lines under `publish:`, e.g. "  max_message_bytes: 1024\n".
  std::string publish = {};
  // Lines under `routes:` (none: the node's default route), e.g.
  // "  - { topic: \"*\", write: [main] }\n".
  std::string routes = {};
};

class Conformance : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override;
  void TearDown() override;

  Backend& backend() { return *backend_; }

  // The test's name, usable in topic and group names ("Name.Kafka").
  std::string Name() const;

  // A ferryd on the backend, owned by the fixture (TearDown reports it if it
  // died); nullptr (and a test failure) if it fails to start.
  testing::FerrydProcess* Node(const NodeOptions& options = {});

  // Stops `node` gracefully (SIGTERM, as an operator would) and waits.
  void StopNode(testing::FerrydProcess* node);

  // Admin.CreateTopic; on backends without it, the backend provisions the
  // topic instead (a listed known difference). Records a failure on error.
  void CreateTopic(const testing::FerrydProcess& node, const std::string& topic,
                   int partitions);
  // "<Name()><suffix>", created with `partitions`.
  std::string Topic(const testing::FerrydProcess& node, int partitions,
                    const std::string& suffix = "");

  // Helpers usable outside the fixture's methods as well.
 public:
  // Publisher.Publish with a 30 s deadline.
  static grpc::Status Publish(const testing::FerrydProcess& node,
                              const v1::PublishRequest& request,
                              v1::PublishResponse* response);
  // Publishes and records a failure unless the call and every message are OK.
  static v1::PublishResponse PublishOk(const testing::FerrydProcess& node,
                                       const v1::PublishRequest& request);

  static std::unique_ptr<v1::Admin::Stub> Admin(const testing::FerrydProcess& node);

  // Admin.DescribeGroup's committed offsets of `topic` (partition -> offset,
  // -1 when nothing is committed); empty on error.
  static std::map<int32_t, int64_t> Committed(const testing::FerrydProcess& node,
                                              const std::string& group,
                                              const std::string& topic);
  // Waits until Committed() equals `expected`; records a failure on timeout.
  static bool WaitCommitted(const testing::FerrydProcess& node, const std::string& group,
                            const std::string& topic,
                            const std::map<int32_t, int64_t>& expected);

  // Reads `count` messages of `topic` from the beginning with a fresh group
  // (acking them), to check what a topic holds through Ferry.
  static std::vector<v1::ReceivedMessage> ReadBack(const testing::FerrydProcess& node,
                                                   const std::string& topic,
                                                   const std::string& group,
                                                   size_t count);

 private:
  std::unique_ptr<Backend> backend_;
  std::vector<std::unique_ptr<testing::FerrydProcess>> nodes_;
};

// Sets a deadline of `timeout` on `context` and returns it.
grpc::ClientContext* WithDeadline(grpc::ClientContext& context,
                                  absl::Duration timeout = kWait);

v1::OutgoingMessage* AddMessage(v1::PublishRequest& request, const std::string& key,
                                const std::string& value);

// The last `bytes` of the node's log, for failure messages.
std::string LogTail(const testing::FerrydProcess& node, size_t bytes = 3000);

std::vector<std::string> Receipts(const std::vector<v1::ReceivedMessage>& messages);

// Messages from several streams until `count` arrived or `timeout` passed.
std::vector<std::pair<testing::SubscriberStream*, v1::ReceivedMessage>> TakeFrom(
    const std::vector<testing::SubscriberStream*>& streams, size_t count,
    absl::Duration timeout);

}  // namespace ferry::conformance
