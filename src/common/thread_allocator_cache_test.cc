// Linked with ferryd's allocator (jemalloc unless the build turned it off).
#include "common/thread_allocator_cache.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <thread>

#include "common/jemalloc_control.h"

namespace ferry {
namespace {

bool CacheEnabled() {
  bool enabled = false;
  size_t size = sizeof(enabled);
  EXPECT_EQ(mallctl("thread.tcache.enabled", &enabled, &size, nullptr, 0), 0);
  return enabled;
}

TEST(ThreadAllocatorCache, TurnsOffTheCallingThreadsCacheOnly) {
  if (mallctl == nullptr) GTEST_SKIP() << "built without jemalloc";
  ASSERT_TRUE(CacheEnabled());
  std::thread([] {
    EXPECT_TRUE(DisableThreadAllocatorCache());
    EXPECT_FALSE(CacheEnabled());
  }).join();
  EXPECT_TRUE(CacheEnabled()) << "other threads keep theirs";
}

}  // namespace
}  // namespace ferry
