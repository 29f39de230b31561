#pragma once

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "routing/router.h"

namespace ferry::routing {

// The node's current Router. Routes change at runtime (the control topic),
// and a Router is immutable, so a change swaps the whole Router: a caller
// keeps the one it got for the whole request, so a publish in flight
// finishes on the cluster it started on.
class RouteTable {
 public:
  explicit RouteTable(std::shared_ptr<const Router> router)
      : router_(std::move(router)) {}

  std::shared_ptr<const Router> Current() const {
    absl::MutexLock lock(&mu_);
    return router_;
  }

  void Swap(std::shared_ptr<const Router> router) {
    absl::MutexLock lock(&mu_);
    router_.swap(router);
  }

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const Router> router_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::routing
