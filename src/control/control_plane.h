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

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "backend/cluster.h"
#include "backend/group_member.h"
#include "control/control_record.h"
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
};

class ControlPlane final : public SeekLedger, private backend::GroupMemberListener {
 public:
  struct Options {
    std::string topic = "__ferry_control";
    std::string node_id = {};
    // How long a seek command stays applicable after it was issued.
    absl::Duration seek_validity = absl::Seconds(30);
    absl::Duration write_timeout = absl::Seconds(15);
  };

  // Starts in the background: creates the control topic if missing
  // (compacted, one partition) and starts reading, retrying while the control
  // cluster is unreachable. `cluster` and `listener` must outlive this.
  ControlPlane(backend::Cluster* cluster, Options options, ControlListener* listener);
  ~ControlPlane() override;

  // Write a command and wait until the control cluster acknowledged it
  // (UNAVAILABLE / DEADLINE_EXCEEDED otherwise). Blocking.
  absl::Status SetPaused(const std::string& group, bool paused);
  // Issues a seek of the group's partitions on `cluster` and waits up to
  // `wait` for the nodes owning them to apply it; returns the partitions moved
  // meanwhile (a partition that was changing owners, or whose owner was
  // leaving, may be missing).
  absl::StatusOr<std::set<backend::TopicPartition>> Seek(
      const std::string& group, const std::string& cluster,
      const std::map<backend::TopicPartition, int64_t>& offsets, absl::Duration wait);

  std::optional<Unapplied> UnappliedSeek(
      const std::string& group, const std::string& cluster,
      const backend::TopicPartition& partition) const override;
  void ConfirmSeek(const std::string& group, const std::string& seek_id,
                   std::set<backend::TopicPartition> partitions) override;

  bool IsPaused(const std::string& group) const;
  bool caught_up() const;

 private:
  void Run();
  absl::Status EnsureTopic();
  absl::Status Write(const ControlCommand& command);
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
  std::unique_ptr<backend::GroupMember> member_;
  std::thread starter_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::set<std::string> paused_ ABSL_GUARDED_BY(mu_);
  // High watermark of the control topic when reading started; caught up
  // once every record below it was read.
  int64_t start_end_ ABSL_GUARDED_BY(mu_) = -1;
  bool caught_up_ ABSL_GUARDED_BY(mu_) = false;
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
