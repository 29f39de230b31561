// A by-hand trace of where published messages spend their time (the SDK's
// sender thread, ferryd's batch path, publish_bench's passes): rows of
// steady_clock stamps, one tab-separated file per tracer. Off unless the
// environment names a directory in FERRY_STAGE_TRACE; Open then returns null,
// so traced code pays one null check (per message in the SDK, per batch in
// ferryd). Header-only, shared by ferryd
// and the C++ SDK (as proto_wire_writer.h).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace ferry::stage_trace {

// The clock of every stamp: CLOCK_MONOTONIC, the same in every process of
// the machine, so rows of the SDK, ferryd and the bench line up.
inline int64_t Ns(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch())
      .count();
}
inline int64_t NowNs() { return Ns(std::chrono::steady_clock::now()); }

class Tracer {
 public:
  // Null unless FERRY_STAGE_TRACE is set (or the file cannot be created).
  // The file is DIR/WHO-PID-N.tsv; its first line is `header`.
  static std::unique_ptr<Tracer> Open(std::string_view who, std::string_view header) {
    const char* dir = std::getenv("FERRY_STAGE_TRACE");
    if (dir == nullptr || *dir == '\0') return nullptr;
    static std::atomic<int> opened{0};
    const std::string path = std::string(dir) + "/" + std::string(who) + "-" +
                             std::to_string(getpid()) + "-" +
                             std::to_string(opened.fetch_add(1)) + ".tsv";
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      // Whoever set the variable expects files: say why there are none.
      const int error = errno;
      std::fprintf(stderr, "FERRY_STAGE_TRACE: cannot create %s: %s; not tracing\n",
                   path.c_str(), std::strerror(error));
      return nullptr;
    }
    auto tracer = std::unique_ptr<Tracer>(new Tracer(fd));
    tracer->pending_.append(header).push_back('\n');
    return tracer;
  }

  ~Tracer() {
    WriteOut();
    close(fd_);
  }
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // One line: `key`, then the numbers, tab-separated. Thread-safe. Whole
  // lines go to the file at least once a second, so a process that exits
  // without destroying its tracer (ferryd) loses at most its last second.
  void Row(std::string_view key, std::initializer_list<int64_t> numbers) {
    std::string line(key);
    for (int64_t n : numbers) {
      line += '\t';
      line += std::to_string(n);
    }
    line += '\n';
    const int64_t now = NowNs();
    std::lock_guard lock(mu_);
    pending_ += line;
    if (pending_.size() >= kWriteBytes || now - written_ns_ >= kWriteNs) {
      WriteOut();
      written_ns_ = now;
    }
  }

 private:
  // Small writes: Row runs on the threads being traced.
  static constexpr size_t kWriteBytes = 64 << 10;
  static constexpr int64_t kWriteNs = 1000000000;

  explicit Tracer(int fd) : fd_(fd) {}

  // Under mu_ or from the destructor.
  void WriteOut() {
    for (size_t done = 0; done < pending_.size();) {
      const ssize_t n = write(fd_, pending_.data() + done, pending_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // A full disk loses the trace, not the process.
      done += static_cast<size_t>(n);
    }
    pending_.clear();
  }

  std::mutex mu_;
  const int fd_;
  std::string pending_;  // Whole lines not yet written.
  int64_t written_ns_ = 0;
};

}  // namespace ferry::stage_trace
