#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "absl/status/status.h"
#include "backend/group_member.h"

namespace ferry::backend {

// Ignores every event (a member a test only joins, leaves or rebalances).
class IdleListener : public GroupMemberListener {
 public:
  void OnAssigned(const std::vector<AssignedPartition>&) override {}
  std::map<TopicPartition, int64_t> OnRevoked(
      const std::vector<TopicPartition>&) override {
    return {};
  }
  void OnRecords(std::vector<ConsumedRecord>) override {}
  void OnSeekDone(const TopicPartition&, int64_t) override {}
  void OnError(const absl::Status&) override {}
};

}  // namespace ferry::backend
