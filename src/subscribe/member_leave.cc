#include "subscribe/member_leave.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"

namespace ferry::subscribe {
namespace {

// Static storage: an abandoned leave may end after everything else is gone.
std::atomic<int> members_leaving{0};

struct Leave {
  LeavingMember leaving;
  absl::Notification done;
};

}  // namespace

std::vector<std::string> LeaveWithin(std::map<std::string, LeavingMember> members,
                                     absl::Duration bound) {
  std::vector<std::pair<std::string, std::shared_ptr<Leave>>> leaves;
  for (auto& [cluster, leaving] : members) {
    auto leave = std::make_shared<Leave>();
    leave->leaving = std::move(leaving);
    members_leaving.fetch_add(1);
    // Detached: an abandoned leave is not waited for, not even at exit.
    std::thread([leave]() mutable {
      leave->leaving.member.reset();
      leave->leaving.keep_alive.reset();
      leave->done.Notify();
      leave.reset();
      members_leaving.fetch_sub(1);
    }).detach();
    leaves.emplace_back(cluster, std::move(leave));
  }
  const absl::Time deadline = absl::Now() + bound;
  std::vector<std::string> abandoned;
  for (const auto& [cluster, leave] : leaves) {
    if (!leave->done.WaitForNotificationWithDeadline(deadline)) {
      abandoned.push_back(cluster);
    }
  }
  return abandoned;
}

int MembersLeaving() { return members_leaving.load(); }

}  // namespace ferry::subscribe
