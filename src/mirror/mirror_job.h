#pragma once

// One mirror job on one node: a member of the job's consumer group on the
// source cluster, copying the records of the partitions it owns to the same
// partition of the same topic on the target, and committing a source offset
// only once the target acknowledged every record below it. Nodes running the
// same job share its partitions through the group, so a dead node's
// partitions move to another node and continue from the commit: no gap, no
// reordering (see PartitionCopier), duplicates only from the uncommitted
// window.
//
// Each copied record keeps key, value, headers (ferry.id included) and
// timestamp, and gains the header ferry.origin = "<cluster>/<topic>/
// <partition>/<offset>" of its source record (replacing one it had).
// With MirrorSpec::skip_origin set, records that already carry a ferry.origin
// naming that cluster are not copied (committed as if they were).

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/cluster.h"
#include "backend/group_member.h"
#include "backend/member_leave.h"
#include "control/control_record.h"
#include "metrics/registry.h"
#include "mirror/origin.h"
#include "mirror/partition_copier.h"

namespace ferry::mirror {

// The consumer group of a job on its source cluster.
std::string MirrorGroup(const std::string& job);

// The mirror job a migration of `topic` runs (docs/migration.md), and its
// spec: the migration's topic from its source to its target cluster.
std::string MigrationMirrorName(const std::string& topic);
control::MirrorSpec MigrationMirror(const control::MigrationState& migration);

// Partition for partition needs the target topic to have at least the
// source's partitions: FAILED_PRECONDITION naming both counts otherwise.
absl::Status CheckTargetPartitions(const std::string& topic,
                                   const backend::TopicInfo& source_info,
                                   const std::string& source,
                                   const backend::TopicInfo& target_info,
                                   const std::string& target);

class MirrorJob final : private backend::GroupMemberListener {
 public:
  struct Options {
    std::string node_id = {};
    // How often acknowledged progress is committed on the source (and
    // rewinds and flow control are applied).
    absl::Duration tick = absl::Milliseconds(200);
    absl::Duration commit_interval = absl::Seconds(1);
    // Per partition: fetching pauses above this many records in flight and
    // resumes below half of it.
    int64_t max_in_flight = 20000;
    // Per job: bytes (key, value, headers) of records read but not yet
    // answered by the target. Above it every partition pauses, below half of
    // it they resume. Half of it, shared by the job's partitions, is what
    // the source consumer may prefetch per partition (256 KiB to 8 MiB), so
    // the job's memory stays near this bound whatever the record size.
    int64_t max_in_flight_bytes = 32 << 20;
    // How long a revoked partition waits for its in-flight records before
    // its acknowledged prefix is committed. When the job stops, at most half
    // of what is left of the leave's bound (the other half for the commit
    // and the close), so the stop takes leave_timeout, not this plus it.
    absl::Duration revoke_wait = absl::Seconds(10);
    // How long leaving the job's group may take when the job stops (less
    // when a shutdown's deadline comes first: backend::LeaveDeadline); a
    // member still leaving then is abandoned (backend/member_leave.h), so a
    // stuck broker client holds up neither the runner's other jobs nor
    // shutdown.
    absl::Duration leave_timeout = absl::Seconds(10);
  };

  // Checks the topics (on the source; on the target created with the
  // source's partition count when missing, FAILED_PRECONDITION when it has
  // fewer) and joins the job's group. Blocking (metadata requests). The
  // clusters must outlive the job. CANCELLED once `stopping` (if set)
  // returns true, which is asked before each cluster call.
  static absl::StatusOr<std::unique_ptr<MirrorJob>> Start(
      control::MirrorSpec spec, backend::Cluster* source, backend::Cluster* target,
      Options options, metrics::Registry* metrics,
      const std::function<bool()>& stopping = {});
  // Leaves the group, committing the acknowledged prefix of each partition
  // (at most Options::leave_timeout).
  ~MirrorJob() override;

  const control::MirrorSpec& spec() const { return spec_; }

 private:
  struct Shared;
  MirrorJob(control::MirrorSpec spec, backend::Cluster* source, backend::Cluster* target,
            Options options, metrics::Registry* metrics);

  void Tick();

  void OnAssigned(const std::vector<backend::AssignedPartition>& partitions) override;
  std::map<backend::TopicPartition, int64_t> OnRevoked(
      const std::vector<backend::TopicPartition>& partitions) override;
  void OnRecords(std::vector<backend::ConsumedRecord> records) override;
  void OnSeekDone(const backend::TopicPartition& partition, int64_t offset) override;
  void OnError(const absl::Status& error) override;

  const control::MirrorSpec spec_;
  backend::Cluster* const source_;
  backend::Cluster* const target_;
  const Options options_;
  // Publish callbacks keep this alive: a record the target answers after
  // the job stopped finds its state still there.
  std::shared_ptr<Shared> shared_;
  // What member_ calls: this, until cut (an abandoned member may call back
  // after this is gone).
  const std::shared_ptr<backend::CuttableListener> member_listener_;
  std::unique_ptr<backend::GroupMember> member_;
  std::thread ticker_;
};

}  // namespace ferry::mirror
