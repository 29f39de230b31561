#include "endpoints.h"

namespace ferry::client::internal {

Clock::duration Backoff::Delay(int attempt) const {
  Clock::duration delay = initial_;
  for (int i = 1; i < attempt && delay < max_; ++i) delay *= 2;
  return delay < max_ ? delay : max_;
}

EndpointSelector::EndpointSelector(std::size_t count, Backoff backoff)
    : backoff_(backoff), states_(count) {}

std::size_t EndpointSelector::Pick(Clock::time_point now, int avoid) {
  const std::size_t n = states_.size();
  std::size_t earliest = next_ % n;
  bool avoided_is_healthy = false;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t index = (next_ + i) % n;
    if (Healthy(index, now)) {
      if (static_cast<int>(index) == avoid) {
        avoided_is_healthy = true;
        continue;
      }
      next_ = index + 1;
      return index;
    }
    if (states_[index].unhealthy_until < states_[earliest].unhealthy_until) {
      earliest = index;
    }
  }
  if (avoided_is_healthy) earliest = static_cast<std::size_t>(avoid);
  next_ = earliest + 1;
  return earliest;
}

void EndpointSelector::ReportFailure(std::size_t index, Clock::time_point now) {
  State& state = states_[index];
  if (!Healthy(index, now)) return;
  ++state.failures;
  state.unhealthy_until = now + backoff_.Delay(state.failures);
}

bool EndpointSelector::ReportSuccess(std::size_t index) {
  const bool had_failed = states_[index].failures > 0;
  states_[index] = State{};
  return had_failed;
}

bool EndpointSelector::Healthy(std::size_t index, Clock::time_point now) const {
  return states_[index].unhealthy_until <= now;
}

}  // namespace ferry::client::internal
