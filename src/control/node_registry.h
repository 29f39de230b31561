#pragma once

// The nodes the control topic heard from (their `node/<id>` heartbeats and
// departures), and which live ones have not yet applied a given control
// record: the barrier a migration waits on (docs/migration.md).
//
// Single-threaded: ControlPlane calls it under its lock. Time is passed in.
// Costs O(nodes) per call.
//
// A node is live while its last heartbeat was heard within `live_window`;
// a node that left cleanly, or went silent (killed, partitioned), is
// departed and listed for `keep_departed` more. Heartbeats read while
// replaying the control topic's history count as heard at the time the
// writer stamped them (never later than now); afterwards, when they are
// read, so clock skew between nodes does not shorten a live node's window.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "control/control_record.h"

namespace ferry::control {

class NodeRegistry {
 public:
  enum class State { kLive, kLeft, kLost };
  struct Node {
    NodeBeat beat;
    absl::Time heard;
    State state = State::kLive;
  };

  NodeRegistry(absl::Duration live_window, absl::Duration keep_departed)
      : live_window_(live_window), keep_departed_(keep_departed) {}

  void Record(const NodeBeat& beat, absl::Time now, bool replaying);
  // Live nodes, then departed ones heard within `keep_departed`, by id.
  std::vector<Node> List(absl::Time now) const;
  // Ids of the live nodes whose applied offset is below `offset`.
  std::vector<std::string> Lagging(int64_t offset, absl::Time now) const;

 private:
  State StateOf(const Node& node, absl::Time now) const;

  const absl::Duration live_window_;
  const absl::Duration keep_departed_;
  std::map<std::string, Node> nodes_;
};

std::string_view StateName(NodeRegistry::State state);

}  // namespace ferry::control
