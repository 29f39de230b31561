#pragma once

namespace ferry {

// Turns the allocator's per-thread cache off for the calling thread (jemalloc,
// which ferryd links; a no-op under any other allocator). For threads that
// are many and mostly asleep, such as the embedded store's member thread per
// consumer group: each jemalloc thread cache keeps up to a few hundred freed
// objects per size class for as long as its thread lives, and what a member
// thread allocates (the records it reads) is freed on other threads, so its
// cache keeps refilling from the arena. At 1,000 groups that was ~150 MiB of
// RSS in no one's use (bench/RESULTS.md). Such a thread allocates a batch at
// a time and sleeps, so going to the arena directly costs it little.
// Returns true if a cache was turned off.
bool DisableThreadAllocatorCache();

}  // namespace ferry
