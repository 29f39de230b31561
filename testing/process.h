#pragma once

// Child processes for integration tests: run a command to completion, or keep
// a long-running one (ferryd) with its output in a log file.

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::testing {

struct ProcessResult {
  // The exit status, or 128 + signal number when killed by a signal.
  int exit_code = 0;
  std::string out = {};
  std::string err = {};
};

// Runs argv[0] (looked up in PATH) with the current environment plus `env`
// and `input` as its standard input, in `working_dir` (empty: this
// process's). Kills it and returns DEADLINE_EXCEEDED after `timeout`.
absl::StatusOr<ProcessResult> RunProcess(
    const std::vector<std::string>& argv,
    const std::map<std::string, std::string>& env = {},
    absl::Duration timeout = absl::Seconds(60), const std::string& input = "",
    const std::string& working_dir = "");

// A running child whose stdout and stderr go to `log_path`, started in
// `working_dir` (empty: this process's). The destructor SIGKILLs it if it is
// still running and reaps it.
class Subprocess {
 public:
  static absl::StatusOr<std::unique_ptr<Subprocess>> Spawn(
      const std::vector<std::string>& argv, const std::string& log_path,
      const std::map<std::string, std::string>& env = {},
      const std::string& working_dir = "");
  ~Subprocess();

  pid_t pid() const { return pid_; }
  bool Running();
  void Signal(int signal);
  // Waits for the exit; the status as in ProcessResult::exit_code, or
  // DEADLINE_EXCEEDED if it is still running after `timeout`.
  absl::StatusOr<int> Wait(absl::Duration timeout);

 private:
  friend absl::StatusOr<ProcessResult> RunProcess(
      const std::vector<std::string>&, const std::map<std::string, std::string>&,
      absl::Duration, const std::string&, const std::string&);
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  bool reaped_ = false;
  int exit_code_ = 0;
};

// Loopback ports that were free a moment ago (bound together, so distinct).
// Another process may take one before it is used; that shows up as a bind
// failure in the test, never as a hang.
absl::StatusOr<std::vector<int>> PickFreePorts(int count);

// The whole content of a file; empty if it cannot be read.
std::string ReadFile(const std::string& path);

}  // namespace ferry::testing
