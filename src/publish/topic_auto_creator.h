#pragma once

#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "backend/cluster.h"

namespace ferry::publish {

// Creates missing topics for routes with auto_create_topics, off the gRPC and
// delivery threads: topic administration blocks for up to the backend's admin
// timeout. Topics are created with the cluster's default partition count and
// replication factor. Callers waiting for the same topic share one lookup,
// and each cluster has a worker of its own, so an unreachable cluster delays
// only its own topics. Thread-safe.
class TopicAutoCreator {
 public:
  TopicAutoCreator() = default;
  // Stops the workers; callbacks still waiting get UNAVAILABLE.
  ~TopicAutoCreator();

  // Calls `then` once `topic` exists on `cluster`: at once (on this thread)
  // when it is known to exist, otherwise on the cluster's worker thread after
  // looking it up and, if missing, creating it. `then` gets the creation
  // error, if any; it must not block.
  //
  // Order: the callbacks of one (cluster, topic) run one after another in the
  // order EnsureExists was called, and a call never runs its callback before
  // an earlier call's callback returned. A caller arriving while the
  // callbacks of a lookup are still running joins them (same status, run
  // after them on the worker); the topic counts as known only once they all
  // returned. A failed lookup is not remembered: the first caller after its
  // callbacks ran starts a new one. PublishStream relies on this to write a
  // stream's batches in the order they were sent. Cost: while callers keep
  // joining, the worker keeps running their callbacks (dispatching their
  // batches), and the cluster's other topics wait for their lookups until it
  // has caught up with them.
  void EnsureExists(backend::Cluster* cluster, const std::string& topic,
                    std::function<void(absl::Status)> then);

 private:
  using Key = std::pair<backend::Cluster*, std::string>;
  using Waiters = std::vector<std::function<void(absl::Status)>>;

  void Run(backend::Cluster* cluster);
  // Looks the topic up and creates it if missing.
  static absl::Status Ensure(backend::Cluster* cluster, const std::string& topic);

  absl::Mutex mu_;
  std::set<Key> existing_ ABSL_GUARDED_BY(mu_);
  // Topics queued for lookup, being looked up, or whose callbacks are still
  // running, with the callbacks not started yet (in call order).
  std::map<Key, Waiters> waiting_ ABSL_GUARDED_BY(mu_);
  std::map<backend::Cluster*, std::deque<std::string>> queues_ ABSL_GUARDED_BY(mu_);
  std::map<backend::Cluster*, std::thread> workers_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ferry::publish
