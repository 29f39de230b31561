#include "publish/write_hold.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace ferry::publish {
namespace {

absl::Status HeldTooLong(const std::string& topic) {
  return absl::UnavailableError(
      fmt::format("publishes to {} are held for a migration and the hold was not "
                  "released before the publish deadline; retry",
                  topic));
}

}  // namespace

WriteHold::WriteHold(absl::Duration max_hold, metrics::Registry* registry,
                     std::function<void()> on_settled)
    : max_hold_(max_hold), registry_(registry), on_settled_(std::move(on_settled)) {
  worker_ = std::thread([this] { Run(); });
}

WriteHold::~WriteHold() {
  std::vector<std::pair<std::string, Queued>> left;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  worker_.join();
  {
    absl::MutexLock lock(&mu_);
    for (auto& [topic, state] : topics_) {
      for (Queued& queued : state.queue) left.emplace_back(topic, std::move(queued));
    }
    topics_.clear();
  }
  for (auto& [topic, queued] : left) {
    queued.expire(absl::UnavailableError(
        fmt::format("this node stopped while publishes to {} were held; retry", topic)));
  }
}

void WriteHold::Set(const std::string& topic, bool held, int64_t offset) {
  bool settled_now = false;
  {
    absl::MutexLock lock(&mu_);
    Topic& state = topics_[topic];
    if (held) {
      spdlog::info("write hold: publishes to {} are held (control record {})", topic,
                   offset);
      state.held = true;
      state.offset = offset;
      state.held_since = absl::Now();
      state.settled = state.inflight == 0;
      settled_now = state.settled;
    } else {
      if (state.held) spdlog::info("write hold: publishes to {} are released", topic);
      state.held = false;
      state.settled = true;
    }
    wake_ = true;
  }
  if (settled_now) on_settled_();
}

bool WriteHold::IsHeld(const std::string& topic) const {
  absl::MutexLock lock(&mu_);
  auto it = topics_.find(topic);
  return it != topics_.end() && it->second.held;
}

std::optional<int64_t> WriteHold::OldestUnsettled() const {
  absl::MutexLock lock(&mu_);
  std::optional<int64_t> oldest;
  for (const auto& [topic, state] : topics_) {
    if (state.held && !state.settled && (!oldest || state.offset < *oldest)) {
      oldest = state.offset;
    }
  }
  return oldest;
}

bool WriteHold::TryEnter(const std::string& topic) {
  absl::MutexLock lock(&mu_);
  Topic& state = topics_[topic];
  if (state.held || state.draining || !state.queue.empty()) return false;
  ++state.inflight;
  return true;
}

void WriteHold::Enqueue(const std::string& topic, absl::Time deadline,
                        std::function<void()> publish,
                        std::function<void(absl::Status)> expire) {
  absl::MutexLock lock(&mu_);
  topics_[topic].queue.push_back(
      {.deadline = deadline, .publish = std::move(publish), .expire = std::move(expire)});
  wake_ = true;  // released meanwhile, or a sooner deadline
}

void WriteHold::Done(const std::string& topic) {
  bool settled_now = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = topics_.find(topic);
    if (it == topics_.end()) return;
    Topic& state = it->second;
    --state.inflight;
    if (state.held && !state.settled && state.inflight == 0) {
      state.settled = true;
      settled_now = true;
    }
    Forget(it);
  }
  if (settled_now) on_settled_();
}

void WriteHold::Forget(std::map<std::string, Topic>::iterator it) {
  const Topic& state = it->second;
  if (!state.held && state.inflight == 0 && !state.draining && state.queue.empty()) {
    topics_.erase(it);
  }
}

absl::Time WriteHold::Collect(absl::Time now,
                              std::vector<std::pair<std::string, Queued>>& expired,
                              std::vector<std::string>& expired_holds,
                              std::vector<std::string>& to_drain) {
  absl::Time next = absl::InfiniteFuture();
  for (auto& [topic, state] : topics_) {
    if (state.held && now - state.held_since >= max_hold_) {
      state.held = false;
      state.settled = true;
      expired_holds.push_back(topic);
    }
    // Deadlines grow along the queue (one publish timeout from queueing), so
    // expiring from the front keeps a key's surviving publishes in order.
    while (!state.queue.empty() && state.queue.front().deadline <= now) {
      expired.emplace_back(topic, std::move(state.queue.front()));
      state.queue.pop_front();
    }
    if (!state.held && !state.queue.empty() && !state.draining) {
      state.draining = true;
      to_drain.push_back(topic);
    }
    if (state.held) next = std::min(next, state.held_since + max_hold_);
    if (!state.queue.empty()) next = std::min(next, state.queue.front().deadline);
  }
  return next;
}

void WriteHold::Run() {
  mu_.Lock();
  while (!stopping_) {
    std::vector<std::pair<std::string, Queued>> expired;
    std::vector<std::string> expired_holds;
    std::vector<std::string> to_drain;
    wake_ = false;
    const absl::Time next = Collect(absl::Now(), expired, expired_holds, to_drain);
    if (expired.empty() && expired_holds.empty() && to_drain.empty()) {
      auto woken = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || wake_; };
      mu_.AwaitWithDeadline(absl::Condition(&woken), next);
      continue;
    }
    // The callbacks publish, which may complete inline and call Done().
    mu_.Unlock();
    for (const std::string& topic : expired_holds) {
      spdlog::error(
          "write hold: publishes to {} were held longer than migration.max_write_hold "
          "({}); releasing them. The migration that set the hold did not finish its "
          "stage: run the stage's ferry migrate command again",
          topic, absl::FormatDuration(max_hold_));
      registry_
          ->GetCounter("ferry_write_hold_expired_total",
                       "Write holds a node released by itself after "
                       "migration.max_write_hold (the migration did not clear them).",
                       {{"topic", topic}})
          .Inc();
    }
    for (auto& [topic, queued] : expired) queued.expire(HeldTooLong(topic));
    for (const std::string& topic : to_drain) Drain(topic);
    mu_.Lock();
  }
  mu_.Unlock();
}

void WriteHold::Drain(const std::string& topic) {
  while (true) {
    Queued queued;
    {
      absl::MutexLock lock(&mu_);
      auto it = topics_.find(topic);
      Topic& state = it->second;
      if (state.held || state.queue.empty() || stopping_) {
        state.draining = false;
        Forget(it);
        return;
      }
      queued = std::move(state.queue.front());
      state.queue.pop_front();
      ++state.inflight;
    }
    queued.publish();
  }
}

}  // namespace ferry::publish
