#include "routing/circuit_breaker.h"

#include <fmt/format.h>

#include <algorithm>

namespace ferry::routing {

std::string_view ToString(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kHalfOpen:
      return "half-open";
    case BreakerState::kOpen:
      return "open";
  }
  return "unknown";
}

CircuitBreaker::CircuitBreaker(const config::BreakerConfig& config, absl::Time now)
    : config_(config),
      bucket_nanos_(
          std::max<int64_t>(1, absl::ToInt64Nanoseconds(config.window) / kBuckets)),
      entered_(now),
      open_period_(config.open_for) {}

std::optional<BreakerTransition> CircuitBreaker::RecordOutcomes(
    absl::Time now, int64_t outcomes, int64_t failures, const absl::Status& failure) {
  if (state_ != BreakerState::kClosed) return std::nullopt;
  const int64_t index = absl::ToUnixNanos(now) / bucket_nanos_;
  Bucket& bucket = buckets_[static_cast<size_t>(index % kBuckets)];
  if (bucket.index != index) bucket = Bucket{.index = index};
  bucket.total += outcomes;
  if (failures == 0) return std::nullopt;
  bucket.failed += failures;
  int64_t total = 0;
  int64_t failed = 0;
  for (const Bucket& b : buckets_) {
    if (b.index <= index - kBuckets) continue;  // older than the window
    total += b.total;
    failed += b.failed;
  }
  if (total < config_.min_requests ||
      static_cast<double>(failed) < config_.failure_rate * static_cast<double>(total)) {
    return std::nullopt;
  }
  return Trip(now, fmt::format("{}/{} failed in the last {} ({}: {})", failed, total,
                               absl::FormatDuration(config_.window),
                               absl::StatusCodeToString(failure.code()),
                               std::string(failure.message())));
}

std::optional<BreakerTransition> CircuitBreaker::ObserveCluster(
    absl::Time now, const backend::ClusterStatus& status) {
  if (status.state != backend::ClusterState::kDown) {
    down_since_ = absl::InfiniteFuture();
  } else if (down_since_ == absl::InfiniteFuture()) {
    // Down since its last answer, or since now when it never answered.
    down_since_ = status.last_contact == absl::InfinitePast() ? now : status.last_contact;
  }
  switch (state_) {
    case BreakerState::kClosed: {
      const absl::Duration down_for = now - down_since_;
      if (down_for < config_.down_after) return std::nullopt;
      return Trip(now, fmt::format("metadata probe failing for {} ({})",
                                   absl::FormatDuration(
                                       absl::Trunc(down_for, absl::Milliseconds(100))),
                                   status.error));
    }
    case BreakerState::kOpen:
      if (drained_ || now - entered_ < open_period_ ||
          status.state != backend::ClusterState::kUp) {
        return std::nullopt;
      }
      return MoveTo(now, BreakerState::kHalfOpen,
                    fmt::format("open for {} and the metadata probe answers; sending "
                                "probe messages",
                                absl::FormatDuration(open_period_)));
    case BreakerState::kHalfOpen:
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<BreakerTransition> CircuitBreaker::RecordProbe(absl::Time now,
                                                             const absl::Status& status) {
  if (state_ != BreakerState::kHalfOpen) return std::nullopt;
  if (!status.ok()) {
    open_period_ = std::min(open_period_ * 2, config_.open_for * kMaxOpenForFactor);
    return MoveTo(
        now, BreakerState::kOpen,
        fmt::format("probe message failed ({}: {}); open for {}",
                    absl::StatusCodeToString(status.code()),
                    std::string(status.message()), absl::FormatDuration(open_period_)));
  }
  if (++probe_successes_ < config_.close_after) return std::nullopt;
  ClearWindow();
  last_closed_ = now;
  return MoveTo(now, BreakerState::kClosed,
                fmt::format("{} probe messages in a row acknowledged", probe_successes_));
}

std::optional<BreakerTransition> CircuitBreaker::SetDrained(absl::Time now,
                                                            bool drained) {
  if (drained == drained_) return std::nullopt;
  drained_ = drained;
  if (drained) {
    if (state_ == BreakerState::kClosed) return Trip(now, "drained by an operator");
    return MoveTo(now, BreakerState::kOpen, "drained by an operator");
  }
  return MoveTo(now, BreakerState::kHalfOpen,
                "undrained by an operator; sending probe messages");
}

BreakerTransition CircuitBreaker::Trip(absl::Time now, std::string reason) {
  if (now - last_closed_ < open_period_) {
    open_period_ = std::min(open_period_ * 2, config_.open_for * kMaxOpenForFactor);
  } else {
    open_period_ = config_.open_for;
  }
  return MoveTo(now, BreakerState::kOpen, std::move(reason));
}

BreakerTransition CircuitBreaker::MoveTo(absl::Time now, BreakerState to,
                                         std::string reason) {
  BreakerTransition transition{.from = state_, .to = to, .reason = std::move(reason)};
  state_ = to;
  entered_ = now;
  probe_successes_ = 0;
  return transition;
}

void CircuitBreaker::ClearWindow() { buckets_.fill(Bucket{}); }

}  // namespace ferry::routing
