#include "common/thread_allocator_cache.h"

#include <cstddef>

// jemalloc's control interface, weak: null when the binary runs on another
// allocator (tests, sanitizer builds).
extern "C" int mallctl(const char* name, void* old_value, size_t* old_size,
                       void* new_value, size_t new_size) __attribute__((weak));

namespace ferry {

bool DisableThreadAllocatorCache() {
  if (mallctl == nullptr) return false;
  bool enabled = false;
  return mallctl("thread.tcache.enabled", nullptr, nullptr, &enabled, sizeof(enabled)) ==
         0;
}

}  // namespace ferry
