// The profile drivers zero and dump callgrind's counters around their
// window (publish_profile, direct_profile, consume_profile). Without
// valgrind's header at build time the macros do nothing, and
// NoteCallgrindWindow says so, so that a callgrind run does not silently
// count the whole process.
#ifndef FERRY_BENCH_CALLGRIND_WINDOW_H_
#define FERRY_BENCH_CALLGRIND_WINDOW_H_

#include <cstdio>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define FERRY_CALLGRIND_WINDOW 1
#else
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS
#define FERRY_CALLGRIND_WINDOW 0
#endif

namespace ferry::bench {

inline void NoteCallgrindWindow() {
  if (!FERRY_CALLGRIND_WINDOW) {
    std::fputs(
        "note: built without valgrind/callgrind.h: callgrind's counters are not zeroed "
        "or dumped around the window (a callgrind run counts the whole process)\n",
        stderr);
  }
}

}  // namespace ferry::bench

#endif  // FERRY_BENCH_CALLGRIND_WINDOW_H_
