#pragma once

// Keyed messages published through the C++ SDK at a steady rate, with the
// result and completion time of each, for failover tests and benchmarks that
// ask "when was the first write acknowledged on cluster X after time T?".
//
// Threading: one sender thread publishes, one collector thread polls the
// futures; FirstAckOn may be called from any thread while they run.

#include <atomic>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ferry/client/publisher.h"

namespace ferry::testing {

// One published message and, once known, its result.
struct SentMessage {
  int key = 0;  // the message's key is "key-<key>"
  int seq = 0;  // per key, in publish order; the value is "<key>:<seq>"
  std::future<client::PublishResult> future = {};
  bool done = false;
  client::PublishResult result = {};
  absl::Time published = {};  // when it was handed to the SDK
  absl::Time completed = {};
};

class SteadyTraffic {
 public:
  // Publishes to `topic` through `nodes` (the SDK's endpoints) one message
  // every `interval`, keys round-robin over `keys`. The SDK retries for up
  // to a minute, so a failover shows as latency, not as failures.
  SteadyTraffic(const std::vector<std::string>& nodes, const std::string& topic,
                absl::Duration interval, int keys);
  // Finish()es if the caller did not.
  ~SteadyTraffic();

  // The earliest completion at or after `since` of a write acknowledged on
  // `cluster`; waits up to `timeout` for one.
  std::optional<absl::Time> FirstAckOn(const std::string& cluster, absl::Time since,
                                       absl::Duration timeout);

  // Stops publishing and waits (up to a minute) for every result. The
  // messages stay valid until this object is destroyed.
  // Reads sent_ unlocked: both threads are gone by then.
  const std::vector<SentMessage>& Finish() ABSL_NO_THREAD_SAFETY_ANALYSIS;

 private:
  void Send();
  void Collect();

  const std::string topic_;
  const absl::Duration interval_;
  const int keys_;
  std::unique_ptr<client::Publisher> publisher_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> collecting_{true};
  bool finished_ = false;
  absl::Mutex mu_;
  std::vector<SentMessage> sent_ ABSL_GUARDED_BY(mu_);
  std::thread sender_;
  std::thread collector_;
};

}  // namespace ferry::testing
