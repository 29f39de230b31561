#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "metrics/registry.h"

namespace ferry::metrics {

// A counter family labelled by principal (who published or consumed, with
// auth.enabled), with a bound on label values: the first `max_principals`
// principals seen get a series each, every later one shares
// {principal="other"}, so a tier with many clients (or tokens minted per
// job) cannot grow /metrics without limit. Series are never removed: a
// principal keeps its series for the node's life.
//
// Thread-safe. For() takes this object's lock (and, for a principal's first
// call, the registry's): look the counter up once per call or stream, not
// per message.
class PrincipalCounters {
 public:
  static constexpr std::string_view kOther = "other";

  // `registry` must outlive this; `max_principals` >= 0.
  PrincipalCounters(Registry* registry, std::string name, std::string help,
                    size_t max_principals);

  // The counter of `principal` (or of "other" past the bound).
  Counter& For(std::string_view principal);

 private:
  Registry* const registry_;
  const std::string name_;
  const std::string help_;
  const size_t max_principals_;
  absl::Mutex mu_;
  std::map<std::string, Counter*, std::less<>> named_ ABSL_GUARDED_BY(mu_);
  Counter* other_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace ferry::metrics
