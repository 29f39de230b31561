#include "server/process_stats.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace ferry::server {

std::optional<ProcessStats> ReadProcessStats() {
  std::ifstream stat_file("/proc/self/stat");
  std::string stat;
  if (!std::getline(stat_file, stat)) return std::nullopt;
  // The command name (field 2) may hold spaces and parentheses: fields are
  // counted from the last ')'. utime and stime are fields 14 and 15.
  const size_t name_end = stat.rfind(')');
  if (name_end == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(name_end + 2));
  std::string skip;
  for (int field = 3; field < 14; ++field) fields >> skip;
  long utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;

  std::ifstream statm_file("/proc/self/statm");
  long size_pages = 0, resident_pages = 0;
  if (!(statm_file >> size_pages >> resident_pages)) return std::nullopt;

  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  return ProcessStats{
      .cpu_seconds = static_cast<double>(utime + stime) / ticks,
      .resident_memory_bytes = static_cast<double>(resident_pages) * page};
}

}  // namespace ferry::server
