// publish_profile: a small driver for counting the C++ SDK's work per
// message of the per-message Publish (future or callback form) under
// `valgrind --tool=callgrind`, `strace -c -f` or `perf stat`. It publishes
// the messages publish_bench's Ferry pass publishes (keys from a fixed set in
// a shuffled order, one payload copied into each Message) to a running
// ferryd, first a warm-up, then the measured messages. Under callgrind the
// counters are zeroed after the warm-up and dumped after the last result, so
// the dump holds exactly the measured messages (bench/RESULTS.md, branch
// sdkpub, says how it is split by component).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/profile_workload.h"
#include "ferry/client/publisher.h"

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS
#endif

namespace {

namespace client = ferry::client;

struct Options {
  std::string ferryd;
  std::string topic = "profile";
  ferry::bench::ProfileRun run;
  bool callbacks = false;
};

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
  std::thread collector([&] {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t seen = published.load(); seen <= i; seen = published.load()) {
        published.wait(seen);
      }
      if (!futures[i].get().ok()) ++failed;
    }
  });
  for (int64_t i = 0; i < n; ++i) {
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
  for (int64_t i = 0; i < n; ++i) {
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
  CLI11_PARSE(app, argc, argv);

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
  CALLGRIND_ZERO_STATS;
  failed += publish(*publisher, o, work, o.run.warmup, o.run.messages);
  CALLGRIND_DUMP_STATS;
  const uint64_t batches = publisher->Stats().node_batches - batches_before;
  fmt::print(
      "{} messages of {} B ({}), {} batches ({:.1f} messages per batch), {} failed\n",
      o.run.messages, o.run.size, o.callbacks ? "callbacks" : "futures", batches,
      static_cast<double>(o.run.messages) / static_cast<double>(batches ? batches : 1),
      failed);
  return failed == 0 ? 0 : 1;
}
