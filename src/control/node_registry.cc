#include "control/node_registry.h"

#include <algorithm>

namespace ferry::control {

void NodeRegistry::Record(const NodeBeat& beat, absl::Time now, bool replaying) {
  const absl::Time heard =
      replaying ? std::min(now, absl::FromUnixMillis(beat.seen_ms)) : now;
  nodes_[beat.node_id] = {.beat = beat, .heard = heard};
}

NodeRegistry::State NodeRegistry::StateOf(const Node& node, absl::Time now) const {
  if (node.beat.left) return State::kLeft;
  return now - node.heard <= live_window_ ? State::kLive : State::kLost;
}

std::vector<NodeRegistry::Node> NodeRegistry::List(absl::Time now) const {
  std::vector<Node> live;
  std::vector<Node> departed;
  for (const auto& [id, node] : nodes_) {
    Node listed = node;
    listed.state = StateOf(node, now);
    if (listed.state == State::kLive) {
      live.push_back(std::move(listed));
    } else if (now - node.heard <= keep_departed_) {
      departed.push_back(std::move(listed));
    }
  }
  live.insert(live.end(), departed.begin(), departed.end());
  return live;
}

std::vector<std::string> NodeRegistry::Lagging(int64_t offset, absl::Time now) const {
  std::vector<std::string> lagging;
  for (const auto& [id, node] : nodes_) {
    if (StateOf(node, now) == State::kLive && node.beat.applied_offset < offset) {
      lagging.push_back(id);
    }
  }
  return lagging;
}

std::string_view StateName(NodeRegistry::State state) {
  switch (state) {
    case NodeRegistry::State::kLive:
      return "live";
    case NodeRegistry::State::kLeft:
      return "left";
    case NodeRegistry::State::kLost:
      return "lost";
  }
  return "unknown";
}

}  // namespace ferry::control
