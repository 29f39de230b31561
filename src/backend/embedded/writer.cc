#include "backend/embedded/writer.h"

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
  absl::MutexLock lock(&mu_);
  if (queue_.empty()) first_queued_ = absl::Now();
  queue_.push_back({std::move(record), std::move(done)});
}

void Writer::Run() {
  const size_t max_batch = static_cast<size_t>(options_.max_batch_records);
  while (true) {
    std::vector<Record> records;
    std::vector<PublishCallback> callbacks;
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
                 w->queue_.size() >= static_cast<size_t>(w->options_.max_batch_records);
        };
        mu_.AwaitWithDeadline(absl::Condition(+full, this),
                              first_queued_ + options_.linger);
      }
      const size_t count = std::min(queue_.size(), max_batch);
      records.reserve(count);
      callbacks.reserve(count);
      for (size_t i = 0; i < count; ++i) {
        records.push_back(std::move(queue_.front().record));
        callbacks.push_back(std::move(queue_.front().done));
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
    for (size_t i = 0; i < callbacks.size(); ++i) callbacks[i](std::move(outcomes[i]));
  }
}

}  // namespace ferry::backend::embedded
