// publish_profile: a small driver for counting the C++ SDK's work per
// message of the per-message Publish (future or callback form) under
// `valgrind --tool=callgrind`, `strace -c -f` or `perf stat`. It publishes
// the messages publish_bench's Ferry pass publishes (keys from a fixed set in
// a shuffled order, one payload copied into each Message) to a running
// ferryd, first a warm-up, then the measured messages. Under callgrind the
// counters are zeroed after the warm-up and dumped after the last result, so
// the dump holds exactly the measured messages (bench/RESULTS.md, branch
// sdkpub, says how it is split by component). With --rate it publishes at
// that many messages per second instead of as fast as it can, and prints a
// line when the measured messages start and one when they are done, for a
// script sampling the threads of the driver and ferryd over that window
// (bench/lowrate_threads.py).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/callgrind_window.h"
#include "bench/profile_workload.h"
#include "ferry/client/publisher.h"

namespace {

namespace client = ferry::client;

struct Options {
  std::string ferryd;
  std::string topic = "profile";
  ferry::bench::ProfileRun run;
  bool callbacks = false;
  // Messages per second; 0: as fast as the publisher takes them.
  int rate = 0;
};

// Sleeps until message `i` of a run at `rate` per second is due.
void Pace(int rate, std::chrono::steady_clock::time_point start, int64_t i) {
  if (rate <= 0) return;
  std::this_thread::sleep_until(start +
                                std::chrono::nanoseconds(i * 1'000'000'000 / rate));
}

using Workload = ferry::bench::ProfileWorkload;

client::Message MessageAt(const Workload& work, int64_t i) {
  client::Message message;
  message.key = work.KeyAt(i);
  message.value = work.payload;
  return message;
}

// Publishes [first, first + n) and waits for every result; returns the
// number that failed. Futures: a second thread waits for them in publish
// order, as publish_bench's does.
int64_t PublishFutures(client::Publisher& publisher, const Options& o,
                       const Workload& work, int64_t first, int64_t n) {
  std::vector<std::future<client::PublishResult>> futures(n);
  std::atomic<int64_t> published{0};
  int64_t failed = 0;
  const auto start = std::chrono::steady_clock::now();
  std::thread collector([&] {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t seen = published.load(); seen <= i; seen = published.load()) {
        published.wait(seen);
      }
      const client::PublishResult result = futures[i].get();
      if (!result.ok() && failed++ == 0) fmt::print(stderr, "failed: {}\n", result.error);
    }
  });
  for (int64_t i = 0; i < n; ++i) {
    Pace(o.rate, start, i);
    futures[i] = publisher.Publish(o.topic, MessageAt(work, first + i));
    published.store(i + 1);
    published.notify_one();
  }
  collector.join();
  return failed;
}

int64_t PublishCallbacks(client::Publisher& publisher, const Options& o,
                         const Workload& work, int64_t first, int64_t n) {
  std::atomic<int64_t> done{0}, failed{0};
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; ++i) {
    Pace(o.rate, start, i);
    publisher.Publish(o.topic, MessageAt(work, first + i),
                      [&, n](client::PublishResult result) {
                        if (!result.ok()) failed.fetch_add(1);
                        if (done.fetch_add(1) + 1 == n) done.notify_one();
                      });
  }
  for (int64_t seen = done.load(); seen < n; seen = done.load()) done.wait(seen);
  return failed.load();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"C++ SDK Publish driver for callgrind/strace/perf stat"};
  app.add_option("--ferryd", o.ferryd, "host:port of a running ferryd")->required();
  app.add_option("--topic", o.topic, "topic to publish to");
  o.run.AddOptions(app);
  app.add_flag("--callbacks", o.callbacks, "the callback form (default: futures)");
  app.add_option("--rate", o.rate, "messages per second (default: as fast as it can)")
      ->check(CLI::Range(0, 10'000'000));
  CLI11_PARSE(app, argc, argv);
  ferry::bench::NoteCallgrindWindow();

  const Workload work(o.run.keys, o.run.size);

  std::string error;
  std::unique_ptr<client::Publisher> publisher =
      client::Publisher::Builder().Endpoints({o.ferryd}).Build(&error);
  if (publisher == nullptr) {
    fmt::print(stderr, "publisher: {}\n", error);
    return 1;
  }
  auto publish = o.callbacks ? PublishCallbacks : PublishFutures;
  int64_t failed = publish(*publisher, o, work, 0, o.run.warmup);
  const uint64_t batches_before = publisher->Stats().node_batches;
  fmt::print("window start\n");
  std::fflush(stdout);
  CALLGRIND_ZERO_STATS;
  failed += publish(*publisher, o, work, o.run.warmup, o.run.messages);
  CALLGRIND_DUMP_STATS;
  fmt::print("window end\n");
  std::fflush(stdout);
  // Time for a sampling script to read the threads before they end (the
  // collector thread of the futures form has ended already).
  if (o.rate > 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const uint64_t batches = publisher->Stats().node_batches - batches_before;
  fmt::print(
      "{} messages of {} B ({}), {} batches ({:.1f} messages per batch), {} failed\n",
      o.run.messages, o.run.size, o.callbacks ? "callbacks" : "futures", batches,
      static_cast<double>(o.run.messages) / static_cast<double>(batches ? batches : 1),
      failed);
  return failed == 0 ? 0 : 1;
}
