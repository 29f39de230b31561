#include "common/thread_allocator_cache.h"

#include <cstddef>

#include "common/jemalloc_control.h"

namespace ferry {

bool DisableThreadAllocatorCache() {
  if (mallctl == nullptr) return false;
  bool enabled = false;
  return mallctl("thread.tcache.enabled", nullptr, nullptr, &enabled, sizeof(enabled)) ==
         0;
}

}  // namespace ferry
