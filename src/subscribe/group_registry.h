#pragma once

// The consumer groups this node serves: creates a group's dispatcher (and so
// its broker group member) when the first stream of the group opens, ticks
// each dispatcher when it asked to be (deadlines, delays, commits: a
// TickSchedule, so idle groups cost nothing per tick) and leaves a group once
// it has had no stream for subscribe.group_idle_timeout. Leaving blocks (a
// synchronous commit, closing the broker consumer), so it runs on threads
// of its own: the ticker keeps every other group's deadlines and commits
// going meanwhile, and groups leave concurrently, each for at most
// subscribe.leave_timeout (GroupDispatcher::Stop), so one whose leave hangs
// holds up no other. A group's metric series go with it (group names come from
// clients; the registry's per-family bound caps the rest).

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "backend/cluster.h"
#include "common/blocking_task_runner.h"
#include "config/config.h"
#include "control/control_plane.h"
#include "ferry/v1/subscriber.pb.h"
#include "filter/filter.h"
#include "metrics/registry.h"
#include "routing/route_table.h"
#include "subscribe/group_dispatcher.h"
#include "subscribe/migration_targets.h"
#include "subscribe/tick_schedule.h"

namespace ferry::subscribe {

// `text` parsed as a filter; INVALID_ARGUMENT "<field>: column N: ..." when it
// is not one.
absl::StatusOr<filter::Filter> ParseFilter(std::string_view text, std::string_view field);

// A validated SubscriptionOpen.
struct OpenRequest {
  GroupOptions group;
  StreamOptions stream;
  // The route's read list: the group consumes all of them at once.
  std::vector<backend::Cluster*> clusters;
};

// Also the control plane's listener: pause state and seeks issued on any node
// reach this node's dispatchers through it, and route changes move the groups
// open here to their topics' new read lists (GroupDispatcher::SetClusters),
// on a thread of the registry's own: joining and leaving block, and the
// control plane's thread must go on reading.
class GroupRegistry final : public control::ControlListener {
 public:
  GroupRegistry(std::string node_id, const config::SubscribeConfig& config,
                const routing::RouteTable* routes,
                std::map<std::string, backend::Cluster*> clusters,
                metrics::Registry* metrics);
  // Leaves every group (commits acked prefixes).
  ~GroupRegistry() override;

  // Checks an open message: INVALID_ARGUMENT naming the field, NOT_FOUND
  // naming the cluster for a topic or dead-letter topic missing on a read
  // cluster (INVALID_ARGUMENT "open.filter: column N: ..." for a filter that
  // does not parse). A read cluster that the probe found
  // down or that does not answer is not checked (and not waited for again
  // for the other topics) as long
  // as another one answers: the group still joins it, and its member starts
  // delivering when it comes back; only when no read cluster answers does
  // the open fail (UNAVAILABLE). Blocking (topic metadata): not for a gRPC
  // callback thread.
  absl::StatusOr<OpenRequest> Validate(const v1::SubscriptionOpen& open);

  // Attaches a stream to its group's dispatcher, creating (joining) the group
  // on this node if needed. FAILED_PRECONDITION when the group is already
  // consumed here with another ordering mode.
  absl::StatusOr<std::shared_ptr<GroupDispatcher>> Attach(
      const OpenRequest& request, StreamId stream, std::shared_ptr<StreamSink> sink);

  StreamId NextStreamId() { return next_stream_id_++; }

  // Where groups learn of seeks they missed while partitions changed owners;
  // null before the control plane is destroyed.
  void SetSeekLedger(control::SeekLedger* seeks);
  // Where groups that reach a migration's target learn of the migration
  // (MigrationTargets); null before the control plane is destroyed.
  void SetMigrationLookup(MigrationTargets::Lookup lookup);

  std::shared_ptr<GroupDispatcher> Find(const std::string& group) const;
  std::vector<std::string> Groups() const;

  // control::ControlListener. Until OnCaughtUp(), groups are held paused:
  // their pause state is not known yet.
  void OnPaused(const std::string& group, bool paused) override;
  // Applies to the group's dispatcher now and to one created later.
  void OnGroupFilter(const std::string& group, const std::string& filter) override;
  std::set<backend::TopicPartition> OnSeek(const control::SeekCommand& seek) override;
  void OnCaughtUp() override;
  // Reads the node's RouteTable (already swapped), not `routes`.
  void OnRoutes(const std::vector<config::RouteConfig>& routes) override;

 private:
  static constexpr int kLeaverThreads = 4;

  void TickLoop();
  // Moves each group whose read list changed to the current one.
  void FollowRoutes();
  // Moves `dispatcher` from `current` to `wanted`. When a cluster added is a
  // migration's target, the group leaves what it reads first (its commits
  // there final), gets its start on the target, then joins; if that fails
  // it reads `current` again and tries once more after the other groups.
  void FollowRoute(GroupDispatcher& dispatcher,
                   const std::vector<backend::Cluster*>& current,
                   const std::vector<backend::Cluster*>& wanted);
  // Before a group new on this node starts on `request.clusters`: its start
  // on a migration's target among them; UNAVAILABLE (retry) when it cannot
  // be had yet.
  absl::Status StartOnMigrationTargets(const OpenRequest& request);
  // On route_follower_: resumes `group` unless a pause came meanwhile.
  void ResumeUnlessPaused(const std::string& group);
  // Where `dispatcher`'s topics are read now; nullopt (logged) when they are
  // read from different clusters or no longer routed, and the group keeps
  // what it reads.
  std::optional<std::vector<backend::Cluster*>> CurrentReadClusters(
      const GroupDispatcher& dispatcher) const;
  // NOT_FOUND with what to do when dead-lettering is on and the topic it
  // writes to does not exist on `cluster`.
  absl::Status CheckDeadLetterTopic(const OpenRequest& request, backend::Cluster& cluster,
                                    const std::string& topic) const;
  // The route's read clusters of `topic`.
  absl::StatusOr<std::vector<backend::Cluster*>> ReadClusters(
      const std::string& topic) const;

  const std::string node_id_;
  const config::SubscribeConfig config_;
  const routing::RouteTable* const routes_;
  const std::map<std::string, backend::Cluster*> clusters_;
  metrics::Registry* const metrics_;
  std::atomic<StreamId> next_stream_id_{1};

  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<GroupDispatcher>> groups_ ABSL_GUARDED_BY(mu_);
  // Idle groups handed to leaver_ and not left yet: shutdown starts their
  // leave too, instead of leaving them queued behind stuck ones.
  std::set<std::shared_ptr<GroupDispatcher>> leaving_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::set<std::string> paused_ ABSL_GUARDED_BY(mu_);
  // Group filters from the control topic: the parsed filter and its text.
  std::map<std::string, std::pair<filter::Filter, std::string>> group_filters_
      ABSL_GUARDED_BY(mu_);
  bool control_caught_up_ ABSL_GUARDED_BY(mu_) = false;
  control::SeekLedger* seeks_ ABSL_GUARDED_BY(mu_) = nullptr;
  MigrationTargets migration_targets_;
  // When each group wants its next Tick(); before ticker_, which reads it,
  // and outliving the dispatchers' requests (Stop() ends them).
  TickSchedule tick_schedule_;
  std::thread ticker_;
  // Leaves idle groups; destroyed after the ticker was joined and every
  // group was stopped, it only finishes the bookkeeping of queued leaves.
  // Several at once: a leave that hangs takes one thread for up to
  // subscribe.leave_timeout.
  BlockingTaskRunner leaver_{kLeaverThreads};
  // Applies route changes to open groups, one at a time, in order.
  BlockingTaskRunner route_follower_{1};
};

}  // namespace ferry::subscribe
