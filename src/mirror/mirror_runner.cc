#include "mirror/mirror_runner.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <set>

namespace ferry::mirror {

MirrorRunner::MirrorRunner(std::map<std::string, backend::Cluster*> clusters,
                           MirrorJob::Options job_options, metrics::Registry* metrics,
                           absl::Duration retry_interval)
    : clusters_(std::move(clusters)),
      job_options_(std::move(job_options)),
      metrics_(metrics),
      retry_interval_(retry_interval) {
  thread_ = std::thread([this] { Run(); });
}

MirrorRunner::~MirrorRunner() {
  EndStarts();
  // All at once: each waits for its leave (backend::LeaveWithin), so
  // stopping K jobs takes one leave bound, not K.
  std::vector<std::thread> stops;
  for (auto& [name, job] : running_) {
    stops.emplace_back([job = std::move(job)]() mutable { job.reset(); });
  }
  for (std::thread& stop : stops) stop.join();
  running_.clear();
}

void MirrorRunner::CutStarts() {
  absl::MutexLock lock(&mu_);
  starts_cut_ = true;
}

void MirrorRunner::EndStarts() {
  {
    absl::MutexLock lock(&mu_);
    starts_cut_ = true;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool MirrorRunner::Stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

bool MirrorRunner::StartsCut() const {
  absl::MutexLock lock(&mu_);
  return starts_cut_;
}

void MirrorRunner::SetJobs(std::vector<control::MirrorSpec> jobs) {
  absl::MutexLock lock(&mu_);
  wanted_.clear();
  for (control::MirrorSpec& job : jobs) {
    const std::string name = job.name;
    wanted_.emplace(name, std::move(job));
  }
  changed_ = true;
}

std::map<std::string, std::string> MirrorRunner::States() const {
  absl::MutexLock lock(&mu_);
  return states_;
}

void MirrorRunner::Run() {
  while (true) {
    std::map<std::string, control::MirrorSpec> wanted;
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || changed_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&wake), retry_interval_);
      if (stopping_) return;
      changed_ = false;
      wanted = wanted_;
    }
    std::set<std::string> names;
    for (const auto& [name, job] : running_) names.insert(name);
    for (const auto& [name, spec] : wanted) names.insert(name);
    for (const std::string& name : names) {
      // Shutdown waits for one job's start (one cluster call) or stop (at
      // most leave_timeout) at most, not all.
      if (Stopping()) return;
      auto it = wanted.find(name);
      Reconcile(name, it == wanted.end() ? nullptr : &it->second);
    }
  }
}

void MirrorRunner::Reconcile(const std::string& name, const control::MirrorSpec* wanted) {
  auto running = running_.find(name);
  if (running != running_.end() && wanted != nullptr &&
      running->second->spec() == *wanted) {
    return;
  }
  if (running != running_.end()) {
    spdlog::info("mirror {}: stopping on this node", name);
    running_.erase(running);  // leaves the group, committing progress
  }
  if (wanted == nullptr) {
    absl::MutexLock lock(&mu_);
    states_.erase(name);
    return;
  }
  if (StartsCut()) {
    // Draining: a job started now would be stopped again at the end of the
    // grace, and its start is a cluster call shutdown would wait for.
    absl::MutexLock lock(&mu_);
    states_[name] = "not running: the node is stopping";
    return;
  }
  auto source = clusters_.find(wanted->source);
  auto target = clusters_.find(wanted->target);
  absl::StatusOr<std::unique_ptr<MirrorJob>> job = absl::FailedPreconditionError(
      fmt::format("this node has no cluster \"{}\"",
                  source == clusters_.end() ? wanted->source : wanted->target));
  if (source != clusters_.end() && target != clusters_.end()) {
    job = MirrorJob::Start(*wanted, source->second, target->second, job_options_,
                           metrics_, [this] { return StartsCut(); });
  }
  std::string state = "running";
  if (job.ok()) {
    running_[name] = *std::move(job);
  } else if (job.status().code() == absl::StatusCode::kCancelled && StartsCut()) {
    return;  // a start cut by the node's shutdown: nothing to report
  } else {
    state = fmt::format("not running: {} (retrying every {})",
                        std::string(job.status().message()),
                        absl::FormatDuration(retry_interval_));
    spdlog::warn("mirror {}: {}", name, state);
  }
  absl::MutexLock lock(&mu_);
  states_[name] = std::move(state);
}

}  // namespace ferry::mirror
