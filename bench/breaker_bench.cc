// breaker_bench: what the per-cluster circuit breakers cost on the publish
// path, and how fast they move writes to a standby cluster.
//
// 1. Cost: the breaker work of the publish path (Choose and Record per
//    batch), in process, CPU time per message, on 1 and 4 threads.
// 2. Failover: two Kafka brokers, one ferryd with a route
//    `write: [primary, standby]`, steady keyed SDK traffic; the primary is
//    killed (-9) and restarted --kills times. Per kill: time from the kill to
//    the first write acknowledged on the standby, and from the restart to the
//    first write back on the primary; SDK-visible failures over the run.
#include <fmt/format.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/fake_cluster.h"
#include "bench/bench_util.h"
#include "routing/cluster_breakers.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/steady_traffic.h"

namespace ferry::bench {
namespace {

struct Options {
  int64_t cost_messages = 20'000'000;
  int kills = 10;
  int open_for_seconds = 5;
  int interval_ms = 5;
  int keys = 20;
};

double ProcessCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// CPU nanoseconds per message of the breaker work of `threads` publishing
// threads, each writing `cost_messages / threads` messages in batches (CPU time,
// so 4 threads on fewer cores are not charged for waiting their turn).
double BreakerNsPerMessage(const Options& o, int threads, int batch_messages) {
  backend::FakeCluster primary("primary");
  backend::FakeCluster standby("standby");
  metrics::Registry registry;
  routing::ClusterBreakers breakers(config::BreakerConfig{}, {&primary, &standby},
                                    &registry);
  const std::vector<std::string> write = {"primary", "standby"};
  const int64_t batches = o.cost_messages / threads / batch_messages;
  const double start = ProcessCpuSeconds();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int64_t b = 0; b < batches; ++b) {
        routing::ClusterBreaker* breaker = breakers.Choose(write);
        breaker->Record(batch_messages, 0, absl::OkStatus());
      }
    });
  }
  for (auto& w : workers) w.join();
  return (ProcessCpuSeconds() - start) * 1e9 /
         static_cast<double>(batches * threads * batch_messages);
}

std::string NodeYaml(const testing::KafkaBroker& primary,
                     const testing::KafkaBroker& standby, int open_for_seconds) {
  return absl::StrCat("clusters:\n",
                      testing::KafkaClusterEntry("primary", primary.bootstrap()), "\n",
                      testing::KafkaClusterEntry("standby", standby.bootstrap()), R"(
routes:
  - topic: "bench.*"
    write: [primary, standby]
control: { cluster: standby }
breaker: { open_for: )",
                      open_for_seconds, "s }\n");
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

int RunFailovers(const Options& o) {
  Log("starting two Kafka brokers");
  auto primary = testing::KafkaBroker::Start("bench-primary");
  auto standby = testing::KafkaBroker::Start("bench-standby");
  if (!primary.ok() || !standby.ok()) {
    Log("brokers: {} / {}", primary.status().ToString(), standby.status().ToString());
    return 1;
  }
  const std::string topic = "bench.failover";
  for (auto* broker : {primary->get(), standby->get()}) {
    if (absl::Status s = broker->CreateTopic(topic, 4); !s.ok()) {
      Log("topic: {}", s.ToString());
      return 1;
    }
  }
  auto node =
      testing::FerrydProcess::Start(NodeYaml(**primary, **standby, o.open_for_seconds));
  if (!node.ok()) {
    Log("ferryd: {}", node.status().ToString());
    return 1;
  }
  testing::SteadyTraffic traffic({(*node)->grpc_address()}, topic,
                                 absl::Milliseconds(o.interval_ms), o.keys);
  std::vector<double> failovers, recoveries;
  fmt::print(
      "| kill | kill -> first ack on standby | restart -> first ack on primary |\n"
      "|--:|--:|--:|\n");
  for (int kill = 1; kill <= o.kills; ++kill) {
    if (!traffic.FirstAckOn("primary", absl::Now(), absl::Seconds(60))) {
      Log("writes did not return to the primary:\n{}", (*node)->Log());
      return 1;
    }
    // A cluster failing again within one open period of closing is taken
    // for flapping (its breaker stays open twice as long): wait that out, so
    // each kill measures a fresh failover and recovery.
    absl::SleepFor(absl::Seconds(o.open_for_seconds + 1));
    if (absl::Status s = (*primary)->Kill9(); !s.ok()) {
      Log("kill: {}", s.ToString());
      return 1;
    }
    const absl::Time killed = absl::Now();
    auto on_standby = traffic.FirstAckOn("standby", killed, absl::Seconds(60));
    if (!on_standby) {
      Log("no write reached the standby:\n{}", (*node)->Log());
      return 1;
    }
    failovers.push_back(absl::ToDoubleSeconds(*on_standby - killed));
    if (absl::Status s = (*primary)->Restart(); !s.ok()) {
      Log("restart: {}", s.ToString());
      return 1;
    }
    const absl::Time restarted = absl::Now();
    auto back = traffic.FirstAckOn("primary", restarted, absl::Seconds(120));
    recoveries.push_back(back ? absl::ToDoubleSeconds(*back - restarted) : NAN);
    fmt::print("| {} | {:.2f} s | {:.2f} s |\n", kill, failovers.back(),
               recoveries.back());
    std::fflush(stdout);
  }
  const auto& sent = traffic.Finish();
  int64_t failed = 0;
  for (const auto& s : sent) failed += s.result.ok() ? 0 : 1;
  fmt::print(
      "\nfailover p50 {:.2f} s, max {:.2f} s; recovery p50 {:.2f} s, max {:.2f} s\n",
      Percentile(failovers, 0.5), Percentile(failovers, 1.0), Percentile(recoveries, 0.5),
      Percentile(recoveries, 1.0));
  fmt::print("SDK: {} messages published, {} failed\n", sent.size(), failed);
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app{
      "breaker_bench: circuit-breaker cost on the publish path and failover "
      "time over repeated kills of the primary cluster"};
  Options o;
  app.add_option("--cost-messages", o.cost_messages,
                 "Messages of the in-process cost measurement (0: skip it)")
      ->capture_default_str();
  app.add_option("--kills", o.kills, "kill -9 / restart cycles of the primary (0: skip)")
      ->capture_default_str();
  app.add_option("--open-for", o.open_for_seconds, "breaker.open_for in seconds")
      ->capture_default_str();
  app.add_option("--interval-ms", o.interval_ms, "One SDK message every this often")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (o.cost_messages > 0) {
    fmt::print(
        "| publishing threads | messages per batch | breaker CPU per message (Choose and "
        "Record per batch) |\n|--:|--:|--:|\n");
    for (int threads : {1, 4}) {
      for (int batch : {1, 100}) {
        fmt::print("| {} | {} | {:.1f} ns |\n", threads, batch,
                   BreakerNsPerMessage(o, threads, batch));
      }
    }
    fmt::print("\n");
  }
  return o.kills > 0 ? RunFailovers(o) : 0;
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) { return ferry::bench::Main(argc, argv); }
