#include "backend/kafka/arena_purger.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstring>

#include "common/jemalloc_control.h"

namespace ferry::backend::kafka {
namespace {

template <typename T>
int Read(const std::string& name, T& value) {
  size_t size = sizeof(value);
  return mallctl(name.c_str(), &value, &size, nullptr, 0);
}

}  // namespace

bool IdlePurgeRule::ShouldPurge(uint64_t large_allocations, size_t dirty_pages) {
  const bool idle = last_large_allocations_ == large_allocations;
  last_large_allocations_ = large_allocations;
  return idle && dirty_pages > 0;
}

ArenaPurger::ArenaPurger(unsigned arena, std::chrono::milliseconds interval)
    : large_allocations_name_(fmt::format("stats.arenas.{}.large.nmalloc", arena)),
      dirty_pages_name_(fmt::format("stats.arenas.{}.pdirty", arena)),
      purge_name_(fmt::format("arena.{}.purge", arena)),
      interval_(interval),
      thread_(&ArenaPurger::Run, this) {}

ArenaPurger::~ArenaPurger() { Stop(); }

void ArenaPurger::Stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  stop_requested_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) {
    thread_.join();
  }
}

void ArenaPurger::Run() {
  std::unique_lock lock(mutex_);
  while (!stop_requested_.wait_for(lock, interval_, [this] { return stop_; })) {
    // mallctl takes jemalloc's own locks: never under ours.
    lock.unlock();
    const bool looking = Look();
    lock.lock();
    if (!looking) return;
  }
}

bool ArenaPurger::Look() {
  // Statistics are a snapshot taken at the last "epoch" write.
  uint64_t epoch = 1;
  int error = mallctl("epoch", nullptr, nullptr, &epoch, sizeof(epoch));
  uint64_t large_allocations = 0;
  size_t dirty_pages = 0;
  if (error == 0) error = Read(large_allocations_name_, large_allocations);
  if (error == 0) error = Read(dirty_pages_name_, dirty_pages);
  if (error == 0 && rule_.ShouldPurge(large_allocations, dirty_pages)) {
    error = mallctl(purge_name_.c_str(), nullptr, nullptr, nullptr, 0);
    if (error == 0) {
      purges_.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("fetch arena: idle, {} dirty pages given back", dirty_pages);
    }
  }
  if (error != 0) {
    spdlog::warn(
        "fetch arena: jemalloc refused its statistics or a purge ({}); the "
        "arena keeps its pages",
        strerror(error));
    return false;
  }
  return true;
}

}  // namespace ferry::backend::kafka
