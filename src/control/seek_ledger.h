#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "backend/cluster.h"

namespace ferry::control {

// Seeks that partitions changing owners missed: a node that is assigned a
// partition after a seek command passed asks here whether it must still move
// it, and says when it moved partitions.
class SeekLedger {
 public:
  struct Unapplied {
    std::string seek_id;
    int64_t offset = 0;
  };
  virtual ~SeekLedger() = default;
  // The group's latest seek command for `cluster` (or for every cluster), if
  // still valid, covers `partition` and no node has said it moved it.
  virtual std::optional<Unapplied> UnappliedSeek(
      const std::string& group, const std::string& cluster,
      const backend::TopicPartition& partition) const = 0;
  // This node moved `partitions` for seek `seek_id` (answered asynchronously).
  virtual void ConfirmSeek(const std::string& group, const std::string& seek_id,
                           std::set<backend::TopicPartition> partitions) = 0;
};

}  // namespace ferry::control
