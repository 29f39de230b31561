#include "testing/ferryd_process.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#if !defined(FERRYD_PATH) || !defined(FERRY_CLI_PATH)
#error "FERRYD_PATH and FERRY_CLI_PATH must name the built binaries"
#endif

namespace ferry::testing {

namespace {

// In a test program's directory kept after a failure: the sweep below
// leaves it for whoever reads the node logs (for a few days).
constexpr char kKeptMarker[] = "KEPT-AFTER-A-FAILED-TEST";
// A dead program's directory without the marker (it hung and was killed,
// or crashed, with no test failed) stays this long for its logs to be read.
constexpr auto kUnmarkedDirsKeptFor = std::chrono::hours(1);
constexpr auto kKeptDirsKeptFor = std::chrono::hours(72);

// Test failures so far, over every --gtest_repeat iteration
// (UnitTest::Failed() says so of the last one only). Counted as each is
// reported, so a failed test's TearDown sees it already.
std::atomic<int> test_failures{0};

class TempFiles;
// The program's TempFiles once made (on the first WriteTempFile).
std::atomic<TempFiles*> temp_files{nullptr};

// Where WriteTempFile writes: one directory per test program, removed with
// everything in it (stores a node made beside a file too) when the program
// exits; kept, with its path printed, from a test's first failure on (so a
// program killed later, by a ctest timeout or an abort, leaves it too), so
// its node logs can be read. Not in forked children (death tests).
// Removed by a static destructor: whatever was constructed before it (and
// so is destroyed after it) must not use the files at exit.
class TempFiles {
 public:
  TempFiles();
  ~TempFiles() {
    if (getpid() != owner_pid_) return;
    temp_files = nullptr;
    if (kept_) return;
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  TempFiles(const TempFiles&) = delete;
  TempFiles& operator=(const TempFiles&) = delete;

  const std::string& dir() const { return dir_; }

  // Marks the directory as kept and says where it is; once.
  void Keep() {
    if (getpid() != owner_pid_ || kept_.exchange(true)) return;
    std::ofstream(dir_ + "/" + kKeptMarker)
        << "Files (node configs and logs) of test program " << owner_pid_
        << ", kept because a test failed. Remove the directory when done.\n";
    std::fprintf(stderr, "a test failed: its files (node logs, configs) are kept in %s\n",
                 dir_.c_str());
  }

 private:
  const pid_t owner_pid_;
  std::string dir_;
  std::atomic<bool> kept_{false};
};

class FailureWatch : public ::testing::EmptyTestEventListener {
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    ++test_failures;
    if (TempFiles* files = temp_files.load()) files->Keep();
  }
};

// At load time, before RUN_ALL_TESTS, as gtest wants listeners added.
[[maybe_unused]] const bool failure_watch_added = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new FailureWatch);
  return true;
}();

// The newest change in `dir` or directly in it.
std::filesystem::file_time_type LastChange(const std::filesystem::path& dir) {
  std::error_code error;
  auto newest = std::filesystem::last_write_time(dir, error);
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    newest = std::max(newest, entry.last_write_time(error));
  }
  return newest;
}

// Directories of test programs that died without removing theirs (a crash,
// an ASan abort, a ctest timeout): /tmp/ferry-<pid>-* of a pid no process
// has, once old enough. Liveness first: a dead program writes no marker any
// more, so the marker read after it is final.
void RemoveDirsOfDeadPrograms() {
  std::error_code error;
  const auto now = std::filesystem::file_time_type::clock::now();
  for (const auto& entry : std::filesystem::directory_iterator(P_tmpdir, error)) {
    const std::string name = entry.path().filename().string();
    std::vector<std::string> parts = absl::StrSplit(name, '-');
    int pid = 0;
    if (parts.size() != 3 || parts[0] != "ferry" || !absl::SimpleAtoi(parts[1], &pid) ||
        pid <= 0 || !entry.is_directory(error) || kill(pid, 0) == 0 || errno != ESRCH) {
      continue;
    }
    const bool marked = std::filesystem::exists(entry.path() / kKeptMarker, error);
    if (now - LastChange(entry.path()) <
        (marked ? kKeptDirsKeptFor : kUnmarkedDirsKeptFor)) {
      continue;
    }
    std::error_code ignored;
    std::filesystem::remove_all(entry.path(), ignored);
  }
}

TempFiles::TempFiles() : owner_pid_(getpid()) {
  RemoveDirsOfDeadPrograms();
  std::string pattern = absl::StrCat(P_tmpdir, "/ferry-", getpid(), "-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    // Not a test failure only: the files would land in / instead.
    std::fprintf(stderr, "cannot make a directory for the test's files: %s\n",
                 std::strerror(errno));
    std::abort();
  }
  dir_ = pattern;
  temp_files = this;
  if (test_failures > 0) Keep();
}

// "Suite.Name" of the running test, fit for a file name; empty outside one.
std::string CurrentTestName() {
  const ::testing::TestInfo* test =
      ::testing::UnitTest::GetInstance()->current_test_info();
  if (test == nullptr) return "";
  std::string name = absl::StrCat(test->test_suite_name(), ".", test->name());
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_') c = '_';
  }
  return name;
}

}  // namespace

std::string WriteTempFile(const std::string& stem, const std::string& content) {
  static TempFiles files;
  static std::atomic<int> counter{0};
  const std::string path = absl::StrCat(files.dir(), "/", counter++, "-", stem);
  std::ofstream(path) << content;
  return path;
}

std::string KafkaClusterEntry(const std::string& name, const std::string& bootstrap) {
  return absl::StrCat("  ", name, ": { type: kafka, bootstrap: \"", bootstrap, "\" }\n");
}

std::string MainClusterYaml(const std::string& bootstrap) {
  return absl::StrCat("clusters:\n", KafkaClusterEntry("main", bootstrap));
}

namespace {

// A fresh directory for a ferryd, so nodes without clusters do not share the
// embedded store ./ferry-data.
absl::StatusOr<std::string> MakeWorkingDir() {
  std::string pattern = absl::StrCat(P_tmpdir, "/ferryd-", getpid(), "-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::ErrnoToStatus(errno, "create a working directory for ferryd");
  }
  return pattern;
}

void RemoveWorkingDir(const std::string& dir) {
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

}  // namespace

namespace {

// A control topic per test unless the YAML names one: the first node of a
// control topic seeds it with its YAML routes, which win from then on, so
// tests sharing a broker would otherwise serve the first test's routes.
std::string WithTestControlTopic(const std::string& yaml) {
  const std::string name = CurrentTestName();
  if (name.empty() || yaml.starts_with("control:") ||
      yaml.find("\ncontrol:") != std::string::npos) {
    return yaml;
  }
  return absl::StrCat(yaml, "\ncontrol: { topic: \"__ferry_control.", name, "\" }\n");
}

}  // namespace

absl::StatusOr<std::unique_ptr<FerrydProcess>> FerrydProcess::Start(
    const std::string& yaml, const std::map<std::string, std::string>& env,
    const std::string& working_dir, HttpsClientFiles https) {
  for (int attempt = 1;; ++attempt) {
    auto node = StartOnce(yaml, env, working_dir, https);
    if (node.ok() || attempt == 3 ||
        !absl::StrContains(node.status().message(), "cannot listen on")) {
      return node;
    }
  }
}

absl::StatusOr<std::unique_ptr<FerrydProcess>> FerrydProcess::StartOnce(
    const std::string& yaml, const std::map<std::string, std::string>& env,
    const std::string& working_dir, const HttpsClientFiles& https) {
  auto ports = PickFreePorts(2);
  if (!ports.ok()) return ports.status();
  std::unique_ptr<FerrydProcess> node(new FerrydProcess());
  node->https_ = https;
  node->grpc_address_ = absl::StrCat("127.0.0.1:", (*ports)[0]);
  node->http_address_ = absl::StrCat("127.0.0.1:", (*ports)[1]);
  // Named after the test, so a kept directory says whose logs are whose.
  const std::string test = CurrentTestName();
  const std::string prefix = test.empty() ? "" : test + "-";
  node->failures_at_start_ = test_failures;
  node->config_path_ = WriteTempFile(
      prefix + "ferry.yaml",
      absl::StrCat("listen: { grpc: \"", node->grpc_address_, "\", http: \"",
                   node->http_address_, "\" }\n", WithTestControlTopic(yaml)));
  node->log_path_ = WriteTempFile(prefix + "ferryd.log", "");
  std::string dir = working_dir;
  if (dir.empty()) {
    auto fresh = MakeWorkingDir();
    if (!fresh.ok()) return fresh.status();
    dir = node->own_working_dir_ = *fresh;
  }
  auto process = Subprocess::Spawn({FERRYD_PATH, "--config", node->config_path_},
                                   node->log_path_, env, dir);
  if (!process.ok()) return process.status();
  node->process_ = *std::move(process);

  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (node->HttpGet("/healthz").first != 200) {
    if (!node->process_->Running()) {
      return absl::InternalError(
          absl::StrCat("ferryd exited during start-up; log:\n", node->Log()));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("ferryd not healthy after 20s; log:\n", node->Log()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return node;
}

FerrydProcess::~FerrydProcess() {
  process_.reset();
  // Kept when a test failed while the node ran: its log may say why.
  if (test_failures == failures_at_start_) {
    unlink(config_path_.c_str());
    unlink(log_path_.c_str());
  }
  if (!own_working_dir_.empty()) RemoveWorkingDir(own_working_dir_);
}

std::string FerrydProcess::Log() const { return ReadFile(log_path_); }

namespace {

std::unique_ptr<httplib::Client> HttpClient(const std::string& address,
                                            const HttpsClientFiles& https) {
  // A TLS write to a node that refused the handshake (mutual TLS without a
  // client certificate) raises SIGPIPE; the test must see an error, not die.
  static const bool sigpipe_ignored = std::signal(SIGPIPE, SIG_IGN) != SIG_ERR;
  (void)sigpipe_ignored;
  if (https.ca.empty()) return std::make_unique<httplib::Client>("http://" + address);
  auto client =
      std::make_unique<httplib::Client>("https://" + address, https.cert, https.key);
  client->set_ca_cert_path(https.ca.c_str());
  client->enable_server_certificate_verification(true);
  return client;
}

}  // namespace

std::pair<int, std::string> FerrydProcess::HttpGet(const std::string& path) const {
  std::unique_ptr<httplib::Client> http = HttpClient(http_address_, https_);
  httplib::Client& client = *http;
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(10));
  auto response = client.Get(path.c_str());
  if (!response) return {-1, ""};
  return {response->status, response->body};
}

std::pair<int, std::string> FerrydProcess::Http(
    const std::string& verb, const std::string& path, const std::string& body,
    const std::map<std::string, std::string>& headers) const {
  std::unique_ptr<httplib::Client> http = HttpClient(http_address_, https_);
  httplib::Client& client = *http;
  client.set_connection_timeout(std::chrono::seconds(2));
  // Above the admin API's own 60 s call deadline.
  client.set_read_timeout(std::chrono::seconds(90));
  const httplib::Headers sent(headers.begin(), headers.end());
  const std::string type = "application/json";
  auto send = [&]() -> httplib::Result {
    if (verb == "POST") return client.Post(path, sent, body, type);
    if (verb == "PUT") return client.Put(path, sent, body, type);
    if (verb == "PATCH") return client.Patch(path, sent, body, type);
    if (verb == "DELETE") return client.Delete(path, sent, body, type);
    return client.Get(path, sent);
  };
  httplib::Result response = send();
  if (!response) return {-1, ""};
  return {response->status, response->body};
}

absl::StatusOr<ProcessResult> RunFerryCli(const std::vector<std::string>& args,
                                          const std::map<std::string, std::string>& env,
                                          const std::string& input) {
  std::vector<std::string> argv = {FERRY_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, env, absl::Seconds(120), input);
}

ProcessResult RunFerryCliOn(const FerrydProcess& node, std::vector<std::string> args,
                            const std::string& input) {
  args.insert(args.begin(), {"--server", node.grpc_address()});
  auto result = RunFerryCli(args, {}, input);
  if (!result.ok()) ADD_FAILURE() << "ferry CLI did not run: " << result.status();
  return result.ok() ? *result : ProcessResult{.exit_code = -1};
}

Token CreateToken(const std::string& principal, const std::string& expires_in) {
  std::vector<std::string> args = {"token", "create", "--principal", principal};
  if (!expires_in.empty()) args.insert(args.end(), {"--expires-in", expires_in});
  auto result = RunFerryCli(args);
  EXPECT_TRUE(result.ok() && result->exit_code == 0);
  if (!result.ok()) return {};
  std::vector<std::string> lines = absl::StrSplit(result->out, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 2u) << result->out;
  return lines.size() == 2 ? Token{lines[0], lines[1]} : Token{};
}

absl::StatusOr<ProcessResult> RunFerryd(const std::vector<std::string>& args,
                                        const std::map<std::string, std::string>& env,
                                        absl::Duration timeout,
                                        const std::string& working_dir) {
  std::vector<std::string> argv = {FERRYD_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  if (!working_dir.empty()) return RunProcess(argv, env, timeout, "", working_dir);
  auto fresh = MakeWorkingDir();
  if (!fresh.ok()) return fresh.status();
  auto result = RunProcess(argv, env, timeout, "", *fresh);
  RemoveWorkingDir(*fresh);
  return result;
}

}  // namespace ferry::testing
