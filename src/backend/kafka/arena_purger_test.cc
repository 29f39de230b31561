// Linked with ferryd's allocator (jemalloc unless the build turned it off).
#include "backend/kafka/arena_purger.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/jemalloc_control.h"

namespace ferry::backend::kafka {
namespace {

using std::chrono::milliseconds;

// Larger than jemalloc's thread caches take: allocated from the arena itself.
constexpr size_t kFetchSized = 1 << 20;
constexpr milliseconds kInterval{20};

TEST(IdlePurgeRule, PurgesOnlyAfterAWholeIntervalWithoutLargeAllocations) {
  IdlePurgeRule rule;
  EXPECT_FALSE(rule.ShouldPurge(5, 100)) << "the first look is the baseline";
  EXPECT_TRUE(rule.ShouldPurge(5, 100));
  EXPECT_FALSE(rule.ShouldPurge(5, 0)) << "nothing to give back";
  EXPECT_FALSE(rule.ShouldPurge(6, 100)) << "one allocation since the last look";
  EXPECT_FALSE(rule.ShouldPurge(9, 100));
  EXPECT_TRUE(rule.ShouldPurge(9, 100));
  EXPECT_TRUE(rule.ShouldPurge(9, 7)) << "pages freed after the purge";
}

// A new arena that, like the fetch arena, never purges by decay.
unsigned KeepingArena() {
  unsigned arena = 0;
  size_t size = sizeof(arena);
  EXPECT_EQ(mallctl("arenas.create", &arena, &size, nullptr, 0), 0);
  ssize_t never = -1;
  const std::string name = "arena." + std::to_string(arena) + ".dirty_decay_ms";
  EXPECT_EQ(mallctl(name.c_str(), nullptr, nullptr, &never, sizeof(never)), 0);
  return arena;
}

void Bind(unsigned arena) {
  ASSERT_EQ(mallctl("thread.arena", nullptr, nullptr, &arena, sizeof(arena)), 0);
}

size_t DirtyPages(unsigned arena) {
  uint64_t epoch = 1;
  EXPECT_EQ(mallctl("epoch", nullptr, nullptr, &epoch, sizeof(epoch)), 0);
  const std::string name = "stats.arenas." + std::to_string(arena) + ".pdirty";
  size_t pages = 0;
  size_t size = sizeof(pages);
  EXPECT_EQ(mallctl(name.c_str(), &pages, &size, nullptr, 0), 0);
  return pages;
}

// Keeps the compiler from eliding a new/delete pair.
char* volatile touched = nullptr;

// A thread bound to `arena` that allocates and frees 16 fetch-sized buffers
// there, then stays (jemalloc purges a manual arena when its last thread
// leaves it) until destroyed.
class IdleFetcher {
 public:
  explicit IdleFetcher(unsigned arena)
      : thread_([this, arena, done = done_.get_future()] {
          Bind(arena);
          {
            std::vector<std::unique_ptr<char[]>> buffers;
            for (int i = 0; i < 16; ++i) {
              buffers.emplace_back(new char[kFetchSized]);
              touched = buffers.back().get();
            }
          }
          churned_.set_value();
          done.wait();
        }) {
    churned_.get_future().wait();
  }
  ~IdleFetcher() {
    done_.set_value();
    thread_.join();
  }

 private:
  std::promise<void> churned_;
  std::promise<void> done_;
  std::thread thread_;
};

TEST(ArenaPurger, GivesAnIdleArenasPagesBack) {
  if (mallctl == nullptr) GTEST_SKIP() << "built without jemalloc";
  const unsigned arena = KeepingArena();
  IdleFetcher fetcher(arena);
  ASSERT_GE(DirtyPages(arena), 16 * kFetchSized / 4096 / 2) << "the arena kept its pages";
  ArenaPurger purger(arena, kInterval);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (purger.purges() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(kInterval);
  }
  purger.Stop();
  EXPECT_EQ(purger.purges(), 1u);
  EXPECT_EQ(DirtyPages(arena), 0u);
}

TEST(ArenaPurger, LeavesABusyArenaAlone) {
  if (mallctl == nullptr) GTEST_SKIP() << "built without jemalloc";
  const unsigned arena = KeepingArena();
  std::atomic<bool> busy{true};
  // Fetches arrive back to back, as in a backlog, and the arena holds the
  // dirty pages of earlier ones throughout.
  std::thread fetcher([arena, &busy] {
    Bind(arena);
    {
      std::vector<std::unique_ptr<char[]>> earlier;
      for (int i = 0; i < 16; ++i) {
        earlier.emplace_back(new char[kFetchSized]);
        touched = earlier.back().get();
      }
    }
    while (busy.load()) {
      std::unique_ptr<char[]> buffer(new char[kFetchSized]);
      touched = buffer.get();
      std::this_thread::yield();
    }
  });
  // Looks far apart: the fetcher fails the test only if it gets no CPU for a
  // whole interval, which a loaded 2-core CI machine did at 40 ms.
  constexpr milliseconds kBusyInterval{250};
  ArenaPurger purger(arena, kBusyInterval);
  std::this_thread::sleep_for(kBusyInterval * 6);
  purger.Stop();
  busy = false;
  fetcher.join();
  EXPECT_EQ(purger.purges(), 0u);
}

// Needs no jemalloc: the purger stops before its first look.
TEST(ArenaPurger, StopsPromptlyAndTwice) {
  ArenaPurger purger(0, std::chrono::hours(1));
  const auto start = std::chrono::steady_clock::now();
  purger.Stop();
  purger.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(purger.purges(), 0u);
}

}  // namespace
}  // namespace ferry::backend::kafka
