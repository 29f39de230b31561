#pragma once

// The migration playbook (docs/migration.md): moves a live topic T from
// cluster A to cluster B in stages an operator runs one after the other.
// The state lives in the control record `migration/<T>`, written after each
// step, so every stage is idempotent and any node can run it again after a
// crash.
//
//   start      mirroring         mirror A->B runs (B gets A's partition count)
//   consumers  consumers-paused  groups paused; then offsets translated A->B,
//              consumers         committed on B, reads routed to B, resumed
//   producers  producers-held    writes held on every node; once the mirror
//              producers         copied A's end, writes routed to B, released
//   finish     finished          mirror drained and stopped
//   rollback   rollback-paused   (from mirroring or a consumer stage) groups
//              rolled-back       paused; when they read B, their offsets
//                                translated back to A exactly and committed
//                                there; reads routed to A, mirror stopped,
//                                groups resumed
//   rollback   rollback-held     (from producers) mirror A->B stopped, mirror
//              rolled-back       B->A (skipping A's records) started; writes
//                                held, groups paused; once B->A copied B's
//                                end, offsets translated back and committed
//                                on A, writes and reads routed to A,
//                                released, resumed, mirror B->A stopped
//
// Blocking (broker requests, barriers, waiting for the mirror): for the
// Admin service's sync threads.

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "admin/mirror_operations.h"
#include "backend/cluster.h"
#include "control/control_plane.h"
#include "ferry/v1/admin.pb.h"
#include "mirror/mirror_job.h"
#include "mirror/offset_translator.h"
#include "routing/route_table.h"

namespace ferry::admin {

class MigrationOperations {
 public:
  struct Options {
    // Longest a barrier waits for every live node.
    absl::Duration barrier_timeout = absl::Seconds(20);
    // Longest a stage waits for the mirror to copy what it needs.
    absl::Duration mirror_timeout = absl::Seconds(90);
    // How long a paused group's committed offsets must stay unchanged
    // before they count as settled (acks of delivered messages committed).
    absl::Duration settle = absl::Seconds(1);
    // The nodes' migration.max_write_hold: work inside a write hold ends
    // before the nodes release it themselves.
    absl::Duration max_write_hold = absl::Seconds(30);
    // Longest one offset translation attempt takes (its offset and metadata
    // requests and its partition scans); inside a write hold, at most what
    // is left of the hold.
    absl::Duration translate_timeout = absl::Seconds(30);
    // True once the node stops: waits inside a stage end (CANCELLED).
    std::function<bool()> stopping = {};
  };

  // Everything must outlive this object; `control` may be null (no cluster
  // configured): every call answers FAILED_PRECONDITION.
  MigrationOperations(std::map<std::string, backend::Cluster*> clusters,
                      const routing::RouteTable* routes, control::ControlPlane* control,
                      MirrorOperations* mirrors, Options options);

  absl::StatusOr<v1::Migration> Start(const std::string& topic, const std::string& from,
                                      const std::string& to);
  absl::StatusOr<v1::Migration> Advance(const std::string& topic,
                                        const std::string& stage);
  absl::StatusOr<v1::Migration> Rollback(const std::string& topic);
  absl::StatusOr<v1::Migration> Get(const std::string& topic) const;
  // Every recorded migration by topic, done ones included, or only those at
  // `stage` when it is not empty (INVALID_ARGUMENT for an unknown stage).
  absl::StatusOr<std::vector<v1::Migration>> List(const std::string& stage) const;

 private:
  // A call's progress: the steps it ran, with durations, for the answer.
  class Steps;

  absl::StatusOr<control::MigrationState> Find(const std::string& topic) const;
  absl::Status RequireStage(const control::MigrationState& state,
                            const std::vector<std::string>& allowed,
                            const std::string& command) const;
  absl::StatusOr<v1::Migration> Consumers(control::MigrationState state, Steps& steps);
  absl::StatusOr<v1::Migration> Producers(control::MigrationState state, Steps& steps);
  absl::StatusOr<v1::Migration> Finish(control::MigrationState state, Steps& steps);
  // Rollback before writes moved, and after (writes on B).
  absl::Status RollbackReads(control::MigrationState& state, Steps& steps);
  absl::Status RollbackWrites(control::MigrationState& state, Steps& steps);
  // Stops a mirror job; one that does not run counts as stopped.
  absl::Status StopMirror(const std::string& name);

  // Groups with committed offsets for `topic` on `cluster` (mirror jobs'
  // and Ferry's own groups left out).
  absl::StatusOr<std::vector<std::string>> GroupsOf(backend::Cluster& cluster,
                                                    const std::string& topic) const;
  // Lists the groups again once the listed ones are paused and settled: a
  // group that subscribed meanwhile (Ferry's member commits its start
  // position at assignment) is added to the state, paused and settled too.
  absl::Status AddLateGroups(control::MigrationState& state, Steps& steps);
  // Pauses (or resumes) the groups on every node and waits for the barrier.
  absl::Status SetPaused(const std::vector<std::string>& groups, bool paused);
  // Waits until the groups' committed offsets on `cluster` stop changing.
  absl::Status Settle(backend::Cluster& cluster, const std::string& topic,
                      const std::vector<std::string>& groups);
  // Per group: a translation made before the final one.
  using EarlierForwards = std::map<std::string, std::vector<mirror::Translation>>;
  // Translates each group up to its current offsets on A while it still
  // reads there; a group that fails is left out (logged).
  EarlierForwards TranslateForwardEarly(const control::MigrationState& state,
                                        Steps& steps);
  // Commits on B, per group, the exact translation of its offsets on A,
  // continuing `earlier`'s (TranslateForwardEarly); sets state.cutover.
  absl::Status MoveOffsetsForward(control::MigrationState& state,
                                  const EarlierForwards& earlier, Steps& steps);
  // Per group: a translation back made before the final one.
  using EarlierReturns = std::map<std::string, std::vector<mirror::ReturnPosition>>;
  // The forward job's spec, from the state: the job may be stopped already.
  control::MirrorSpec ForwardSpec(const control::MigrationState& state) const;
  mirror::ReturnHints ReturnHintsFor(const control::MigrationState& state,
                                     const EarlierReturns& earlier,
                                     const std::string& group) const;
  // Translates each group back up to its current offsets on B while it
  // still reads there; a group that fails is left out (logged).
  EarlierReturns TranslateBackEarly(const control::MigrationState& state,
                                    bool copied_back, Steps& steps);
  // Commits on A, per group, where it resumes there after reading B;
  // `copied_back`: B's own records were copied to A (RollbackWrites);
  // `earlier`: TranslateBackEarly's answers, continued from.
  // Retries, and each attempt's reads, end by `hold_bound` (inside a write
  // hold: its start + max_write_hold less the time to release it, min(5 s,
  // half the hold); InfiniteFuture outside one), DEADLINE_EXCEEDED saying
  // so, with the last attempt's cause; an attempt's offset and metadata
  // requests end there too. The commit on A after a translation is bounded
  // by the admin timeout only (a write cut short could still land). A
  // failure's status ends with `then` (what to do, the groups' state).
  absl::Status MoveOffsetsBack(const control::MigrationState& state, bool copied_back,
                               const EarlierReturns& earlier, absl::Time hold_bound,
                               std::string_view then, Steps& steps);
  bool Stopping() const;
  // Waits until `mirror` committed every record below `ends` per partition;
  // on timeout the status says what was waited for and `then`.
  absl::Status AwaitMirrored(const std::string& mirror, const std::string& cluster,
                             const std::map<int32_t, int64_t>& ends,
                             const std::string& then);
  // Per partition of `topic` on `cluster`: its high watermark.
  absl::StatusOr<std::map<int32_t, int64_t>> Ends(const std::string& cluster,
                                                  const std::string& topic);
  // Routes `topic`'s reads (and, when set, writes) to `cluster`.
  absl::Status RouteTo(const std::string& topic, const std::vector<std::string>& write,
                       const std::string& read);
  absl::StatusOr<int64_t> Issue(const control::ControlCommand& command);
  v1::Migration ToProto(const control::MigrationState& state) const;

  const std::map<std::string, backend::Cluster*> clusters_;
  const routing::RouteTable* const routes_;
  control::ControlPlane* const control_;
  MirrorOperations* const mirrors_;
  const Options options_;
};

using mirror::MigrationMirrorName;
// The mirror job B->A of a rollback from the producer stage.
std::string RollbackMirrorName(const std::string& topic);

}  // namespace ferry::admin
