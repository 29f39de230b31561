// ferryd: the Ferry node. Parses flags, loads configuration and runs the
// server until SIGTERM/SIGINT, then drains. See docs/configuration.md.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "absl/synchronization/mutex.h"
#include "backend/kafka/kafka_cluster.h"
#include "backend/member_leave.h"
#include "common/version.h"
#include "config/config.h"
#include "config/key_table.h"
#include "server/file_limit.h"
#include "server/server.h"
#include "server/shutdown_watchdog.h"

extern char** environ;

namespace {

// How long shutdown may take beyond shutdown.grace before the watchdog ends
// the process: the starts in progress (the control plane's topic check or
// creation, a mirror job's topic checks or creation; or the runner's stop
// of a job, at most leave_timeout, shorter) are told to stop when draining
// begins and end after their cluster call in progress, at most a Kafka
// admin call (admin_timeout), which overlaps the grace: only what outlasts
// it counts; then the control plane's departure record; then one
// subscribe.leave_timeout for every consumer to leave together (the control
// topic's reader, mirror jobs, groups: backend::SetLeaveDeadline), plus the
// floor of the two steps after the first (mirror jobs, groups:
// backend::LeaveFloor) for when an earlier step used up that window, then
// closing each cluster (its probe's last request, then 2 s for the
// publishes still waiting), and a little slack.
absl::Duration ShutdownMargin(const ferry::config::Config& config) {
  // The nodes' clusters are built with it (server.cc).
  const absl::Duration start_call = ferry::backend::kafka::KafkaCluster::kAdminTimeout;
  const absl::Duration start_past_grace =
      std::max(absl::ZeroDuration(), start_call - config.shutdown_grace);
  constexpr absl::Duration kDeparture = absl::Seconds(2);
  constexpr absl::Duration kPendingPublishes = absl::Seconds(2);
  constexpr absl::Duration kSlack = absl::Seconds(2);
  const auto clusters = static_cast<int64_t>(config.clusters.size());
  return start_past_grace + kDeparture + config.subscribe.leave_timeout +
         2 * ferry::backend::LeaveFloor(config.subscribe.leave_timeout) +
         clusters * (config.cluster_probe_timeout + kPendingPublishes) + kSlack;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry = *e;
    size_t eq = entry.find('=');
    if (eq != std::string_view::npos) {
      env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
    }
  }
  return env;
}

// Blocks SIGTERM/SIGINT in every thread (set before any thread starts, so
// all inherit it) and returns the set to wait on.
sigset_t BlockShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// Logs what RaiseFileLimit did, once the node started: a node refusing its
// configuration says only why (one line).
void LogFileLimit(const absl::StatusOr<ferry::server::FileLimitChange>& change) {
  if (!change.ok()) {
    spdlog::warn("open file limit not raised: {}", change.status().ToString());
    return;
  }
  if (change->before.soft == change->after.soft) {
    spdlog::info("open file limit (RLIMIT_NOFILE): {}, already the hard limit",
                 change->after.soft);
    return;
  }
  spdlog::info("open file limit (RLIMIT_NOFILE): soft {} -> {}, hard {}",
               change->before.soft, change->after.soft, change->after.hard);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ferryd: the Ferry messaging proxy node"};
  ferry::config::Sources sources;
  bool print_docs = false;
  bool print_version = false;
  app.add_option("--config", sources.file, "YAML configuration file")
      ->envname("FERRY_CONFIG");
  app.add_option("--set", sources.overrides,
                 "Override one key, e.g. --set listen.grpc=0.0.0.0:7400 (repeatable)");
  app.add_flag("--print-config-docs", print_docs,
               "Print the configuration reference (Markdown) and exit");
  app.add_flag("--version", print_version, "Print the version and exit");
  CLI11_PARSE(app, argc, argv);
#ifdef NDEBUG
  // Debian builds Abseil with deadlock detection on: a graph update on every
  // lock (about 1% of ferryd's CPU on the consume path). Debug and sanitizer
  // builds keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif

  if (print_version) {
    std::cout << "ferryd " << ferry::kVersion << "\n";
    return 0;
  }
  if (print_docs) {
    std::cout << ferry::config::RenderMarkdown();
    return 0;
  }

  sources.env = ProcessEnvironment();
  auto config = ferry::config::Load(sources);
  if (!config.ok()) {
    std::cerr << "ferryd: bad configuration: " << config.status().message() << "\n";
    return 2;
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("ferryd"));
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  // Before the server opens any connection (see server/file_limit.h); a node
  // that cannot raise it runs with what it has.
  const auto file_limit =
      ferry::server::RaiseFileLimit(ferry::server::SystemFileLimitCalls());

  sigset_t signals = BlockShutdownSignals();
  auto server = ferry::server::Server::Start(*config);
  if (!server.ok()) {
    std::cerr << "ferryd: cannot start: " << server.status().message() << "\n";
    return 1;
  }
  LogFileLimit(file_limit);
  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("received {}, shutting down", strsignal(signal));
  // Whatever is stuck inside, the node exits: the grace for calls, plus a
  // margin for leaving (final commits) and closing broker clients.
  ferry::server::ShutdownWatchdog watchdog(
      [server = server->get()] { return server->ShutdownStage(); },
      &ferry::server::ShutdownWatchdog::LogAndExit);
  watchdog.Arm(config->shutdown_grace + ShutdownMargin(*config));
  (*server)->Shutdown();
  // Consumers abandoned while leaving (subscribe.leave_timeout) go on, on
  // detached threads, with their broker clients' threads, and so do the
  // clusters kept for them (their probe, poll and store threads): they may
  // still log or touch what ~Server and static destructors (spdlog's
  // registry among them) would tear down under them. Kept clusters first:
  // their member may finish just now. Nothing is left to save: exit
  // without destructors.
  const int kept = ferry::backend::ClustersKept();
  if (const int leaving = ferry::backend::MembersLeaving(); kept > 0 || leaving > 0) {
    spdlog::warn(
        "exiting with {} consumer(s) still closing (abandoned) and {} cluster(s) kept "
        "for them",
        leaving, kept);
    spdlog::default_logger()->flush();
    _exit(0);
  }
  return 0;
}
