#pragma once

// Write holds (docs/migration.md): while a topic is held, this node queues
// its publishes to it instead of writing them, so a migration can switch the
// topic's write cluster with no Ferry write in flight to the old one. The
// control topic sets and clears holds (`writehold/<topic>`); the node's
// heartbeat reports a hold applied only once the publishes that were in
// flight when it arrived completed (OldestUnsettled).
//
// A queued publish keeps its deadline: when it passes first, the publish
// fails with a retryable UNAVAILABLE. A hold this node has applied for
// longer than `max_hold` is released here (logged as an error and counted in
// ferry_write_hold_expired_total): if the migration coordinator died holding
// it, an endless publish outage would be worse than the possible order break
// (docs/migration.md says how the next command re-establishes the stage).
//
// Thread-safe. Queued publishes run, in the order they were queued, on this
// class's worker thread once the hold is released; nothing runs under the
// lock, so a publish that completes inline may call Done() at once.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "metrics/registry.h"

namespace ferry::publish {

class WriteHold {
 public:
  // `registry` must outlive this. `on_settled` runs (on any thread, no lock
  // held) when a hold's in-flight publishes completed, so the node can
  // heartbeat at once.
  WriteHold(absl::Duration max_hold, metrics::Registry* registry,
            std::function<void()> on_settled);
  // Fails the publishes still queued with UNAVAILABLE.
  ~WriteHold();

  // Holds or releases `topic`; `offset` is the control record's.
  void Set(const std::string& topic, bool held, int64_t offset);
  bool IsHeld(const std::string& topic) const;
  // The offset of the oldest hold whose in-flight publishes still run.
  std::optional<int64_t> OldestUnsettled() const;

  // True when `topic` is not held (and nothing is queued for it): the caller
  // publishes now and calls Done(topic) once every write completed. False:
  // the caller must Enqueue instead.
  bool TryEnter(const std::string& topic);
  // Queues a publish. `publish` runs on the worker once the hold is released
  // (counted in flight like TryEnter: it must lead to one Done(topic));
  // `expire` runs instead with UNAVAILABLE when `deadline` passes first.
  // Neither may block.
  void Enqueue(const std::string& topic, absl::Time deadline,
               std::function<void()> publish, std::function<void(absl::Status)> expire);
  void Done(const std::string& topic);

 private:
  struct Queued {
    absl::Time deadline;
    std::function<void()> publish;
    std::function<void(absl::Status)> expire;
  };
  struct Topic {
    bool held = false;
    int64_t offset = -1;
    absl::Time held_since;
    bool settled = true;
    int64_t inflight = 0;
    bool draining = false;  // the worker is running its queue
    std::deque<Queued> queue;
  };

  void Run();
  // Expires holds and queued publishes that are due, marks released queues
  // for draining; returns when the worker should look again.
  absl::Time Collect(absl::Time now, std::vector<std::pair<std::string, Queued>>& expired,
                     std::vector<std::string>& expired_holds,
                     std::vector<std::string>& to_drain)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Drain(const std::string& topic) ABSL_LOCKS_EXCLUDED(mu_);
  // Drops the entry of a topic with nothing to remember.
  void Forget(std::map<std::string, Topic>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration max_hold_;
  metrics::Registry* const registry_;
  const std::function<void()> on_settled_;

  mutable absl::Mutex mu_;
  std::map<std::string, Topic> topics_ ABSL_GUARDED_BY(mu_);
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;
};

}  // namespace ferry::publish
