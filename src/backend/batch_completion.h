#pragma once

// The bookkeeping of one RecordBatch for a backend that submits its records
// one at a time (Kafka, the fake): each record's outcome, the failures that
// hold back later records of the same ordering key, and the batch's
// callback, run once when the last record finished.
//
//   auto* completion = BatchCompletion::Start(batch, std::move(done));
//   for (size_t i = 0; i < batch.records.size(); ++i) {
//     if (completion->FailedBehindKey(i)) continue;
//     Submit(batch.records[i], completion->Token(i));  // Finish(i, ...) later
//   }
//   completion->Submitted();
//
// Ownership: deletes itself right after running the callback, which happens
// in the last of Finish() and Submitted(); neither the object nor `batch`
// may be touched by the caller after its last call.
// Threading: Finish() may run on any thread, concurrently with the
// submitter's calls. Cost: one allocation per batch plus one outcome and
// one token per record; a lock only on the failure path.

#include <atomic>
#include <cstddef>
#include <map>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "backend/cluster.h"

namespace ferry::backend {

class BatchCompletion {
 public:
  // Holds one share for the submitter, which Submitted() releases: records
  // finishing while the submitter still iterates cannot end the batch.
  static BatchCompletion* Start(const RecordBatch& batch, BatchCallback done);

  BatchCompletion(const BatchCompletion&) = delete;
  BatchCompletion& operator=(const BatchCompletion&) = delete;

  // Before submitting record `index`: when an earlier record with its
  // ordering key already failed, finishes it with that failure
  // (behind_failed_key set) and answers true; it must not be submitted.
  bool FailedBehindKey(size_t index);
  // Record `index`'s outcome; exactly once per record not held back.
  void Finish(size_t index, PublishOutcome outcome);
  // The submitter is done with the batch.
  void Submitted();

  // An opaque pointer naming record `index` (librdkafka's per-message
  // opaque), turned back by FromToken.
  void* Token(size_t index) { return &tokens_[index]; }
  static std::pair<BatchCompletion*, size_t> FromToken(void* token);

  const RecordBatch& batch() const { return batch_; }

 private:
  BatchCompletion(const RecordBatch& batch, BatchCallback done);
  ~BatchCompletion() = default;
  void Release();

  const RecordBatch& batch_;
  BatchCallback done_;
  std::vector<PublishOutcome> outcomes_;
  // Every element points at this object; a token is an element's address.
  std::vector<BatchCompletion*> tokens_;
  // Records not finished yet, plus the submitter's share.
  std::atomic<size_t> remaining_;
  // Set once failed_keys_ has an entry: the lock is taken only then.
  std::atomic<bool> any_failed_{false};
  absl::Mutex mu_;
  // The first failed record of each ordering key.
  std::map<std::string_view, size_t> failed_keys_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::backend
