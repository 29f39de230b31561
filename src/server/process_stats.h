#pragma once

// CPU time and resident memory of this process, from /proc/self, for the
// node's own metrics (ferry_process_cpu_seconds, ..._resident_memory_bytes):
// what an operator compares across nodes and against a direct client.

#include <optional>

namespace ferry::server {

struct ProcessStats {
  double cpu_seconds = 0;  // user + system, since start
  double resident_memory_bytes = 0;
};

// nullopt when /proc cannot be read (not Linux, or a restricted sandbox).
std::optional<ProcessStats> ReadProcessStats();

}  // namespace ferry::server
