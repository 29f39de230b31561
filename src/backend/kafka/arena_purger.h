#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace ferry::backend::kafka {

// The fetch arena never purges by decay (dirty_decay_ms -1): a decay purges
// gradually under steady churn and lost most of the arena's saving
// (bench/RESULTS.md, fetcharena2). Its pages are instead given back only
// once fetching has stopped: an arena that made no large allocation (a
// fetch response carrying records; an idle long poll's are small) between
// two looks, and holds dirty pages, is purged at the second look.
class IdlePurgeRule {
 public:
  // `large_allocations`: the arena's cumulative count at this look;
  // `dirty_pages`: its unused pages still resident. The first look only
  // takes the baseline.
  bool ShouldPurge(uint64_t large_allocations, size_t dirty_pages);

 private:
  std::optional<uint64_t> last_large_allocations_;
};

// A thread that looks at one jemalloc arena every `interval` and purges it
// by IdlePurgeRule. Stops by Stop() or destruction; stops by itself, with
// one warning, if jemalloc refuses to report or purge (then the arena keeps
// its pages, as without the purger). Requires jemalloc (the caller checks
// that mallctl is there).
class ArenaPurger {
 public:
  ArenaPurger(unsigned arena, std::chrono::milliseconds interval);
  ~ArenaPurger();
  ArenaPurger(const ArenaPurger&) = delete;
  ArenaPurger& operator=(const ArenaPurger&) = delete;

  // Wakes the thread and joins it; idempotent, from one thread at a time.
  void Stop();

  // How many times the arena was purged.
  uint64_t purges() const { return purges_.load(std::memory_order_relaxed); }

 private:
  void Run();
  // False where jemalloc refused; the thread then stops.
  bool Look();

  const std::string large_allocations_name_;
  const std::string dirty_pages_name_;
  const std::string purge_name_;
  const std::chrono::milliseconds interval_;
  IdlePurgeRule rule_;  // The thread's alone.
  std::atomic<uint64_t> purges_{0};
  std::mutex mutex_;
  std::condition_variable stop_requested_;
  bool stop_ = false;   // Guarded by mutex_.
  std::thread thread_;  // Last: starts once the members above exist.
};

}  // namespace ferry::backend::kafka
