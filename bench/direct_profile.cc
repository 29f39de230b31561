// direct_profile: the direct librdkafka producer of publish_bench, alone, for
// counting its work per message under `valgrind --tool=callgrind
// --separate-threads=yes`, `strace -c -f` or `perf stat`: the counterpart of
// publish_profile (the C++ SDK's callback form), so that both sides of
// issue 18's ratio are counted the same way (bench/RESULTS.md, branch
// pubfloor). It produces publish_bench's workload (keys from a fixed set in a
// shuffled order, one payload copied into each message) with publish_bench's
// settings (ferryd's producer settings plus linger.ms=5), delivery reports
// served by a poll thread; the report callback does what publish_profile's
// result callback does (count, wake the main thread after the last). Under
// callgrind the counters are zeroed after the warm-up and dumped after the
// last report. Linked against librdkafka's static archive where there is one:
// Debian's shared library is stripped, the archive keeps the names of its
// static functions, which the split by component needs.
#include <fmt/format.h>
#include <librdkafka/rdkafka.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/callgrind_window.h"
#include "bench/profile_workload.h"

namespace {

struct Options {
  std::string bootstrap;
  std::string topic = "profile-direct";
  ferry::bench::ProfileRun run;
  std::string linger_ms = "5";
};

struct Counters {
  std::atomic<int64_t> done{0};
  std::atomic<int64_t> failed{0};
  std::atomic<int64_t> target{0};  // set before each pass's first produce
};

// On the poll thread.
void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* counters = static_cast<Counters*>(opaque);
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) counters->failed.fetch_add(1);
  if (counters->done.fetch_add(1) + 1 == counters->target.load())
    counters->done.notify_one();
}

rd_kafka_t* NewProducer(const Options& o, Counters* counters) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::vector<std::pair<std::string, std::string>> settings =
      ferry::bench::DirectProducerSettings(o.bootstrap, "direct-profile", o.linger_ms);
  char errstr[512];
  for (const auto& [key, value] : settings) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      fmt::print(stderr, "{}: {}\n", key, errstr);
      rd_kafka_conf_destroy(conf);
      return nullptr;
    }
  }
  rd_kafka_conf_set_opaque(conf, counters);
  rd_kafka_conf_set_dr_msg_cb(conf, &OnDelivery);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (rk == nullptr) {
    fmt::print(stderr, "producer: {}\n", errstr);
    rd_kafka_conf_destroy(conf);
  }
  return rk;
}

// Produces messages [first, first + n) and waits for their reports; returns
// how many failed.
int64_t Produce(rd_kafka_t* rk, Counters& counters, const Options& o,
                const ferry::bench::ProfileWorkload& work, int64_t first, int64_t n) {
  counters.done.store(0);
  counters.failed.store(0);
  counters.target.store(n);
  for (int64_t i = first; i < first + n; ++i) {
    const std::string& key = work.KeyAt(i);
    for (;;) {
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(o.topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(work.payload.data()), work.payload.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        fmt::print(stderr, "produce: {}\n", rd_kafka_err2str(err));
        return n;
      }
      // The poll thread frees the queue; try again shortly (as publish_bench).
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  for (int64_t seen = counters.done.load(); seen < n; seen = counters.done.load()) {
    counters.done.wait(seen);
  }
  return counters.failed.load();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"direct librdkafka producer driver for callgrind/strace/perf stat"};
  app.add_option("--bootstrap", o.bootstrap, "host:port of a Kafka broker")->required();
  app.add_option("--topic", o.topic, "an existing topic to produce to");
  o.run.AddOptions(app);
  app.add_option("--linger-ms", o.linger_ms, "linger.ms (publish_bench: 5)");
  CLI11_PARSE(app, argc, argv);
  ferry::bench::NoteCallgrindWindow();

  const ferry::bench::ProfileWorkload work(o.run.keys, o.run.size);
  Counters counters;
  rd_kafka_t* rk = NewProducer(o, &counters);
  if (rk == nullptr) return 1;
  // Delivery reports are served only by poll: a thread of its own, as in
  // publish_bench and ferryd.
  std::atomic<bool> stop{false};
  std::thread poller([&] {
    while (!stop.load()) rd_kafka_poll(rk, 100);
  });
  int64_t failed = Produce(rk, counters, o, work, 0, o.run.warmup);
  CALLGRIND_ZERO_STATS;
  failed += Produce(rk, counters, o, work, o.run.warmup, o.run.messages);
  CALLGRIND_DUMP_STATS;
  stop = true;
  poller.join();
  rd_kafka_flush(rk, 10000);
  rd_kafka_destroy(rk);
  fmt::print("{} messages of {} B (direct librdkafka), {} failed\n", o.run.messages,
             o.run.size, failed);
  return failed == 0 ? 0 : 1;
}
