#include "backend/member_leave.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "absl/synchronization/notification.h"

namespace ferry::backend {
namespace {

// Never destroyed: an abandoned leave may end after everything else is gone.
struct Leaving {
  absl::Mutex mu;
  std::map<const Cluster*, int> by_cluster ABSL_GUARDED_BY(mu);
  int total ABSL_GUARDED_BY(mu) = 0;
  // Clusters CloseClusters kept.
  std::vector<std::unique_ptr<Cluster>> kept ABSL_GUARDED_BY(mu);
  absl::Time deadline ABSL_GUARDED_BY(mu) = absl::InfiniteFuture();
  // By kind and cluster name.
  std::map<std::pair<ConsumerKind, std::string>, int64_t> abandoned ABSL_GUARDED_BY(mu);
};

Leaving& State() {
  static Leaving* const state = new Leaving;
  return *state;
}

void Count(const Cluster* cluster, int change) {
  Leaving& state = State();
  absl::MutexLock lock(&state.mu);
  state.total += change;
  if ((state.by_cluster[cluster] += change) == 0) state.by_cluster.erase(cluster);
}

struct Leave {
  LeavingMember leaving;
  absl::Notification done;
};

}  // namespace

std::vector<std::string> LeaveWithin(std::map<std::string, LeavingMember> members,
                                     absl::Duration bound) {
  std::vector<std::pair<std::string, std::shared_ptr<Leave>>> leaves;
  // What each member is counted by when abandoned: its kind and cluster.
  std::map<std::string, std::pair<ConsumerKind, std::string>> counted_as;
  for (auto& [name, leaving] : members) {
    counted_as[name] = {leaving.kind,
                        leaving.cluster == nullptr ? "" : leaving.cluster->name()};
    auto leave = std::make_shared<Leave>();
    leave->leaving = std::move(leaving);
    const Cluster* cluster = leave->leaving.cluster;
    Count(cluster, 1);
    // Detached: an abandoned leave is not waited for, not even at exit.
    std::thread([leave, cluster]() mutable {
      leave->leaving.member.reset();
      leave->leaving.keep_alive.reset();
      // Before Notify: a caller that saw the leave finish sees it counted out.
      Count(cluster, -1);
      leave->done.Notify();
    }).detach();
    leaves.emplace_back(name, std::move(leave));
  }
  const absl::Time deadline = LeaveDeadline(bound);
  std::vector<std::string> abandoned;
  for (const auto& [name, leave] : leaves) {
    if (!leave->done.WaitForNotificationWithDeadline(deadline)) abandoned.push_back(name);
  }
  if (!abandoned.empty()) {
    Leaving& state = State();
    absl::MutexLock lock(&state.mu);
    for (const std::string& name : abandoned) {
      ++state.abandoned[counted_as.at(name)];
    }
  }
  return abandoned;
}

std::string_view KindName(ConsumerKind kind) {
  switch (kind) {
    case ConsumerKind::kGroupMember:
      return "group";
    case ConsumerKind::kMirrorJob:
      return "mirror";
    case ConsumerKind::kControlReader:
      return "control";
    case ConsumerKind::kPartitionScan:
      return "scan";
  }
  return "unknown";
}

int64_t ConsumersAbandoned(ConsumerKind kind, std::string_view cluster) {
  Leaving& state = State();
  absl::MutexLock lock(&state.mu);
  auto it = state.abandoned.find(std::pair<ConsumerKind, std::string>(kind, cluster));
  return it == state.abandoned.end() ? 0 : it->second;
}

void SetLeaveDeadline(absl::Time deadline) {
  Leaving& state = State();
  absl::MutexLock lock(&state.mu);
  state.deadline = deadline;
}

absl::Duration LeaveFloor(absl::Duration bound) {
  return std::min(bound, absl::Seconds(2));
}

absl::Time LeaveDeadline(absl::Duration bound) {
  const absl::Time now = absl::Now();
  Leaving& state = State();
  absl::MutexLock lock(&state.mu);
  return std::min(now + bound, std::max(state.deadline, now + LeaveFloor(bound)));
}

int MembersLeaving() {
  Leaving& state = State();
  absl::MutexLock lock(&state.mu);
  return state.total;
}

int MembersLeaving(const Cluster* cluster) {
  Leaving& state = State();
  absl::MutexLock lock(&state.mu);
  auto it = state.by_cluster.find(cluster);
  return it == state.by_cluster.end() ? 0 : it->second;
}

int ClustersKept() {
  Leaving& state = State();
  absl::MutexLock lock(&state.mu);
  return static_cast<int>(state.kept.size());
}

bool AwaitNoMembersLeaving(absl::Duration timeout) {
  Leaving& state = State();
  absl::MutexLock lock(&state.mu);
  auto none = [&state]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) { return state.total == 0; };
  return state.mu.AwaitWithTimeout(absl::Condition(&none), timeout);
}

std::vector<std::string> CloseClusters(std::vector<std::unique_ptr<Cluster>> clusters) {
  std::vector<std::string> kept;
  for (std::unique_ptr<Cluster>& cluster : clusters) {
    if (!cluster->MembersUseCluster() || MembersLeaving(cluster.get()) == 0) {
      cluster.reset();
      continue;
    }
    spdlog::warn(
        "cluster={}: not closed, a consumer abandoned while leaving still uses it",
        cluster->name());
    kept.push_back(cluster->name());
    Leaving& state = State();
    absl::MutexLock lock(&state.mu);
    state.kept.push_back(std::move(cluster));
  }
  return kept;
}

void CuttableListener::Cut() {
  absl::MutexLock lock(&mu_);
  target_ = nullptr;
}

void CuttableListener::OnAssigned(const std::vector<AssignedPartition>& partitions) {
  absl::ReaderMutexLock lock(&mu_);
  if (target_ != nullptr) target_->OnAssigned(partitions);
}

std::map<TopicPartition, int64_t> CuttableListener::OnRevoked(
    const std::vector<TopicPartition>& partitions) {
  absl::ReaderMutexLock lock(&mu_);
  if (target_ == nullptr) return {};
  return target_->OnRevoked(partitions);
}

void CuttableListener::OnRecords(std::vector<ConsumedRecord> records) {
  absl::ReaderMutexLock lock(&mu_);
  if (target_ != nullptr) target_->OnRecords(std::move(records));
}

void CuttableListener::OnSeekDone(const TopicPartition& partition, int64_t offset) {
  absl::ReaderMutexLock lock(&mu_);
  if (target_ != nullptr) target_->OnSeekDone(partition, offset);
}

void CuttableListener::OnError(const absl::Status& error) {
  absl::ReaderMutexLock lock(&mu_);
  if (target_ != nullptr) target_->OnError(error);
}

void CuttableListener::OnCommitted(const TopicPartition& partition, int64_t offset,
                                   const absl::Status& status) {
  absl::ReaderMutexLock lock(&mu_);
  if (target_ != nullptr) target_->OnCommitted(partition, offset, status);
}

bool LeaveOneWithin(std::unique_ptr<GroupMember> member,
                    std::shared_ptr<CuttableListener> listener, const Cluster* cluster,
                    ConsumerKind kind, absl::Duration bound, const std::string& what) {
  // Held here too: the leaving thread may drop its copy at any time.
  const std::shared_ptr<CuttableListener> cut = listener;
  std::map<std::string, LeavingMember> leaving;
  leaving[what] = {.member = std::move(member),
                   .keep_alive = std::move(listener),
                   .cluster = cluster,
                   .kind = kind};
  const absl::Time start = absl::Now();
  if (LeaveWithin(std::move(leaving), bound).empty()) return true;
  cut->Cut();
  spdlog::error(
      "{}: consumer still closing after {}: abandoned; its broker client stays "
      "allocated until it finishes",
      what, absl::FormatDuration(absl::Now() - start));
  return false;
}

}  // namespace ferry::backend
