// SettingsFollower: keeps a publisher without fallback on the settings the
// operator pushes through the nodes (ferry client-settings set, ferryd's
// client.* keys). A publisher with fallback gets them from its NodeProbe.
#ifndef FERRY_CLIENT_SRC_SETTINGS_FOLLOWER_H_
#define FERRY_CLIENT_SRC_SETTINGS_FOLLOWER_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "client_config.h"
#include "options.h"

namespace ferry::client::internal {

struct FollowTiming {
  // After a round in which no node answered: the tier is probably down, and
  // a node that returns should be asked soon.
  std::chrono::milliseconds retry{1'000};
  // Least time between two fetches (a flapping node reconnects often), and
  // the least refresh interval a node may name.
  std::chrono::milliseconds min_gap{1'000};
};

// When to fetch next. Single-threaded, time passed in, no I/O.
// Fetch at once; after an answer, after the refresh interval it named; after
// a round without any answer, after `retry`; when a node reconnects to the
// publisher, at once unless the last fetch was less than `min_gap` ago.
class FetchSchedule {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit FetchSchedule(FollowTiming timing) : timing_(timing) {}

  TimePoint next() const { return next_; }
  // A node answered (with a configuration or an error such as UNIMPLEMENTED).
  void Answered(TimePoint now, std::chrono::milliseconds refresh) {
    last_ = now;
    next_ = now + refresh;
  }
  void NoAnswer(TimePoint now) {
    last_ = now;
    next_ = now + timing_.retry;
  }
  void Reconnected(TimePoint now) {
    const TimePoint soonest = last_ ? *last_ + timing_.min_gap : now;
    next_ = std::min(next_, std::max(now, soonest));
  }

 private:
  const FollowTiming timing_;
  std::optional<TimePoint> last_;
  TimePoint next_{};
};

// Threading: one thread of its own fetches (GetClientConfig through
// `source`, the nodes in turn until one answers) and calls `apply` with each
// answer's settings; neither happens under the follower's lock, so a source
// that completes inline and an `apply` that takes the publisher's lock are
// both safe. NodeReconnected may be called from any thread; it only takes
// the follower's lock. A node that does not offer GetClientConfig (older
// ferryd) is logged once and asked again each refresh interval; the
// publisher keeps its own settings meanwhile.
class SettingsFollower {
 public:
  using Apply = std::function<void(const PushedSettings&)>;

  SettingsFollower(std::unique_ptr<ConfigSource> source, std::string client_id,
                   Apply apply, FollowTiming timing = {});
  // Waits for a fetch in flight (bounded by its 5 s deadline).
  ~SettingsFollower();

  // A node answered the publisher after a call to it had failed: the
  // configuration may have changed meanwhile.
  void NodeReconnected();

  // A node handed out a configuration at least once.
  bool fetched() const { return fetched_.load(); }

 private:
  void Run();
  // Asks the nodes in turn until one answers; updates the schedule.
  void FetchRound();

  ClientConfigFetcher fetcher_;
  const std::string client_id_;
  const Apply apply_;
  std::atomic<bool> fetched_{false};

  absl::Mutex mu_;
  FetchSchedule schedule_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread thread_;  // Last: started once everything above exists.
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_SETTINGS_FOLLOWER_H_
