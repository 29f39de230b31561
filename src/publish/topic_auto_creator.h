#pragma once

#include <deque>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "backend/cluster.h"

namespace ferry::publish {

// Creates missing topics for routes with auto_create_topics, off the gRPC and
// delivery threads: topic administration blocks for up to the backend's admin
// timeout. Topics are created with the cluster's default partition count and
// replication factor. Thread-safe.
class TopicAutoCreator {
 public:
  TopicAutoCreator();
  // Runs the callbacks still queued with UNAVAILABLE, then stops the worker.
  ~TopicAutoCreator();

  // Calls `then` once `topic` exists on `cluster`: at once (on this thread)
  // when it is known to exist, otherwise on the creator's thread after
  // looking it up and, if missing, creating it. `then` gets the creation
  // error, if any; it must not block.
  void EnsureExists(backend::Cluster* cluster, const std::string& topic,
                    std::function<void(absl::Status)> then);

 private:
  struct Request {
    backend::Cluster* cluster;
    std::string topic;
    std::function<void(absl::Status)> then;
  };
  void Run();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::set<std::pair<backend::Cluster*, std::string>> existing_ ABSL_GUARDED_BY(mu_);
  std::deque<Request> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;
};

}  // namespace ferry::publish
