#pragma once

// Counts acks into their topic's series (acked, processing time, end-to-end
// time) in runs of equal observations instead of two locked histogram
// updates per message: the messages of one response share their delivery
// time, and those published in the same millisecond their publish time, so a
// span of 500 acks costs a few Observe() calls.
//
// Threading: not thread-safe; one per Ack() call, under the dispatcher's
// lock. What was added shows in the series once Flush() ran, at the latest
// (the destructor does not flush).
//
// Usage:
//
//   AckMetrics observed(now);
//   for (each acked message) observed.Add(slot.metrics(), delivered, publish_ms);
//   observed.Flush();

#include <cstdint>
#include <optional>

#include "absl/time/time.h"
#include "subscribe/subscribe_metrics.h"

namespace ferry::subscribe {

class AckMetrics {
 public:
  explicit AckMetrics(absl::Time now) : now_(now) {}

  // An ack at `now` of a message of `metrics`' topic (which must outlive
  // Flush()) delivered at `delivered`, published at `publish_ms` (nullopt:
  // not known, no end-to-end observation).
  void Add(TopicMetrics& metrics, absl::Time delivered,
           std::optional<int64_t> publish_ms);
  // Writes what was added since the last Flush() to the series.
  void Flush();

 private:
  void FlushProcessing();
  void FlushEndToEnd();

  const absl::Time now_;
  TopicMetrics* metrics_ = nullptr;
  uint64_t acked_ = 0;
  // The current runs: how many acks had this delivery / publish time.
  absl::Time delivered_;
  uint64_t delivered_run_ = 0;
  int64_t publish_ms_ = 0;
  uint64_t publish_run_ = 0;
};

}  // namespace ferry::subscribe
