#pragma once

// Leaving a consumer group destroys the group's member, which blocks (a
// final commit, closing the broker consumer) and may block for good:
// librdkafka 2.0.2's rd_kafka_destroy waits forever for a broker thread that
// still holds a reference (seen after a topic was deleted under a group).
// So each member is destroyed on a thread of its own and the caller waits a
// bounded time: one member stuck leaving must not keep other groups from
// leaving, nor shutdown from finishing. A member still leaving at the bound
// is abandoned: its thread goes on and frees it if it ever finishes (until
// then its broker client stays allocated: a bounded leak per incident).
//
// Threading: thread-safe.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "backend/group_member.h"

namespace ferry::subscribe {

struct LeavingMember {
  std::unique_ptr<backend::GroupMember> member;
  // What the member uses and must outlive it (its listener): released on
  // the leaving thread, after the member.
  std::shared_ptr<void> keep_alive;
};

// Destroys `members` (by cluster name) in parallel and waits for them at
// most `bound`; returns the names of those still leaving then (abandoned).
std::vector<std::string> LeaveWithin(std::map<std::string, LeavingMember> members,
                                     absl::Duration bound);

// Members being destroyed now, abandoned ones included: tests wait for 0
// before destroying what a member uses (a fake cluster).
int MembersLeaving();

}  // namespace ferry::subscribe
