// CPU time of the calling thread, so that other processes on a busy machine
// do not count (they still share caches and cores, so compare on an idle one).
#ifndef FERRY_BENCH_THREAD_CPU_H_
#define FERRY_BENCH_THREAD_CPU_H_

#include <time.h>

#include <cstdint>

namespace ferry::bench {

inline int64_t ThreadCpuNs() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

}  // namespace ferry::bench

#endif  // FERRY_BENCH_THREAD_CPU_H_
