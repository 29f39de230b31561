#pragma once

// Leaving a consumer group (or closing a standalone reader) destroys the
// member, which blocks (a final commit, closing the broker consumer) and may
// block for good: librdkafka 2.0.2's rd_kafka_destroy waits forever for a
// broker thread that still holds a reference (seen after a topic was deleted
// under a group). So each member is destroyed on a thread of its own and the
// caller waits a bounded time: one member stuck leaving must not keep other
// groups from leaving, an admin call from answering, nor shutdown from
// finishing. A member still leaving at the bound is abandoned: its thread
// goes on and frees it if it ever finishes (until then its broker client
// stays allocated: a bounded leak per incident).
//
// What an abandoned member's thread still touches: the member itself, what
// LeavingMember::keep_alive holds (its listener, a CuttableListener cut by
// then), the process-wide logger, librdkafka's own state and, for the
// embedded and fake backends, its cluster (the store, the group
// coordinator). A Kafka member keeps nothing of its cluster after joining
// (Cluster::MembersUseCluster). So the owner of the clusters closes them
// with CloseClusters, and the process exits without destructors (_exit)
// while MembersLeaving() > 0 or a cluster was kept (ClustersKept()).
//
// Threading: thread-safe.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/cluster.h"
#include "backend/group_member.h"

namespace ferry::backend {

// What a leaving consumer is (ferry_consumers_abandoned_total{kind}).
enum class ConsumerKind { kGroupMember, kMirrorJob, kControlReader, kPartitionScan };
inline constexpr ConsumerKind kConsumerKinds[] = {
    ConsumerKind::kGroupMember, ConsumerKind::kMirrorJob, ConsumerKind::kControlReader,
    ConsumerKind::kPartitionScan};
// "group", "mirror", "control", "scan".
std::string_view KindName(ConsumerKind kind);

struct LeavingMember {
  std::unique_ptr<GroupMember> member;
  // What the member uses and must outlive it (its listener): released on
  // the leaving thread, after the member.
  std::shared_ptr<void> keep_alive;
  // Where the member was joined: CloseClusters keeps it while the member
  // leaves.
  const Cluster* cluster = nullptr;
  ConsumerKind kind = ConsumerKind::kGroupMember;
};

// Destroys `members` (by name: a cluster, a job) in parallel and waits for
// them until LeaveDeadline(bound); returns the names of those still leaving
// then (abandoned).
std::vector<std::string> LeaveWithin(std::map<std::string, LeavingMember> members,
                                     absl::Duration bound);

// Shutdown stops the control plane's reader, then the mirror jobs, then
// the groups, each waiting for its leave: with one deadline for all of
// them, set before the first, the whole shutdown waits one leave bound
// (plus a floor per later step) however many steps hit theirs.
// absl::InfiniteFuture() lifts it.
void SetLeaveDeadline(absl::Time deadline);
// The least a leave with `bound` gets even past the deadline set: an
// earlier step that used up the window must not cut healthy members at
// once. min(bound, 2 s).
absl::Duration LeaveFloor(absl::Duration bound);
// When a leave starting now with `bound` gives up: now + `bound`, or the
// deadline set if earlier, but not before now + LeaveFloor(bound).
absl::Time LeaveDeadline(absl::Duration bound);

// Consumers of `kind` joined on the cluster named `cluster` that LeaveWithin
// abandoned since the process started (process-wide: one count per event,
// whoever exports it).
int64_t ConsumersAbandoned(ConsumerKind kind, std::string_view cluster);

// Members being destroyed now, abandoned ones included: tests wait for 0
// before destroying what a member uses (a fake cluster).
int MembersLeaving();
// Those joined on `cluster`.
int MembersLeaving(const Cluster* cluster);
// Waits until no member is leaving; false after `timeout` (tests).
bool AwaitNoMembersLeaving(absl::Duration timeout);

// Destroys `clusters`, except those a member still leaves: those are kept
// for the rest of the process (a cluster destroyed later, on the member's
// thread, would fail its pending publishes into components already gone).
// Call once nothing joins them anymore. Returns the names of those kept.
// Clusters whose members do not use them (Cluster::MembersUseCluster) are
// destroyed all the same: a kept cluster's own threads would run on.
std::vector<std::string> CloseClusters(std::vector<std::unique_ptr<Cluster>> clusters);
// Clusters CloseClusters kept, in this process: their threads may still run,
// so the process must end without destructors (_exit).
int ClustersKept();

// Passes a member's events on to `target` until Cut(), then drops them (a
// revoke then commits nothing: the next owner reads again from the last
// commit). Give a member this, shared, instead of `target` itself when it
// may be abandoned while leaving (LeavingMember::keep_alive): it may call
// back after `target` is gone.
class CuttableListener final : public GroupMemberListener {
 public:
  explicit CuttableListener(GroupMemberListener* target) : target_(target) {}

  // From now on events are dropped. Once Cut() returned, no event is being
  // passed to `target` nor ever will be: `target` may be destroyed. Waits
  // for an event being handled, so not from inside one (it would wait for
  // itself). Idempotent; any thread.
  //
  // Who may still call in: the member, on its own threads, until it is
  // destroyed (an abandoned member whenever it gets unstuck, maybe after
  // the owner is gone: it holds this listener through
  // LeavingMember::keep_alive). Those calls return at once; OnRevoked
  // returns no offsets, so nothing is committed.
  void Cut();

  void OnAssigned(const std::vector<AssignedPartition>& partitions) override;
  std::map<TopicPartition, int64_t> OnRevoked(
      const std::vector<TopicPartition>& partitions) override;
  void OnRecords(std::vector<ConsumedRecord> records) override;
  void OnSeekDone(const TopicPartition& partition, int64_t offset) override;
  void OnError(const absl::Status& error) override;
  void OnCommitted(const TopicPartition& partition, int64_t offset,
                   const absl::Status& status) override;

 private:
  // Held shared by each event, exclusively by Cut(), so the shared hold
  // spans the whole of `target`'s callback, whatever it does (a backend
  // publish, a gRPC write and what completes inline in them). Hence no
  // callback, nor anything it runs inline, may call Cut() on this listener:
  // it would wait for itself (and Abseil's writer priority would then block
  // every other event too). Nothing does today: Cut() is called only by the
  // owner, after LeaveWithin returned.
  absl::Mutex mu_;
  GroupMemberListener* target_ ABSL_GUARDED_BY(mu_);  // null once cut
};

// One member listening through `listener`: leaves it within `bound`
// (LeaveWithin) and, when abandoned, cuts `listener` and logs an error
// naming `what`. True when it left in time.
bool LeaveOneWithin(std::unique_ptr<GroupMember> member,
                    std::shared_ptr<CuttableListener> listener, const Cluster* cluster,
                    ConsumerKind kind, absl::Duration bound, const std::string& what);

}  // namespace ferry::backend
