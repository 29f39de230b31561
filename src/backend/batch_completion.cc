#include "backend/batch_completion.h"

namespace ferry::backend {

BatchCompletion* BatchCompletion::Start(const RecordBatch& batch, BatchCallback done) {
  return new BatchCompletion(batch, std::move(done));
}

BatchCompletion::BatchCompletion(const RecordBatch& batch, BatchCallback done)
    : batch_(batch),
      done_(std::move(done)),
      outcomes_(batch.records.size()),
      tokens_(batch.records.size(), this),
      remaining_(batch.records.size() + 1) {}

std::pair<BatchCompletion*, size_t> BatchCompletion::FromToken(void* token) {
  auto* slot = static_cast<BatchCompletion**>(token);
  BatchCompletion* completion = *slot;
  return {completion, static_cast<size_t>(slot - completion->tokens_.data())};
}

bool BatchCompletion::FailedBehindKey(size_t index) {
  if (!any_failed_.load(std::memory_order_acquire)) return false;
  const std::string_view key = OrderingKeyOf(batch_.records[index]);
  if (key.empty()) return false;
  PublishOutcome earlier;
  {
    absl::MutexLock lock(&mu_);
    auto it = failed_keys_.find(key);
    if (it == failed_keys_.end()) return false;
    earlier = outcomes_[it->second];
  }
  earlier.behind_failed_key = true;
  // It never reached the cluster: not evidence about the cluster's health.
  earlier.counts_against_cluster = false;
  earlier.partition = -1;
  Finish(index, std::move(earlier));
  return true;
}

void BatchCompletion::Finish(size_t index, PublishOutcome outcome) {
  const bool failed = !outcome.status.ok();
  outcomes_[index] = std::move(outcome);
  if (failed) {
    if (const std::string_view key = OrderingKeyOf(batch_.records[index]); !key.empty()) {
      absl::MutexLock lock(&mu_);
      failed_keys_.try_emplace(key, index);
      any_failed_.store(true, std::memory_order_release);
    }
  }
  Release();
}

void BatchCompletion::Submitted() { Release(); }

void BatchCompletion::Release() {
  if (remaining_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // `batch_` may be gone once done_ returned; nothing below reads it.
  done_(outcomes_);
  delete this;
}

}  // namespace ferry::backend
