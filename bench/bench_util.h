// Helpers shared by the benchmarks (publish_bench, consume_bench): clocks,
// logging, /proc readings (CPU time, RSS), an RSS sampler, percentiles and
// the start-up of the broker and ferryd they measure against.
#ifndef FERRY_BENCH_BENCH_UTIL_H_
#define FERRY_BENCH_BENCH_UTIL_H_

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"

namespace ferry::bench {

using Clock = std::chrono::steady_clock;

inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             Clock::now().time_since_epoch())
      .count();
}

template <typename... Args>
void Log(fmt::format_string<Args...> format, Args&&... args) {
  fmt::print(stderr, "[bench] {}\n", fmt::format(format, std::forward<Args>(args)...));
  std::fflush(stderr);
}

// utime + stime of `pid` (0: this process) in seconds; -1 if unreadable.
inline double CpuSeconds(int pid) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/stat")
                            : fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!std::getline(in, line)) return -1;
  // The command name (field 2) may hold spaces: fields are counted after ')'.
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A field of /proc/<pid>/status in KiB ("VmRSS", "VmHWM"); -1 if unreadable.
inline int64_t StatusKb(int pid, const std::string& name) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) == 0) return std::stoll(line.substr(name.size() + 1));
  }
  return -1;
}

// Busy time of all CPUs together, in seconds.
inline double MachineBusySeconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
       steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return static_cast<double>(user + nice + system + irq + softirq + steal) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Samples VmRSS of one process every 20 ms on its own thread; Peak() is the
// highest sample since the last Reset().
class RssSampler {
 public:
  explicit RssSampler(int pid) : pid_(pid) {
    if (pid_ > 0) thread_ = std::thread([this] { Run(); });
  }
  ~RssSampler() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  RssSampler(const RssSampler&) = delete;
  RssSampler& operator=(const RssSampler&) = delete;

  void Reset() { peak_kb_.store(pid_ > 0 ? StatusKb(pid_, "VmRSS") : -1); }
  int64_t Peak() const { return peak_kb_.load(); }
  int64_t OverallPeak() const { return overall_kb_.load(); }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(20), [this] { return stop_; })) {
      const int64_t kb = StatusKb(pid_, "VmRSS");
      int64_t seen = peak_kb_.load();
      while (kb > seen && !peak_kb_.compare_exchange_weak(seen, kb)) {
      }
      seen = overall_kb_.load();
      while (kb > seen && !overall_kb_.compare_exchange_weak(seen, kb)) {
      }
    }
  }

  const int pid_;
  std::atomic<int64_t> peak_kb_{-1};
  std::atomic<int64_t> overall_kb_{-1};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Nearest-rank percentile of `sorted` (ascending, nanoseconds) in
// milliseconds; NAN when empty.
inline double PercentileMs(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return NAN;
  auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1e6;
}

inline std::string Mib(int64_t kb) {
  return kb < 0 ? "n/a" : fmt::format("{:.0f} MiB", static_cast<double>(kb) / 1024);
}

// Synchronous writes per second the filesystem of `dir` sustains: appends
// 4 KiB blocks to a temporary file there, each followed by fdatasync, for
// `seconds`; the file is removed. -1 (logged) on failure. This bounds an
// embedded store that fsyncs before acknowledging: at most this many
// acknowledged writes per second, however many messages share each one.
inline double FsyncRate(const std::string& dir, double seconds) {
  std::string path = dir + "/fsync-probe-XXXXXX";
  const int fd = mkstemp(path.data());
  if (fd < 0) {
    Log("fsync probe in {}: {}", dir, std::strerror(errno));
    return -1;
  }
  const std::string block(4096, 'f');
  int64_t syncs = 0;
  const int64_t start = NowNs();
  const auto until = start + static_cast<int64_t>(seconds * 1e9);
  int64_t now = start;
  while (now < until) {
    if (write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size()) ||
        fdatasync(fd) != 0) {
      Log("fsync probe in {}: {}", dir, std::strerror(errno));
      syncs = -1;
      break;
    }
    ++syncs;
    now = NowNs();
  }
  close(fd);
  unlink(path.c_str());
  if (syncs < 0) return -1;
  return static_cast<double>(syncs) / (static_cast<double>(now - start) / 1e9);
}

// The JVM's pid of a broker the harness started (from its state directory).
inline int BrokerPidFromState(const testing::KafkaBroker& broker) {
  const char* root = std::getenv("FERRY_KAFKA_STATE");
  std::ifstream in(fmt::format(
      "{}/{}/broker.pid", root != nullptr ? root : "/tmp/ferry-kafka", broker.name()));
  int pid = 0;
  in >> pid;
  return pid;
}

// "KEY=VALUE" entries into `env`; false (with a message on stderr) if one
// has no '='. `option` names the flag in the message.
inline bool ParseKeyValues(const std::vector<std::string>& entries, const char* option,
                           std::map<std::string, std::string>* out) {
  for (const std::string& entry : entries) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos) {
      fmt::print(stderr, "{} {}: expected KEY=VALUE\n", option, entry);
      return false;
    }
    (*out)[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return true;
}

// The broker and ferryd a benchmark runs against: either started here (and
// removed when this is destroyed) or given on the command line.
struct Infra {
  std::unique_ptr<testing::KafkaBroker> broker;
  std::unique_ptr<testing::FerrydProcess> node;
  std::string bootstrap;
  std::string ferryd;
  int broker_pid = 0;
  int ferryd_pid = 0;
};

// Starts a broker unless `bootstrap` is set, then a ferryd with the YAML
// `make_yaml(bootstrap)` and `env` unless `ferryd` is set. False (logged)
// on failure.
template <typename MakeYaml>
bool StartInfra(const std::string& bootstrap, int broker_pid, const std::string& ferryd,
                int ferryd_pid, MakeYaml make_yaml,
                const std::map<std::string, std::string>& env, Infra* infra) {
  infra->bootstrap = bootstrap;
  infra->broker_pid = broker_pid;
  if (infra->bootstrap.empty()) {
    Log("starting a Kafka broker");
    auto started = testing::KafkaBroker::Start("bench");
    if (!started.ok()) {
      Log("broker: {}", started.status().ToString());
      return false;
    }
    infra->broker = *std::move(started);
    infra->bootstrap = infra->broker->bootstrap();
    infra->broker_pid = BrokerPidFromState(*infra->broker);
  }
  infra->ferryd = ferryd;
  infra->ferryd_pid = ferryd_pid;
  if (infra->ferryd.empty()) {
    Log("starting ferryd");
    auto started = testing::FerrydProcess::Start(make_yaml(infra->bootstrap), env);
    if (!started.ok()) {
      Log("ferryd: {}", started.status().ToString());
      return false;
    }
    infra->node = *std::move(started);
    infra->ferryd = infra->node->grpc_address();
    infra->ferryd_pid = infra->node->process().pid();
  }
  Log("broker {} (pid {}), ferryd {} (pid {})", infra->bootstrap, infra->broker_pid,
      infra->ferryd, infra->ferryd_pid);
  return true;
}

// Creates `topic` with `partitions` partitions through ferryd (the `ferry`
// CLI). False (logged) on failure.
inline bool CreateTopic(const std::string& ferryd, const std::string& topic,
                        int partitions) {
  auto done = testing::RunFerryCli({"--server", ferryd, "topics", "create", topic,
                                    "--partitions", std::to_string(partitions)});
  if (!done.ok() || done->exit_code != 0) {
    Log("creating topic {} failed: {}", topic,
        done.ok() ? done->err : done.status().ToString());
    return false;
  }
  return true;
}

}  // namespace ferry::bench

#endif  // FERRY_BENCH_BENCH_UTIL_H_
