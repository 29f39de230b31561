#include "server/process_stats.h"

#include <gtest/gtest.h>

#include <ctime>
#include <vector>

namespace ferry::server {
namespace {

TEST(ProcessStats, CpuTimeGrowsWithWorkAndMemoryWithAllocations) {
  std::optional<ProcessStats> before = ReadProcessStats();
  ASSERT_TRUE(before.has_value());
  EXPECT_GT(before->resident_memory_bytes, 0);

  // Spin for a quarter second of CPU (measured by the C library, however
  // busy the machine is) and touch 64 MiB.
  volatile uint64_t sink = 0;
  const std::clock_t end = std::clock() + CLOCKS_PER_SEC / 4;
  while (std::clock() < end) sink = sink + 1;
  std::vector<char> block(64 << 20, 1);

  std::optional<ProcessStats> after = ReadProcessStats();
  ASSERT_TRUE(after.has_value());
  EXPECT_GE(after->cpu_seconds - before->cpu_seconds, 0.1);
  EXPECT_GE(after->resident_memory_bytes - before->resident_memory_bytes, 32 << 20);
  EXPECT_EQ(block[block.size() - 1], 1);
}

}  // namespace
}  // namespace ferry::server
