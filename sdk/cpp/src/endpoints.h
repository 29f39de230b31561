// Retry backoff and the choice of the node for each call.
#ifndef FERRY_CLIENT_SRC_ENDPOINTS_H_
#define FERRY_CLIENT_SRC_ENDPOINTS_H_

#include <cstddef>
#include <vector>

#include "pending.h"

namespace ferry::client::internal {

// initial * 2^(attempt - 1), capped at max. No jitter: a publisher's retries
// are already spread by their batches' different failure times, and tests
// stay exact.
class Backoff {
 public:
  Backoff(Clock::duration initial, Clock::duration max) : initial_(initial), max_(max) {}

  // attempt >= 1: the number of failures so far.
  Clock::duration Delay(int attempt) const;

 private:
  Clock::duration initial_;
  Clock::duration max_;
};

// Round-robin over healthy endpoints. An endpoint that failed (unreachable,
// timed out) is unhealthy for Backoff(consecutive failures); when every
// endpoint is unhealthy, the one whose period ends first is used anyway, so a
// call is always sent somewhere. A retry avoids the endpoint it failed on
// while another one is healthy, even if that endpoint's (short) period has
// ended. Not thread-safe (the sender thread owns it).
class EndpointSelector {
 public:
  EndpointSelector(std::size_t count, Backoff backoff);

  // The endpoint for the next call; `avoid` (-1: none) only if no other
  // endpoint is healthy.
  std::size_t Pick(Clock::time_point now, int avoid = -1);

  // A call to `index` failed at the transport level. Failures of calls that
  // were in flight together count once: the period grows only when the
  // endpoint had been healthy again.
  void ReportFailure(std::size_t index, Clock::time_point now);

  // A call to `index` was answered: it is healthy again. Returns whether it
  // had failed before (the publisher reconnected to it).
  bool ReportSuccess(std::size_t index);

  bool Healthy(std::size_t index, Clock::time_point now) const;

 private:
  struct State {
    int failures = 0;
    Clock::time_point unhealthy_until;
  };

  Backoff backoff_;
  std::vector<State> states_;
  std::size_t next_ = 0;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_ENDPOINTS_H_
