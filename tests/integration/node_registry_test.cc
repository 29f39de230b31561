// The node registry across ferryd processes on one Kafka control cluster:
// `ferry nodes` lists every live node from its heartbeats, a node killed -9
// as lost once control.node_timeout passed, and a node stopped cleanly as
// left at once.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::RunFerryCli;

// node id -> state, as `ferry nodes` on `node` prints them.
std::map<std::string, std::string> ListedStates(const FerrydProcess& node) {
  auto result = RunFerryCli({"--server", node.grpc_address(), "nodes"});
  std::map<std::string, std::string> states;
  if (!result.ok() || result->exit_code != 0) return states;
  for (absl::string_view line : absl::StrSplit(result->out, '\n')) {
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (words.size() >= 2 && words[0] != "NODE") {
      states[std::string(words[0])] = std::string(words[1]);
    }
  }
  return states;
}

// Polls until `ferry nodes` lists exactly `want`; returns the last listing.
std::map<std::string, std::string> WaitForStates(
    const FerrydProcess& node, const std::map<std::string, std::string>& want) {
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  std::map<std::string, std::string> states;
  while (absl::Now() < give_up) {
    states = ListedStates(node);
    if (states == want) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  return states;
}

TEST(NodeRegistry, NodesListsLiveNodesAndThoseKilledOrStoppedAsDeparted) {
  testing::KafkaBroker* broker = testing::SharedBroker();
  ASSERT_NE(broker, nullptr);
  std::map<std::string, std::unique_ptr<FerrydProcess>> nodes;
  for (const std::string id : {"node-a", "node-b", "node-c"}) {
    auto node = FerrydProcess::Start(
        testing::MainClusterYaml(broker->bootstrap()) +
        absl::StrCat("node: { id: ", id, " }",
                     "\ncontrol: { heartbeat_interval: 200ms, node_timeout: 2s }\n"));
    ASSERT_TRUE(node.ok()) << node.status();
    nodes[id] = *std::move(node);
  }
  const FerrydProcess& a = *nodes["node-a"];
  using States = std::map<std::string, std::string>;
  ASSERT_EQ(
      WaitForStates(a, {{"node-a", "live"}, {"node-b", "live"}, {"node-c", "live"}}),
      (States{{"node-a", "live"}, {"node-b", "live"}, {"node-c", "live"}}));

  const absl::Time killed = absl::Now();
  nodes["node-c"]->process().Signal(SIGKILL);
  EXPECT_EQ(
      WaitForStates(a, {{"node-a", "live"}, {"node-b", "live"}, {"node-c", "lost"}}),
      (States{{"node-a", "live"}, {"node-b", "live"}, {"node-c", "lost"}}));
  EXPECT_GE(absl::Now() - killed, absl::Milliseconds(1500)) << "lost before the timeout";

  nodes["node-b"]->process().Signal(SIGTERM);
  ASSERT_TRUE(nodes["node-b"]->process().Wait(absl::Seconds(30)).ok());
  const absl::Time stopped = absl::Now();
  EXPECT_EQ(
      WaitForStates(a, {{"node-a", "live"}, {"node-b", "left"}, {"node-c", "lost"}}),
      (States{{"node-a", "live"}, {"node-b", "left"}, {"node-c", "lost"}}));
  EXPECT_LT(absl::Now() - stopped, absl::Seconds(1))
      << "a clean stop is known from its departure record, not the timeout";
}

}  // namespace
}  // namespace ferry
