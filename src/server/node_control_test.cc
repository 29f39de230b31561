#include "server/node_control.h"

#include <gtest/gtest.h>

namespace ferry::server {
namespace {

class NoGroups final : public control::ControlListener {
 public:
  void OnPaused(const std::string&, bool) override {}
  std::set<backend::TopicPartition> OnSeek(const control::SeekCommand&) override {
    return {};
  }
  void OnCaughtUp() override {}
};

// Given routes from the control topic, one naming a cluster this node does
// not have, when they apply, then the node routes by the others and a
// router taken before the change still resolves as before.
TEST(NodeControl, RoutesReplaceTheRouterWithoutThoseNamingUnknownClusters) {
  NoGroups groups;
  routing::RouteTable table(std::make_shared<const routing::Router>(
      std::vector<config::RouteConfig>{{.topic = "*", .write = {"a"}}},
      std::vector<std::string>{"a", "b"}));
  metrics::Registry metrics;
  mirror::MirrorRunner mirrors({}, {}, &metrics);
  routing::ClusterBreakers breakers({}, {}, &metrics);
  publish::WriteHold holds(absl::Seconds(30), &metrics, [] {});
  NodeControl control(&groups, &table, &breakers, &mirrors, &holds, {"a", "b"});
  std::shared_ptr<const routing::Router> before = table.Current();

  control.OnRoutes({{.topic = "*", .write = {"b"}},
                    {.topic = "orders.*", .write = {"elsewhere"}},
                    {.topic = "pay.*", .write = {"a", "b"}}});

  std::shared_ptr<const routing::Router> after = table.Current();
  ASSERT_EQ(after->routes().size(), 2u);
  EXPECT_EQ(after->Resolve("orders.eu")->write, std::vector<std::string>{"b"});
  EXPECT_EQ(after->Resolve("pay.x")->write, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(before->Resolve("orders.eu")->write, std::vector<std::string>{"a"});
}

}  // namespace
}  // namespace ferry::server
