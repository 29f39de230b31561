#pragma once

// When the registry's ticker must next visit each group: a group asks for a
// visit no later than some time (its earliest ack deadline, delayed
// redelivery, commit round, idle timeout), and the ticker takes only the
// groups whose time has come. So a group with nothing due costs the ticker
// nothing, however many groups the node serves.
//
// A key is held at most once, at the earliest time asked for since it was
// last taken; taking it forgets it until it asks again. Asking for a time
// later than the one held changes nothing (a visit too early is harmless:
// the group finds nothing to do and asks again).
//
// Threading: thread-safe. Its lock is a leaf (nothing is called under it), so
// groups may ask while holding their own lock. Cost: O(log n) per operation
// in the number of keys held, plus the keys taken.
//
// Usage:
//
//   schedule.Wake("orders", now + ack_deadline);   // a group, any thread
//   for (const std::string& group : schedule.TakeDue(absl::Now()))  // ticker
//     Visit(group);                                 // which asks again

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ferry::subscribe {

class TickSchedule {
 public:
  // `key` wants a visit no later than `at`.
  void Wake(const std::string& key, absl::Time at);
  // Takes out every key due at `now` (held at or before it), earliest first.
  std::vector<std::string> TakeDue(absl::Time now);
  // Keys held (for tests and metrics).
  size_t size() const;

 private:
  mutable absl::Mutex mu_;
  std::set<std::pair<absl::Time, std::string>> by_time_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::subscribe
