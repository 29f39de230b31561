#include "backend/embedded/writer.h"

#include <iterator>
#include <utility>

namespace ferry::backend::embedded {

Writer::Writer(Store* store, const Options& options, OnAppended on_appended)
    : store_(store),
      options_(options),
      on_appended_(std::move(on_appended)),
      thread_([this] { Run(); }) {}

Writer::~Writer() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void Writer::Enqueue(Record record, PublishCallback done) {
  std::vector<Record> records;
  records.push_back(std::move(record));
  EnqueueBatch(std::move(records),
               [done = std::move(done)](std::span<const PublishOutcome> outcomes) {
                 done(outcomes[0]);
               });
}

void Writer::EnqueueBatch(std::vector<Record> records, BatchCallback done) {
  absl::MutexLock lock(&mu_);
  if (queue_.empty()) first_queued_ = absl::Now();
  queued_records_ += records.size();
  queue_.push_back({std::move(records), std::move(done)});
}

void Writer::Run() {
  const size_t max_batch = static_cast<size_t>(options_.max_batch_records);
  while (true) {
    std::vector<Record> records;
    // Each batch's callback and its number of records.
    std::vector<std::pair<BatchCallback, size_t>> callbacks;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Writer* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu_) {
            return w->stopping_ || !w->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping, nothing left
      if (options_.linger > absl::ZeroDuration() && !stopping_) {
        auto full = [](Writer* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu_) {
          return w->stopping_ ||
                 w->queued_records_ >= static_cast<size_t>(w->options_.max_batch_records);
        };
        mu_.AwaitWithDeadline(absl::Condition(+full, this),
                              first_queued_ + options_.linger);
      }
      // Whole batches, at least one, up to max_batch records.
      while (!queue_.empty() &&
             (records.empty() ||
              records.size() + queue_.front().records.size() <= max_batch)) {
        Pending& next = queue_.front();
        const size_t count = next.records.size();
        queued_records_ -= count;
        std::move(next.records.begin(), next.records.end(), std::back_inserter(records));
        callbacks.emplace_back(std::move(next.done), count);
        queue_.pop_front();
      }
      // Records left over have waited their linger already: first_queued_
      // stays, so they go in the next write without waiting again.
    }
    std::vector<PublishOutcome> outcomes =
        store_->Append(records, absl::ToUnixMillis(absl::Now()));
    std::set<std::string> appended_to;
    for (size_t i = 0; i < records.size(); ++i) {
      if (outcomes[i].status.ok()) appended_to.insert(records[i].topic);
    }
    if (!appended_to.empty()) on_appended_(appended_to);
    size_t first = 0;
    for (auto& [done, count] : callbacks) {
      done(std::span<const PublishOutcome>(outcomes).subspan(first, count));
      first += count;
    }
  }
}

}  // namespace ferry::backend::embedded
