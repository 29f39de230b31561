#include "settings_follower.h"

#include <algorithm>

#include "absl/time/time.h"

namespace ferry::client::internal {

SettingsFollower::SettingsFollower(std::unique_ptr<ConfigSource> source,
                                   std::string client_id, Apply apply,
                                   FollowTiming timing)
    : fetcher_(std::move(source)),
      client_id_(std::move(client_id)),
      apply_(std::move(apply)),
      schedule_(timing) {
  fetcher_.set_min_refresh(timing.min_gap);
  thread_ = std::thread([this] { Run(); });
}

SettingsFollower::~SettingsFollower() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void SettingsFollower::NodeReconnected() {
  absl::MutexLock lock(&mu_);
  schedule_.Reconnected(std::chrono::steady_clock::now());
}

void SettingsFollower::FetchRound() {
  for (std::size_t endpoint = 0; endpoint < fetcher_.endpoints(); ++endpoint) {
    ferry::v1::GetClientConfigRequest request;  // no topics: settings only
    request.set_client_id(client_id_);
    absl::StatusOr<ClientConfigSnapshot> config = fetcher_.Fetch(endpoint, request);
    const auto now = std::chrono::steady_clock::now();
    if (!config.ok() && NoAnswer(config.status())) continue;
    {
      absl::MutexLock lock(&mu_);
      schedule_.Answered(now, fetcher_.refresh());
    }
    if (config.ok()) {
      fetched_ = true;
      apply_(config->settings);
    }
    return;
  }
  absl::MutexLock lock(&mu_);
  schedule_.NoAnswer(std::chrono::steady_clock::now());
}

void SettingsFollower::Run() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      // Re-evaluated on every change of mu_'s state: a reconnect moves
      // next() earlier.
      auto due = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || std::chrono::steady_clock::now() >= schedule_.next();
      };
      while (!due()) {
        const auto wait = schedule_.next() - std::chrono::steady_clock::now();
        mu_.AwaitWithTimeout(absl::Condition(&due),
                             absl::FromChrono(std::max(wait, decltype(wait)::zero())));
      }
      if (stopping_) return;
    }
    FetchRound();
  }
}

}  // namespace ferry::client::internal
