#pragma once

// The node's part of a migration for the groups it serves (docs/migration.md,
// "Groups that start during a migration"). The consumer stage moves the
// groups it finds to the target B with their offsets translated; a group it
// did not move (one that first joined after it listed the groups, or whose
// commit on the source A came later) reaches B through a node: it starts
// here on a route that reads B, or follows its route there. Before such a
// group reads B, and where it has nothing committed there, this commits its
// exact start on B (mirror/target_start.h): its commit on A, or its start
// position resolved on A, translated through the migration's mirror.
//
// Applies while the topic's migration (its control record) is at a stage
// whose reads may be on B and the mirror A -> B runs: consumers-paused,
// consumers, producers-held, producers.
//
// Threading: thread-safe. Prepare() blocks (broker requests, the wait for
// the mirror): not for a gRPC callback thread.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/cluster.h"
#include "control/control_record.h"
#include "metrics/registry.h"
#include "subscribe/group_dispatcher.h"

namespace ferry::subscribe {

class MigrationTargets {
 public:
  // The topic's migration record (ControlPlane::Migration); nullopt: none.
  using Lookup =
      std::function<std::optional<control::MigrationState>(const std::string& topic)>;

  // `clusters` and `metrics` must outlive this object; `timeout`: the longest
  // a start waits for the mirror.
  MigrationTargets(std::map<std::string, backend::Cluster*> clusters,
                   metrics::Registry* metrics, absl::Duration timeout);

  // Where migrations are looked up; null: nowhere (none applies). Once this
  // returns, the previous lookup is no longer called.
  void SetLookup(Lookup lookup);
  // Ends the waits in progress and later ones at once (shutdown).
  void Cancel();

  // Whether one of `clusters` is the target of a migration of one of
  // `topics` that applies (see above).
  bool AnyTarget(const std::vector<std::string>& topics,
                 const std::vector<backend::Cluster*>& clusters) const;

  // For each of `topics` whose migration's target is one of `clusters`:
  // commits the group's start there where it has none (nothing when it has,
  // or starts at the target's start). OK when nothing was needed, and when
  // the target refused the commit because the group has members there
  // already (they read from their own position; logged). Otherwise the
  // first failure (DEADLINE_EXCEEDED: the mirror did not copy the position
  // in time), with nothing committed for that topic.
  absl::Status Prepare(const GroupOptions& group, const std::vector<std::string>& topics,
                       const std::vector<backend::Cluster*>& clusters);

 private:
  // The migration of `topic` onto one of `clusters`, if one applies.
  std::optional<control::MigrationState> TargetIn(
      const std::string& topic, const std::vector<backend::Cluster*>& clusters) const;
  absl::Status PrepareTopic(const GroupOptions& group,
                            const control::MigrationState& migration);
  metrics::Counter& Count(std::string_view name, std::string_view help,
                          const std::string& topic);

  const std::map<std::string, backend::Cluster*> clusters_;
  metrics::Registry* const metrics_;
  const absl::Duration timeout_;
  mutable absl::Mutex mu_;
  Lookup lookup_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ferry::subscribe
