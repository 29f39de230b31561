#pragma once

// The node's view of the control topic: it reads every record from the start
// (a standalone reader, see GroupMemberOptions::standalone: it joins no
// consumer group and commits nothing, so each start reads the whole compacted
// history and no start leaves a group or offsets behind on the control
// cluster) and tells the listener about pause changes and
// fresh seek commands; it writes commands issued through this node's Admin
// API, and answers the seeks this node applied. Works on any backend (it uses
// the Cluster interface only).

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "backend/cluster.h"
#include "backend/group_member.h"
#include "backend/member_leave.h"
#include "config/config.h"
#include "control/control_record.h"
#include "control/node_registry.h"
#include "control/seek_ledger.h"

namespace ferry::control {

class ControlListener {
 public:
  virtual ~ControlListener() = default;
  virtual void OnPaused(const std::string& group, bool paused) = 0;
  // Returns the partitions this node moved (it owns them); the issuer of the
  // seek learns them from the answer written to the control topic.
  virtual std::set<backend::TopicPartition> OnSeek(const SeekCommand& seek) = 0;
  // Every record present at start-up was read: the pause state is complete.
  virtual void OnCaughtUp() = 0;
  // The whole route set, once the control topic's routes are known (at
  // catch-up, when it was seeded before) and after each change.
  virtual void OnRoutes(const std::vector<config::RouteConfig>& /*routes*/) {}
  // An operator drained (true) or undrained a cluster; also for each drained
  // cluster while catching up.
  virtual void OnDrained(const std::string& /*cluster*/, bool /*drained*/) {}
  // The whole set of mirror jobs, at catch-up and after each change.
  virtual void OnMirrors(const std::vector<MirrorSpec>& /*jobs*/) {}
  // A group's filter was set (empty: cleared); also for each group filter
  // while catching up.
  virtual void OnGroupFilter(const std::string& /*group*/,
                             const std::string& /*filter*/) {}
  // Publishes to `topic` must queue (held) or flow again; `offset` is the
  // record's. Also for each held topic while catching up.
  virtual void OnWriteHold(const std::string& /*topic*/, bool /*held*/,
                           int64_t /*offset*/) {}
  // The offset of the oldest record whose effect has not settled yet (a
  // hold whose in-flight publishes are still running); the node's heartbeat
  // reports it applied only the records before it. Any thread.
  virtual std::optional<int64_t> OldestUnsettled() const { return std::nullopt; }
  // The whole set of runtime ACL rules, at catch-up and after each change
  // (never a partial history: a grant revoked later is never applied).
  virtual void OnAcls(const std::vector<security::AclRule>& /*rules*/) {}
};

class ControlPlane final : public SeekLedger, private backend::GroupMemberListener {
 public:
  struct Options {
    std::string topic = "__ferry_control";
    std::string node_id = {};
    // How long a seek command stays applicable after it was issued.
    absl::Duration seek_validity = absl::Seconds(30);
    absl::Duration write_timeout = absl::Seconds(15);
    // Written once to a control topic that never held routes (YAML `routes`).
    std::vector<config::RouteConfig> seed_routes = {};
    // What this node's heartbeats (`node/<id>` records) say about it.
    std::string version = {};
    std::string grpc_address = {};
    std::string http_address = {};
    absl::Time started = absl::UnixEpoch();
    absl::Duration heartbeat_interval = absl::Seconds(5);
    // A node unheard for longer is departed: listed as lost, and no barrier
    // waits for it.
    absl::Duration node_timeout = absl::Seconds(20);
    // Bounds each look at the control topic while starting, so a node told
    // to stop meanwhile is not held by a stalled cluster for the admin
    // timeout (the server passes cluster_probe.timeout).
    absl::Duration start_call_timeout = absl::Seconds(3);
    // How long closing the control topic's reader may take; a reader still
    // closing then is abandoned (backend/member_leave.h), so a stuck broker
    // client cannot hold up the rest of the node's shutdown (groups leave
    // after this).
    absl::Duration leave_timeout = absl::Seconds(10);
  };

  // Starts in the background: creates the control topic if missing
  // (compacted, one partition) and starts reading, retrying while the control
  // cluster is unreachable. `cluster` and `listener` must outlive this.
  ControlPlane(backend::Cluster* cluster, Options options, ControlListener* listener);
  // Writes this node's departure record (waiting up to 2 s for it) and
  // closes the reader (at most Options::leave_timeout).
  ~ControlPlane() override;
  // Starts nothing more: a start in progress (the control topic's check or
  // creation) ends after its cluster call in progress, a start that ended
  // is unaffected (reading, writing and heartbeats go on); returns at once.
  // Shutdown calls it when draining begins, so that call runs during the
  // grace.
  void CutStart();
  // CutStart, stops the heartbeats, and returns once the start ended;
  // shutdown calls it before the leaves' deadline is set, so a start still
  // in its call does not use up their window.
  void EndStart();

  // Write a command and wait until the control cluster acknowledged it
  // (UNAVAILABLE / DEADLINE_EXCEEDED otherwise). Blocking.
  absl::Status SetPaused(const std::string& group, bool paused);
  // Sets (empty: clears) the filter every node applies to the group; returns
  // once this node applied it.
  absl::Status SetGroupFilter(const std::string& group, const std::string& filter);
  // Route and drain changes return once this node applied them too (it read
  // its own write back), so a following read on this node sees them.
  absl::Status PutRoute(const config::RouteConfig& route);
  absl::Status DeleteRoute(const std::string& topic);
  absl::Status SetDrained(const std::string& cluster, bool drained);
  absl::Status StartMirror(const MirrorSpec& spec);
  absl::Status StopMirror(const std::string& name);
  // Replaces the SDK settings pushed to clients; returns once this node
  // applied them.
  absl::Status SetClientSettings(const config::ClientSettings& settings);
  // Issues a seek of the group's partitions on `cluster` and waits up to
  // `wait` for the nodes owning them to apply it; returns the partitions moved
  // meanwhile (a partition that was changing owners, or whose owner was
  // leaving, may be missing).
  absl::StatusOr<std::set<backend::TopicPartition>> Seek(
      const std::string& group, const std::string& cluster,
      const std::map<backend::TopicPartition, int64_t>& offsets, absl::Duration wait);

  // Writes a command (a pause, a write hold, ...) without waiting to apply
  // it; returns its offset, for AwaitApplied.
  absl::StatusOr<int64_t> Issue(const ControlCommand& command);
  // The barrier: returns once every live node reported (in its heartbeat)
  // that it applied the control record at `offset` and its effects settled.
  // A node that stops heartbeating drops out after `node_timeout`.
  // DEADLINE_EXCEEDED naming the nodes still behind after `timeout`.
  absl::Status AwaitApplied(int64_t offset, absl::Duration timeout);
  // Records a migration's state, stamping `state` with the time (updated_ms
  // always, started_ms when unset); returns once this node applied it.
  absl::Status PutMigration(MigrationState& state);
  std::optional<MigrationState> Migration(const std::string& topic) const;
  // Every recorded migration (done ones too), by topic.
  std::vector<MigrationState> Migrations() const;
  // Nodes heard from: live ones, then recently departed ones.
  std::vector<NodeRegistry::Node> Nodes() const;
  // Asks for a heartbeat now (a listener's effect settled).
  void BeatSoon();

  std::optional<Unapplied> UnappliedSeek(
      const std::string& group, const std::string& cluster,
      const backend::TopicPartition& partition) const override;
  void ConfirmSeek(const std::string& group, const std::string& seek_id,
                   std::set<backend::TopicPartition> partitions) override;

  bool IsPaused(const std::string& group) const;
  bool caught_up() const;
  // The control topic's routes; nullopt until it is known to hold them
  // (caught up and seeded), when the node still routes by its YAML.
  std::optional<std::vector<config::RouteConfig>> Routes() const;
  std::set<std::string> Drained() const;
  // The group's filter; empty when none.
  std::string GroupFilter(const std::string& group) const;
  std::vector<MirrorSpec> Mirrors() const;
  // The pushed SDK settings; nullopt until an operator set them at runtime.
  std::optional<config::ClientSettings> PushedClientSettings() const;

  // Writes ACL grants (and revocations) one record each; returns once this
  // node applied them. A failure part-way leaves the earlier ones written:
  // each is idempotent, so the caller may repeat the whole call.
  absl::Status PutAclGrants(const std::vector<AclGrant>& grants);
  // The runtime grants as this node read them.
  AclGrants RuntimeAcls() const;

 private:
  void Run();
  bool StartCut() const ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status EnsureTopic();
  // Writes a heartbeat every heartbeat_interval, or sooner when one is due.
  void Heartbeat();
  NodeBeat OwnBeat(bool left) const ABSL_LOCKS_EXCLUDED(mu_);
  // The offset the record was written at.
  absl::StatusOr<int64_t> Write(const ControlCommand& command);
  absl::StatusOr<int64_t> Write(const ControlCommand& command, absl::Duration timeout);
  // Fire and forget (failures are logged): for the reading thread, which
  // must not wait for its own writes.
  void WriteAsync(const ControlCommand& command, std::string what);
  // Writes and waits until the reader passed the record.
  absl::Status WriteAndApply(const ControlCommand& command);
  // A route put or deleted, or (nullopt) the marker that routes were seeded.
  void OnRouteRecord(const std::optional<RouteChange>& change) ABSL_LOCKS_EXCLUDED(mu_);
  void OnDrainRecord(const DrainCommand& drain) ABSL_LOCKS_EXCLUDED(mu_);
  void OnMirrorRecord(const MirrorChange& change) ABSL_LOCKS_EXCLUDED(mu_);
  void OnAclRecord(const AclGrant& grant) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<MirrorSpec> MirrorList() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // At catch-up: writes the seed routes if the topic was never seeded, else
  // hands the listener the topic's routes.
  void SeedOrPublishRoutes() ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<config::RouteConfig> RouteList() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnSeekRecord(const SeekCommand& seek, int64_t now_ms);
  void OnSeekAppliedRecord(const SeekApplied& applied);

  void OnAssigned(const std::vector<backend::AssignedPartition>& partitions) override;
  std::map<backend::TopicPartition, int64_t> OnRevoked(
      const std::vector<backend::TopicPartition>&) override {
    return {};
  }
  void OnRecords(std::vector<backend::ConsumedRecord> records) override;
  void OnSeekDone(const backend::TopicPartition&, int64_t) override {}
  void OnError(const absl::Status& error) override;
  void MarkCaughtUp() ABSL_LOCKS_EXCLUDED(mu_);

  backend::Cluster* const cluster_;
  const Options options_;
  ControlListener* const listener_;
  // What member_ calls: this, until cut (an abandoned reader may call back
  // after this is gone).
  const std::shared_ptr<backend::CuttableListener> member_listener_;
  std::unique_ptr<backend::GroupMember> member_;
  std::thread starter_;
  std::thread heartbeat_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Set by CutStart (and EndStart): the starter makes no further cluster call.
  bool start_cut_ ABSL_GUARDED_BY(mu_) = false;
  std::set<std::string> paused_ ABSL_GUARDED_BY(mu_);
  // High watermark of the control topic when reading started; caught up
  // once every record below it was read.
  int64_t start_end_ ABSL_GUARDED_BY(mu_) = -1;
  bool caught_up_ ABSL_GUARDED_BY(mu_) = false;
  // Offset of the next record to read.
  int64_t read_next_ ABSL_GUARDED_BY(mu_) = 0;
  // The last record other than a heartbeat that this node applied (-1: none):
  // heartbeats report it, so they change only when something else did.
  int64_t last_command_ ABSL_GUARDED_BY(mu_) = -1;
  bool topic_ready_ ABSL_GUARDED_BY(mu_) = false;
  bool beat_due_ ABSL_GUARDED_BY(mu_) = false;
  NodeRegistry nodes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, MigrationState> migrations_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, config::RouteConfig> routes_ ABSL_GUARDED_BY(mu_);
  bool routes_seeded_ ABSL_GUARDED_BY(mu_) = false;
  std::set<std::string> drained_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> group_filters_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, MirrorSpec> mirrors_ ABSL_GUARDED_BY(mu_);
  std::optional<config::ClientSettings> client_settings_ ABSL_GUARDED_BY(mu_);
  AclGrants acl_grants_ ABSL_GUARDED_BY(mu_);
  // Per group and cluster ("": every cluster), its latest seek command and
  // the partitions nodes said they moved for it; dropped once the command
  // expired.
  struct SeekProgress {
    SeekCommand command;
    std::set<backend::TopicPartition> applied;
  };
  std::map<std::pair<std::string, std::string>, SeekProgress> latest_seeks_
      ABSL_GUARDED_BY(mu_);
  // Seeks issued by this node and still awaited: id -> partitions applied.
  std::map<std::string, std::set<backend::TopicPartition>> awaited_seeks_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::control
