#include "metrics/principal_counters.h"

namespace ferry::metrics {

PrincipalCounters::PrincipalCounters(Registry* registry, std::string name,
                                     std::string help, size_t max_principals)
    : registry_(registry),
      name_(std::move(name)),
      help_(std::move(help)),
      max_principals_(max_principals) {}

Counter& PrincipalCounters::For(std::string_view principal) {
  absl::MutexLock lock(&mu_);
  if (auto it = named_.find(principal); it != named_.end()) return *it->second;
  if (named_.size() < max_principals_) {
    Counter& counter =
        registry_->GetCounter(name_, help_, {{"principal", std::string(principal)}});
    named_.emplace(std::string(principal), &counter);
    return counter;
  }
  if (other_ == nullptr) {
    other_ = &registry_->GetCounter(name_, help_, {{"principal", std::string(kOther)}});
  }
  return *other_;
}

}  // namespace ferry::metrics
