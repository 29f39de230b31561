// A by-hand trace of where published messages spend their time (the SDK's
// sender thread, ferryd's batch path, publish_bench's passes): rows of
// steady_clock stamps, one tab-separated file per tracer. Off unless the
// environment names a directory in FERRY_STAGE_TRACE; Open then returns null,
// so traced code pays one null check per batch. Header-only, shared by ferryd
// and the C++ SDK (as proto_wire_writer.h).
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace ferry::stage_trace {

// The clock of every stamp: CLOCK_MONOTONIC, the same in every process of
// the machine, so rows of the SDK, ferryd and the bench line up.
inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

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
    FILE* file = std::fopen(path.c_str(), "w");
    if (file == nullptr) return nullptr;
    std::fprintf(file, "%.*s\n", static_cast<int>(header.size()), header.data());
    return std::unique_ptr<Tracer>(new Tracer(file));
  }

  ~Tracer() { std::fclose(file_); }
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // One line: `key`, then the numbers, tab-separated. Thread-safe.
  void Row(std::string_view key, std::initializer_list<int64_t> numbers) {
    std::string line(key);
    for (int64_t n : numbers) {
      line += '\t';
      line += std::to_string(n);
    }
    line += '\n';
    std::lock_guard lock(mu_);
    std::fwrite(line.data(), 1, line.size(), file_);
  }

 private:
  explicit Tracer(FILE* file) : file_(file) {
    std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
  }

  std::mutex mu_;
  FILE* file_;
};

}  // namespace ferry::stage_trace
