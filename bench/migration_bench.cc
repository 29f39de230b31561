// migration_bench: how long each stage of `ferry migrate` takes for a topic
// that already holds --records keyed records (--size bytes, --partitions
// partitions) on one local Kafka broker, moved to a second one while an SDK
// producer publishes (one message every --interval-ms, through both ferryd
// nodes) and a key-ordered group consumes the whole time. Prints each
// command's wall time and the steps ferry reported, then what the consumer
// missed, its duplicates and order violations. --rollback-from consumers|
// producers rolls back from that stage instead of going on. Hand-run through
// bench/migration_bench.sh, never by ctest.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <future>
#include <iostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/kafka_client.h"
#include "testing/steady_traffic.h"
#include "testing/traffic_consumer.h"

namespace ferry::bench {
namespace {

struct Options {
  int64_t records = 1'000'000;
  int size = 1024;
  int partitions = 8;
  int keys = 1000;
  int interval_ms = 5;
  std::string rollback_from;
};

constexpr char kTopic[] = "orders.bench";

struct Stage {
  std::string command;
  absl::Duration took;
  bool ok = false;
};

class Bench {
 public:
  Bench(const Options& options, std::string node, testing::TrafficConsumer* consumer)
      : options_(options), node_(std::move(node)), consumer_(consumer) {}

  // Runs `ferry <args>` while the consumer drains; prints and records it.
  bool Run(const std::vector<std::string>& args, const std::string& label) {
    std::vector<std::string> argv = {"--server", node_};
    argv.insert(argv.end(), args.begin(), args.end());
    const absl::Time start = absl::Now();
    auto result =
        std::async(std::launch::async, [argv] { return testing::RunFerryCli(argv); });
    while (result.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
      consumer_->Drain(absl::Milliseconds(100));
    }
    auto done = result.get();
    const absl::Duration took = absl::Now() - start;
    const bool ok = done.ok() && done->exit_code == 0;
    std::cout << fmt::format("== {} ({:.1f} s)\n", label, absl::ToDoubleSeconds(took))
              << (done.ok() ? done->out + done->err
                            : std::string(done.status().message()))
              << std::flush;
    stages_.push_back({label, took, ok});
    return ok;
  }

  // Waits until the migration mirror copied the preloaded records (its lag
  // is below a second of live traffic and one commit interval), recording
  // the time as a stage of its own.
  bool AwaitMirrorCaughtUp() {
    const absl::Time start = absl::Now();
    const int64_t live = 2 * 1000 / std::max(options_.interval_ms, 1);
    while (absl::Now() - start < absl::Minutes(15)) {
      auto status = testing::RunFerryCli(
          {"--server", node_, "mirror", "status", absl::StrCat("migrate.", kTopic)});
      const size_t at = status.ok() ? status->out.find("  lag ") : std::string::npos;
      int64_t lag = -1;
      if (at != std::string::npos) {
        lag = std::strtoll(status->out.c_str() + at + 6, nullptr, 10);
      }
      if (lag >= 0 && lag <= live) {
        stages_.push_back({"mirror copies what A holds", absl::Now() - start, true});
        std::cout << fmt::format("== mirror caught up ({:.1f} s)\n",
                                 absl::ToDoubleSeconds(absl::Now() - start));
        return true;
      }
      consumer_->Drain(absl::Seconds(1));
    }
    stages_.push_back({"mirror copies what A holds", absl::Now() - start, false});
    return false;
  }

  void PrintTable() const {
    std::cout << fmt::format("\n| stage | seconds |\n|---|---:|\n");
    for (const Stage& s : stages_) {
      std::cout << fmt::format("| {}{} | {:.1f} |\n", s.command, s.ok ? "" : " (failed)",
                               absl::ToDoubleSeconds(s.took));
    }
  }

 private:
  const Options options_;
  const std::string node_;
  testing::TrafficConsumer* const consumer_;
  std::vector<Stage> stages_;
};

bool Preload(const std::string& bootstrap, const Options& o) {
  const std::string value(static_cast<size_t>(o.size), 'x');
  constexpr int64_t kChunk = 20000;
  const absl::Time start = absl::Now();
  for (int64_t first = 0; first < o.records; first += kChunk) {
    std::vector<std::pair<std::string, std::string>> chunk;
    for (int64_t i = first; i < std::min(o.records, first + kChunk); ++i) {
      chunk.emplace_back(absl::StrCat("preload-", i % o.keys), value);
    }
    if (absl::Status s = testing::ProduceMany(bootstrap, kTopic, chunk); !s.ok()) {
      std::cerr << "preload: " << s << "\n";
      return false;
    }
  }
  std::cout << fmt::format("preloaded {} records of {} B in {:.1f} s\n", o.records,
                           o.size, absl::ToDoubleSeconds(absl::Now() - start));
  return true;
}

int Main(const Options& o) {
  auto a = testing::KafkaBroker::Start("bench-a");
  auto b = testing::KafkaBroker::Start("bench-b");
  if (!a.ok() || !b.ok()) {
    std::cerr << "brokers: " << (a.ok() ? b.status() : a.status()) << "\n";
    return 1;
  }
  if (absl::Status s = (*a)->CreateTopic(kTopic, o.partitions); !s.ok()) {
    std::cerr << "topic: " << s << "\n";
    return 1;
  }
  if (!Preload((*a)->bootstrap(), o)) return 1;
  std::vector<std::unique_ptr<testing::FerrydProcess>> nodes;
  std::vector<std::string> addresses;
  for (int i = 0; i < 2; ++i) {
    auto node = testing::FerrydProcess::Start(
        absl::StrCat("node: { id: node-", i, " }\nclusters:\n",
                     testing::KafkaClusterEntry("a", (*a)->bootstrap()),
                     testing::KafkaClusterEntry("b", (*b)->bootstrap()),
                     "routes:\n  - { topic: \"orders.*\", write: [a], read: [a] }\n",
                     "control: { cluster: a, topic: __ferry_control.bench }\n"));
    if (!node.ok()) {
      std::cerr << "ferryd: " << node.status() << "\n";
      return 1;
    }
    addresses.push_back((*node)->grpc_address());
    nodes.push_back(*std::move(node));
  }
  // From the end: it reads the live traffic, not the preloaded records.
  testing::TrafficConsumer consumer(addresses[0], "bench.keyed", kTopic, v1::ORDERING_KEY,
                                    /*from_earliest=*/false);
  consumer.Drain(absl::Seconds(5));  // assigned (at the end) before traffic starts
  testing::SteadyTraffic traffic(addresses, kTopic, absl::Milliseconds(o.interval_ms),
                                 64);
  Bench bench(o, addresses[0], &consumer);
  auto migrate = [&](const std::string& stage, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"migrate", stage, "--topic", kTopic};
    args.insert(args.end(), extra.begin(), extra.end());
    return bench.Run(args, "migrate " + stage);
  };
  bool ok = migrate("start", {"--from", "a", "--to", "b"}) && bench.AwaitMirrorCaughtUp();
  ok = ok && migrate("consumers");
  consumer.Drain(absl::Seconds(5));
  if (ok && o.rollback_from == "consumers") {
    ok = migrate("rollback");
  } else if (ok) {
    ok = migrate("producers");
    consumer.Drain(absl::Seconds(5));
    ok = ok && migrate(o.rollback_from == "producers" ? "rollback" : "finish");
  }
  const std::vector<testing::SentMessage>& sent = traffic.Finish();
  std::set<std::string> acked;
  for (const testing::SentMessage& s : sent) {
    if (s.result.ok()) acked.insert(s.result.id);
  }
  consumer.DrainUntil(acked, absl::Seconds(120));
  int64_t missing = 0;
  for (const std::string& id : acked) missing += !consumer.Has(id);
  bench.PrintTable();
  std::cout << fmt::format(
      "\npublished {} during the run ({} acknowledged); consumer: {} missing; {}\n",
      sent.size(), acked.size(), missing, consumer.Summary());
  return ok && missing == 0 && consumer.OrderViolations() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) {
  ferry::bench::Options o;
  CLI::App app("ferry migrate, stage by stage, on a topic holding --records records");
  app.add_option("--records", o.records, "Records on A before the migration starts");
  app.add_option("--size", o.size, "Bytes per preloaded record");
  app.add_option("--partitions", o.partitions, "Partitions of the topic");
  app.add_option("--keys", o.keys, "Distinct keys of the preloaded records");
  app.add_option("--interval-ms", o.interval_ms, "Live traffic: one message every N ms");
  app.add_option("--rollback-from", o.rollback_from, "Roll back from this stage")
      ->check(CLI::IsMember({"consumers", "producers"}));
  CLI11_PARSE(app, argc, argv);
  return ferry::bench::Main(o);
}
