#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/node_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ferry::publish {

// Admission by sojourn time, per topic (CoDel's signal, measured rather than
// predicted): a topic's batch is refused while the oldest of that topic's
// unanswered batches has waited longer than `budget`. A cluster that answers
// every batch within the budget is never refused, whatever its burst; a topic
// that cannot be written (no leader) refuses only its own batches. A topic's
// state exists only while it has a batch in flight. Thread-safe; its lock is
// held only inside these calls.
class SojournGate {
 private:
  // A topic's unanswered batches in admission order; an answered one leaves
  // once every older one was answered too, so the front is the oldest
  // unanswered. Admission times never decrease along the queue.
  struct TopicQueue {
    struct Batch {
      absl::Time admitted;
      bool answered = false;
    };
    std::string_view topic;  // the map's key, stable in a node_hash_map
    uint64_t front_sequence = 0;
    std::deque<Batch> batches;
  };

 public:
  // An admitted batch's place in its topic's queue; give it to Done once.
  class Ticket {
   private:
    friend class SojournGate;
    TopicQueue* queue_ = nullptr;
    uint64_t sequence_ = 0;
  };

  explicit SojournGate(absl::Duration budget) : budget_(budget) {}
  SojournGate(const SojournGate&) = delete;
  SojournGate& operator=(const SojournGate&) = delete;

  // Admits a batch for `topic` at `now`, or refuses it (nullopt) and says in
  // *oldest_wait how long the topic's oldest unanswered batch has waited.
  std::optional<Ticket> TryAdmit(std::string_view topic, absl::Time now,
                                 absl::Duration* oldest_wait);
  // The batch was answered, in any order relative to its topic's others.
  void Done(const Ticket& ticket);

  absl::Duration budget() const { return budget_; }
  // Topics with a batch in flight: the only ones the gate keeps state for.
  size_t topics() const;

 private:
  const absl::Duration budget_;
  mutable absl::Mutex mu_;
  absl::node_hash_map<std::string, TopicQueue> queues_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::publish
