#pragma once

#include <deque>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/cluster.h"
#include "backend/embedded/store.h"

namespace ferry::backend::embedded {

// Publishes on a thread of its own, so callers (gRPC callback threads) never
// wait for the disk. Records are appended in Enqueue order, several per
// synced write (a batch's records always in the same one); their callbacks
// run on the writer thread after the write.
class Writer {
 public:
  struct Options {
    // How long the first queued record may wait for more before the write
    // (group commit). Zero: write whatever is queued at once ("sync").
    absl::Duration linger = absl::ZeroDuration();
    // Most records per write.
    int max_batch_records = 1000;
  };

  // Runs on the writer thread after each write that appended records, with
  // the topics they were appended to (to wake their consumers).
  using OnAppended = std::function<void(const std::set<std::string>& topics)>;

  // `store` outlives the writer.
  Writer(Store* store, const Options& options, OnAppended on_appended);
  // Writes what is still queued, runs its callbacks, then stops.
  ~Writer();

  // Never blocks on I/O. The queue is unbounded: the publish path bounds the
  // bytes it holds in flight (publish.max_inflight_bytes).
  void Enqueue(Record record, PublishCallback done);
  // `done` gets one outcome per record, in order.
  void EnqueueBatch(std::vector<Record> records, BatchCallback done);

 private:
  struct Pending {
    std::vector<Record> records;
    BatchCallback done;
  };
  void Run();

  Store* const store_;
  const Options options_;
  const OnAppended on_appended_;
  absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_records_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time first_queued_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ferry::backend::embedded
