#include "testing/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace ferry::testing {
namespace {

int ExitCode(int wait_status) {
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

std::vector<std::string> Environment(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    size_t eq = entry.find('=');
    if (eq != std::string::npos) merged[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& [k, v] : extra) merged[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : merged) out.push_back(absl::StrCat(k, "=", v));
  return out;
}

std::vector<char*> Pointers(std::vector<std::string>& words) {
  std::vector<char*> out;
  for (std::string& w : words) out.push_back(w.data());
  out.push_back(nullptr);
  return out;
}

// Spawns argv with stdin from `in_path` and stdout/stderr to the given files
// (opened for append), in `working_dir` (empty: this process's). Descriptors
// beyond 2 are not inherited.
absl::StatusOr<pid_t> SpawnRedirected(const std::vector<std::string>& argv,
                                      const std::string& in_path,
                                      const std::string& out_path,
                                      const std::string& err_path,
                                      const std::map<std::string, std::string>& env,
                                      const std::string& working_dir = "") {
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = Environment(env);
  std::vector<char*> arg_ptrs = Pointers(args);
  std::vector<char*> env_ptrs = Pointers(envs);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  if (!working_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, working_dir.c_str());
  }
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, arg_ptrs[0], &actions, nullptr, arg_ptrs.data(),
                        env_ptrs.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return absl::ErrnoToStatus(rc, absl::StrCat("spawn ", argv[0]));
  return pid;
}

std::string TempPath(std::string_view tag) {
  static std::atomic<int> counter{0};
  return absl::StrCat(P_tmpdir, "/ferry-test-", getpid(), "-", counter++, "-",
                      std::string(tag));
}

}  // namespace

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

absl::StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                         const std::map<std::string, std::string>& env,
                                         absl::Duration timeout, const std::string& input,
                                         const std::string& working_dir) {
  const std::string in_path = TempPath("in");
  const std::string out_path = TempPath("out");
  const std::string err_path = TempPath("err");
  std::ofstream(in_path) << input;
  auto pid = SpawnRedirected(argv, in_path, out_path, err_path, env, working_dir);
  if (!pid.ok()) return pid.status();
  Subprocess child(*pid);
  auto code = child.Wait(timeout);
  ProcessResult result{.exit_code = code.ok() ? *code : -1,
                       .out = ReadFile(out_path),
                       .err = ReadFile(err_path)};
  unlink(in_path.c_str());
  unlink(out_path.c_str());
  unlink(err_path.c_str());
  if (!code.ok()) {
    return absl::DeadlineExceededError(
        absl::StrCat(argv[0], " still running after ", absl::FormatDuration(timeout),
                     "; stdout:\n", result.out, "\nstderr:\n", result.err));
  }
  return result;
}

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Spawn(
    const std::vector<std::string>& argv, const std::string& log_path,
    const std::map<std::string, std::string>& env, const std::string& working_dir) {
  auto pid = SpawnRedirected(argv, "/dev/null", log_path, log_path, env, working_dir);
  if (!pid.ok()) return pid.status();
  return std::unique_ptr<Subprocess>(new Subprocess(*pid));
}

Subprocess::~Subprocess() {
  if (!reaped_) {
    kill(pid_, SIGKILL);
    Wait(absl::InfiniteDuration()).IgnoreError();
  }
}

bool Subprocess::Running() { return !Wait(absl::ZeroDuration()).ok(); }

void Subprocess::Signal(int signal) {
  if (!reaped_) kill(pid_, signal);
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!reaped_) {
    int status = 0;
    pid_t rc = waitpid(pid_, &status, WNOHANG);
    if (rc == pid_) {
      reaped_ = true;
      exit_code_ = ExitCode(status);
    } else if (rc < 0 && errno != EINTR) {
      return absl::ErrnoToStatus(errno, "waitpid");
    } else if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("process still running");
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  return exit_code_;
}

absl::StatusOr<std::vector<int>> PickFreePorts(int count) {
  std::vector<int> fds;
  std::vector<int> ports;
  absl::Status status;
  for (int i = 0; i < count && status.ok(); ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      status = absl::ErrnoToStatus(errno, "socket");
      break;
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      status = absl::ErrnoToStatus(errno, "bind 127.0.0.1:0");
      break;
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) close(fd);
  if (!status.ok()) return status;
  return ports;
}

}  // namespace ferry::testing
