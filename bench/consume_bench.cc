// consume_bench: consumes the same data (a) through ferryd with the C++ SDK
// Subscriber and (b) straight from the same Kafka broker with a librdkafka
// high-level consumer, in one process, and prints throughput, the ratio
// (a)/(b), end-to-end latency percentiles at a fixed publish rate, CPU per
// message and ferryd's peak RSS.
//
//   consume_bench --messages 200000 --partitions 4 --rate 5000
//
// Three passes:
//   1. backlog: N messages are produced first (direct librdkafka producer),
//      then each path consumes the whole backlog with a fresh consumer group
//      starting at the earliest offset, alternating in ABBA order.
//   2. latency: a producer publishes at a fixed rate into a fresh topic while
//      one path consumes it live (fresh group); each message carries its
//      publish time (system clock) in its first 8 bytes, and latency is the
//      receive time in the application minus that. One path after the other.
//   3. filter: a fresh backlog consumed through ferryd without a filter and
//      with --filter (default: 10 % of the keys), alternating in ABBA order:
//      how fast ferryd reads the backlog and what each delivered message
//      costs in CPU when ferryd skips the other 90 %.
//
// Without --bootstrap/--ferryd it starts its own broker (testing::KafkaBroker)
// and ferryd (testing::FerrydProcess) and removes them at exit. bench/README.md
// explains the method and every column; bench/RESULTS.md has measurements.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "ferry/client/subscriber.h"
#include "filter/filter.h"

namespace ferry::bench {
namespace {

// Wall-clock nanoseconds: what the payload carries and latency is measured
// against (producer and consumers run in this process, on one clock).
int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Options {
  int64_t messages = 200000;
  int size = 1024;
  int partitions = 4;
  int rounds = 2;
  int keys = 1000;
  double rate = 5000;
  double latency_seconds = 20;
  double latency_warmup_seconds = 3;
  double timeout_seconds = 300;
  int producer_linger_ms = 1;
  // SDK options; negative / 0: the SDK's default.
  int handler_threads = -1;
  int64_t flow_messages = 0;
  int64_t flow_bytes = 0;
  int ack_batch = 0;
  int ack_delay_ms = -1;
  // A third backlog path: the SDK's pull API with NextBatch's views.
  bool sdk_view = false;
  bool view_ack_all = false;
  // ferryd.
  std::vector<std::string> ferryd_subscribe;  // subscribe.KEY=VALUE
  std::vector<std::string> ferryd_env;
  std::string bootstrap;
  std::string ferryd;
  int ferryd_pid = 0;
  int broker_pid = 0;
  bool skip_backlog = false;
  bool skip_latency = false;
  bool skip_filter = false;
  bool latency_alone = false;
  // Keys are "key-0000".."key-<keys-1>": with 1000 keys this is 10 % of them.
  std::string filter = "hasSuffix(key, \"0\")";
};

// ---------------------------------------------------------------------------
// Producing: a direct librdkafka producer configured like ferryd's.

class Producer {
 public:
  static std::unique_ptr<Producer> Create(const std::string& bootstrap, int linger_ms,
                                          std::string* error) {
    std::unique_ptr<Producer> p(new Producer());
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    const std::vector<std::pair<std::string, std::string>> settings = {
        {"bootstrap.servers", bootstrap},
        {"client.id", "consume-bench-producer"},
        {"acks", "all"},
        {"enable.idempotence", "true"},
        {"linger.ms", std::to_string(linger_ms)},
        {"message.timeout.ms", "30000"},
        {"partitioner", "murmur2_random"},
    };
    char errstr[512];
    for (const auto& [key, value] : settings) {
      if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof(errstr)) !=
          RD_KAFKA_CONF_OK) {
        *error = fmt::format("{}: {}", key, errstr);
        rd_kafka_conf_destroy(conf);
        return nullptr;
      }
    }
    rd_kafka_conf_set_opaque(conf, p.get());
    rd_kafka_conf_set_dr_msg_cb(conf, &Producer::OnDelivery);
    p->rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (p->rk_ == nullptr) {
      *error = errstr;
      rd_kafka_conf_destroy(conf);
      return nullptr;
    }
    p->poller_ = std::thread([raw = p.get()] {
      while (!raw->stop_.load()) rd_kafka_poll(raw->rk_, 100);
    });
    return p;
  }

  ~Producer() {
    stop_ = true;
    if (poller_.joinable()) poller_.join();
    if (rk_ != nullptr) {
      rd_kafka_flush(rk_, 10000);
      rd_kafka_destroy(rk_);
    }
  }

  // Produces one message whose value is `payload` with the current wall
  // clock in its first 8 bytes (also stored in *stamped, if not null).
  // Waits while librdkafka's queue is full.
  bool Produce(const std::string& topic, const std::string& key, std::string& payload,
               int64_t* stamped = nullptr) {
    for (;;) {
      const int64_t now = WallNs();
      std::memcpy(payload.data(), &now, sizeof(now));
      if (stamped != nullptr) *stamped = now;
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
          RD_KAFKA_V_VALUE(payload.data(), payload.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        produced_.fetch_add(1);
        return true;
      }
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
      NoteError(rd_kafka_err2str(err));
      return false;
    }
  }

  // Waits until every produced message has its delivery report.
  bool Flush(double seconds) {
    return rd_kafka_flush(rk_, static_cast<int>(seconds * 1000)) ==
           RD_KAFKA_RESP_ERR_NO_ERROR;
  }

  int64_t produced() const { return produced_.load(); }
  int64_t failed() const { return failed_.load(); }
  std::string first_error() {
    std::lock_guard lock(mu_);
    return first_error_;
  }

  // High watermark of every partition of `topic` (0..partitions-1).
  bool HighWatermarks(const std::string& topic, int partitions,
                      std::vector<int64_t>* out) {
    out->assign(partitions, 0);
    for (int p = 0; p < partitions; ++p) {
      int64_t low = 0, high = 0;
      rd_kafka_resp_err_t err =
          rd_kafka_query_watermark_offsets(rk_, topic.c_str(), p, &low, &high, 10000);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        Log("watermarks of {}/{}: {}", topic, p, rd_kafka_err2str(err));
        return false;
      }
      (*out)[p] = high;
    }
    return true;
  }

 private:
  Producer() = default;

  void NoteError(const char* error) {
    failed_.fetch_add(1);
    std::lock_guard lock(mu_);
    if (first_error_.empty()) first_error_ = error;
  }

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      static_cast<Producer*>(opaque)->NoteError(rd_kafka_err2str(message->err));
    }
  }

  rd_kafka_t* rk_ = nullptr;
  std::thread poller_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> produced_{0};
  std::atomic<int64_t> failed_{0};
  std::mutex mu_;
  std::string first_error_;
};

// ---------------------------------------------------------------------------
// What a consumer saw.

// Counts distinct (partition, offset) pairs as they arrive (duplicates from
// at-least-once redelivery count once), stamps the first arrival and the
// arrival that completed the target, and in latency mode records receive
// time - publish time for messages published inside a window.
// Thread-safe: Seen() is called on any number of handler threads.
class Tracker {
 public:
  // `capacity[p]`: offsets 0..capacity[p]-1 of partition p are tracked.
  Tracker(const std::vector<int64_t>& capacity, int64_t target)
      : target_(target), created_ns_(NowNs()) {
    for (int64_t c : capacity) {
      seen_.push_back(std::make_unique<std::atomic<uint8_t>[]>(c));
      capacity_.push_back(c);
    }
  }

  // Latency mode: record messages whose publish time is in [from, to)
  // (wall-clock ns).
  void SetWindow(int64_t from_wall_ns, int64_t to_wall_ns) {
    std::lock_guard lock(mu_);
    window_from_ = from_wall_ns;
    window_to_ = to_wall_ns;
  }

  void Seen(int32_t partition, int64_t offset, const char* value, size_t size) {
    const int64_t now = NowNs();
    received_.fetch_add(1, std::memory_order_relaxed);
    int64_t expected = 0;
    first_ns_.compare_exchange_strong(expected, now);
    if (latency_mode_.load(std::memory_order_relaxed) && size >= sizeof(int64_t)) {
      int64_t published = 0;
      std::memcpy(&published, value, sizeof(published));
      const int64_t latency = WallNs() - published;
      std::lock_guard lock(mu_);
      if (published >= window_from_ && published < window_to_) {
        latency_ns_.push_back(latency);
      }
    }
    if (partition < 0 || partition >= static_cast<int32_t>(seen_.size()) || offset < 0 ||
        offset >= capacity_[partition]) {
      untracked_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (seen_[partition][offset].exchange(1, std::memory_order_relaxed) != 0) return;
    if (distinct_.fetch_add(1) + 1 == target_) {
      done_ns_.store(now);
      done_.store(true);
      done_.notify_all();
    }
  }

  void EnableLatency() { latency_mode_.store(true); }

  // Waits until the target is reached or `seconds` pass; true if reached.
  bool WaitDone(double seconds) const {
    const int64_t until = NowNs() + static_cast<int64_t>(seconds * 1e9);
    while (!done_.load()) {
      if (NowNs() >= until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  int64_t distinct() const { return distinct_.load(); }
  int64_t received() const { return received_.load(); }
  int64_t untracked() const { return untracked_.load(); }
  int64_t first_ns() const { return first_ns_.load(); }
  int64_t done_ns() const { return done_ns_.load(); }
  int64_t created_ns() const { return created_ns_; }
  size_t window_count() {
    std::lock_guard lock(mu_);
    return latency_ns_.size();
  }
  std::vector<int64_t> TakeLatencies() {
    std::lock_guard lock(mu_);
    return std::move(latency_ns_);
  }

 private:
  const int64_t target_;
  const int64_t created_ns_;
  std::vector<std::unique_ptr<std::atomic<uint8_t>[]>> seen_;
  std::vector<int64_t> capacity_;
  std::atomic<int64_t> received_{0};
  std::atomic<int64_t> distinct_{0};
  std::atomic<int64_t> untracked_{0};
  std::atomic<int64_t> first_ns_{0};
  std::atomic<int64_t> done_ns_{0};
  std::atomic<bool> done_{false};
  std::atomic<bool> latency_mode_{false};
  std::mutex mu_;
  int64_t window_from_ = INT64_MAX;
  int64_t window_to_ = INT64_MAX;
  std::vector<int64_t> latency_ns_;
};

// ---------------------------------------------------------------------------
// The two consumers. Each starts consuming when created and stops when
// destroyed.

class Consumer {
 public:
  virtual ~Consumer() = default;
  // A fatal error, if any (the run is abandoned).
  virtual std::string Failure() = 0;
};

// (b) librdkafka high-level consumer: subscribe with a fresh group, start at
// the earliest offset, auto commit (librdkafka's defaults: every 5 s, of
// what the application polled), one thread polling.
class DirectConsumer final : public Consumer {
 public:
  static std::unique_ptr<DirectConsumer> Create(const std::string& bootstrap,
                                                const std::string& group,
                                                const std::string& topic,
                                                Tracker* tracker, std::string* error) {
    std::unique_ptr<DirectConsumer> c(new DirectConsumer(tracker));
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    const std::vector<std::pair<std::string, std::string>> settings = {
        {"bootstrap.servers", bootstrap},
        {"client.id", "consume-bench-direct"},
        {"group.id", group},
        {"auto.offset.reset", "earliest"},
        {"enable.auto.commit", "true"},
        {"enable.partition.eof", "false"},
    };
    char errstr[512];
    for (const auto& [key, value] : settings) {
      if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof(errstr)) !=
          RD_KAFKA_CONF_OK) {
        *error = fmt::format("{}: {}", key, errstr);
        rd_kafka_conf_destroy(conf);
        return nullptr;
      }
    }
    c->rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (c->rk_ == nullptr) {
      *error = errstr;
      rd_kafka_conf_destroy(conf);
      return nullptr;
    }
    rd_kafka_poll_set_consumer(c->rk_);
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic.c_str(), RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk_, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      *error = fmt::format("subscribe: {}", rd_kafka_err2str(err));
      return nullptr;
    }
    c->thread_ = std::thread([raw = c.get()] { raw->Run(); });
    return c;
  }

  ~DirectConsumer() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (rk_ != nullptr) {
      rd_kafka_consumer_close(rk_);  // Commits what was polled, leaves the group.
      rd_kafka_destroy(rk_);
    }
  }

  std::string Failure() override { return {}; }

 private:
  explicit DirectConsumer(Tracker* tracker) : tracker_(tracker) {}

  void Run() {
    while (!stop_.load(std::memory_order_relaxed)) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 100);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        tracker_->Seen(m->partition, m->offset, static_cast<const char*>(m->payload),
                       m->len);
      } else if (errors_++ < 5) {
        Log("direct consumer: {}", rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
    }
  }

  Tracker* const tracker_;
  rd_kafka_t* rk_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  int errors_ = 0;
};

struct SdkOptions {
  int handler_threads = -1;
  int64_t flow_messages = 0;
  int64_t flow_bytes = 0;
  int ack_batch = 0;
  int ack_delay_ms = -1;
  // Pull MessageBatches (NextBatch) on one thread instead of the callback API;
  // ack each message by index, or the whole batch with AckAll.
  bool views = false;
  bool ack_all = false;
};

// (a) The C++ SDK Subscriber, callback API: the handler acks every message
// at once. Fresh group, start at the earliest offset.
// (a') With SdkOptions::views: one thread takes MessageBatches with NextBatch,
// reads each message through its view and acks it.
class FerryConsumer final : public Consumer {
 public:
  static std::unique_ptr<FerryConsumer> Create(const std::string& ferryd,
                                               const std::string& group,
                                               const std::string& topic,
                                               const SdkOptions& sdk,
                                               const std::string& filter,
                                               Tracker* tracker, std::string* error) {
    std::unique_ptr<FerryConsumer> c(new FerryConsumer());
    client::Subscriber::Builder builder;
    builder.Endpoints({ferryd})
        .Group(group)
        .Topics({topic})
        .ClientId("consume-bench")
        .StartAt(client::StartPosition::Earliest())
        .Filter(filter)
        .OnError([raw = c.get()](const client::SubscriberError& e) {
          Log("ferry subscriber: {} code {}: {}", e.fatal ? "fatal" : "error", e.code,
              e.error);
          if (e.fatal) {
            std::lock_guard lock(raw->mu_);
            raw->failure_ = e.error;
          }
        });
    if (!sdk.views) {
      builder.OnMessage(
          [tracker](const client::ReceivedMessage& message, client::AckHandle handle) {
            tracker->Seen(message.partition, message.offset, message.value.data(),
                          message.value.size());
            handle.Ack();
          });
    }
    if (sdk.handler_threads > 0) builder.HandlerThreads(sdk.handler_threads);
    if (sdk.flow_messages > 0 || sdk.flow_bytes > 0) {
      builder.FlowControl(sdk.flow_messages > 0 ? sdk.flow_messages : 1000,
                          sdk.flow_bytes > 0 ? sdk.flow_bytes : int64_t{10} << 20);
    }
    if (sdk.ack_batch > 0 || sdk.ack_delay_ms >= 0) {
      builder.AckBatch(
          sdk.ack_batch > 0 ? sdk.ack_batch : 500,
          std::chrono::milliseconds(sdk.ack_delay_ms >= 0 ? sdk.ack_delay_ms : 5));
    }
    c->subscriber_ = builder.Build(error);
    if (c->subscriber_ == nullptr) return nullptr;
    if (sdk.views) {
      c->puller_ = std::thread([raw = c.get(), tracker, ack_all = sdk.ack_all] {
        raw->Pull(tracker, ack_all);
      });
    }
    return c;
  }

  ~FerryConsumer() override {
    stop_ = true;
    if (puller_.joinable()) puller_.join();
    if (subscriber_ != nullptr) subscriber_->Close(std::chrono::seconds(10));
  }

  std::string Failure() override {
    std::lock_guard lock(mu_);
    return failure_;
  }

  client::SubscriberStats Stats() const { return subscriber_->Stats(); }

 private:
  FerryConsumer() = default;

  void Pull(Tracker* tracker, bool ack_all) {
    while (!stop_) {
      std::optional<client::MessageBatch> batch =
          subscriber_->NextBatch(std::chrono::milliseconds(100));
      if (!batch.has_value()) continue;
      for (std::size_t i = 0; i < batch->size(); ++i) {
        const client::ReceivedView& message = (*batch)[i];
        tracker->Seen(message.partition, message.offset, message.value.data(),
                      message.value.size());
        if (!ack_all) batch->Ack(i);
      }
      if (ack_all) batch->AckAll();
    }
  }

  std::atomic<bool> stop_{false};
  std::thread puller_;

  std::mutex mu_;
  std::string failure_;
  std::unique_ptr<client::Subscriber> subscriber_;
};

// ---------------------------------------------------------------------------
// Results.

struct Cpu {
  double client = 0, ferryd = 0, broker = 0, machine = 0;
};

Cpu operator-(const Cpu& a, const Cpu& b) {
  return Cpu{a.client - b.client, a.ferryd - b.ferryd, a.broker - b.broker,
             a.machine - b.machine};
}

// One path's backlog runs, merged.
struct BacklogResult {
  int64_t messages = 0;      // distinct messages consumed
  int64_t received = 0;      // including redeliveries
  double seconds = 0;        // sum over runs of (target reached - first message)
  double start_seconds = 0;  // sum over runs of (consumer created - first message)
  double total_seconds = 0;  // sum over runs of (consumer created - target reached)
  int runs = 0;
  Cpu cpu;
  double cpu_wall = 0;
  int64_t peak_rss_kb = -1;
  int64_t rss_before_kb = -1;
  std::vector<double> run_rates;

  double rate() const {
    return seconds > 0 ? static_cast<double>(messages) / seconds : 0;
  }
};

struct LatencyResult {
  int64_t published = 0;            // in the measurement window
  int64_t received = 0;             // of those
  std::vector<int64_t> latency_ns;  // sorted
};

enum class Path { kDirect, kFerry, kFerryView };

const char* PathName(Path path) {
  switch (path) {
    case Path::kDirect:
      return "(b) direct librdkafka";
    case Path::kFerry:
      return "(a) Ferry SDK ← ferryd";
    case Path::kFerryView:
      return "(a') Ferry SDK NextBatch views ← ferryd";
  }
  return "";
}

// ---------------------------------------------------------------------------
// The benchmark.

class Bench {
 public:
  Bench(Options options, const Infra& infra)
      : o_(std::move(options)),
        bootstrap_(infra.bootstrap),
        ferryd_(infra.ferryd),
        ferryd_pid_(infra.ferryd_pid),
        broker_pid_(infra.broker_pid),
        rss_(infra.ferryd_pid),
        sdk_{.handler_threads = o_.handler_threads,
             .flow_messages = o_.flow_messages,
             .flow_bytes = o_.flow_bytes,
             .ack_batch = o_.ack_batch,
             .ack_delay_ms = o_.ack_delay_ms,
             .views = false,
             .ack_all = o_.view_ack_all} {
    for (int k = 0; k < o_.keys; ++k) keys_.push_back(fmt::format("key-{:04d}", k));
  }

  BacklogResult backlog_direct, backlog_ferry, backlog_view;
  // Filter pass: what the backlog held, and the Ferry runs without / with the
  // filter (their `messages` count deliveries).
  int64_t filter_backlog = 0;
  BacklogResult unfiltered, filtered;
  // Latency pass: per path, and what both shared.
  LatencyResult latency_direct, latency_ferry;
  int64_t latency_published = 0;
  Cpu latency_cpu;
  double latency_cpu_wall = 0;
  int64_t latency_rss_kb = -1;

  int64_t FerrydHwmKb() const {
    return ferryd_pid_ > 0 ? StatusKb(ferryd_pid_, "VmHWM") : -1;
  }
  int64_t FerrydOverallPeakKb() const { return rss_.OverallPeak(); }

  bool RunBacklog() {
    const std::string topic = Name("backlog");
    if (!CreateTopic(ferryd_, topic, o_.partitions)) return false;
    std::string error;
    auto producer = Producer::Create(bootstrap_, 5, &error);
    if (producer == nullptr) {
      Log("producer: {}", error);
      return false;
    }
    Log("backlog: producing {} messages of {} bytes into {} ({} partitions)", o_.messages,
        o_.size, topic, o_.partitions);
    std::string payload(static_cast<size_t>(o_.size), 'x');
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int> pick(0, o_.keys - 1);
    const int64_t start = NowNs();
    for (int64_t i = 0; i < o_.messages; ++i) {
      if (!producer->Produce(topic, keys_[pick(rng)], payload)) break;
    }
    if (!producer->Flush(120) || producer->failed() > 0) {
      Log("backlog: {} messages failed; first: {}", producer->failed(),
          producer->first_error());
      return false;
    }
    Log("backlog: produced in {:.1f} s", static_cast<double>(NowNs() - start) / 1e9);
    std::vector<int64_t> high;
    if (!producer->HighWatermarks(topic, o_.partitions, &high)) return false;
    int64_t total = 0;
    for (int64_t h : high) total += h;
    Log("backlog: partitions hold {} messages ({})", total, fmt::join(high, ", "));
    producer.reset();

    for (int round = 0; round < o_.rounds; ++round) {
      const bool direct_first = round % 2 == 0;
      for (Path path : {direct_first ? Path::kDirect : Path::kFerry,
                        direct_first ? Path::kFerry : Path::kDirect}) {
        if (!ConsumeBacklog(path, topic, high, total,
                            path == Path::kDirect ? &backlog_direct : &backlog_ferry)) {
          return false;
        }
      }
      if (o_.sdk_view &&
          !ConsumeBacklog(Path::kFerryView, topic, high, total, &backlog_view)) {
        return false;
      }
    }
    return true;
  }

 private:
  std::string Name(const char* what) {
    return fmt::format("bench.consume.{}.{}.{}", what, getpid(), ++names_);
  }

  Cpu CpuNow() const {
    return Cpu{CpuSeconds(0), ferryd_pid_ > 0 ? CpuSeconds(ferryd_pid_) : 0,
               broker_pid_ > 0 ? CpuSeconds(broker_pid_) : 0, MachineBusySeconds()};
  }

  std::unique_ptr<Consumer> NewConsumer(Path path, const std::string& group,
                                        const std::string& topic, Tracker* tracker,
                                        const std::string& filter = "") {
    std::string error;
    std::unique_ptr<Consumer> consumer;
    if (path == Path::kDirect) {
      consumer = DirectConsumer::Create(bootstrap_, group, topic, tracker, &error);
    } else {
      SdkOptions sdk = sdk_;
      sdk.views = path == Path::kFerryView;
      consumer =
          FerryConsumer::Create(ferryd_, group, topic, sdk, filter, tracker, &error);
    }
    if (consumer == nullptr) Log("{} consumer: {}", PathName(path), error);
    return consumer;
  }

  // Consumes until `total` distinct messages arrived (with `filter`: the
  // ones it matches).
  bool ConsumeBacklog(Path path, const std::string& topic,
                      const std::vector<int64_t>& high, int64_t total,
                      BacklogResult* into, const std::string& filter = "") {
    const char* const label = path == Path::kDirect  ? "direct"
                              : path == Path::kFerry ? "ferry"
                                                     : "ferry-view";
    const std::string group = Name(label);
    Log("  {} run: group {}", label, group);
    Tracker tracker(high, total);
    const int64_t rss_before = ferryd_pid_ > 0 ? StatusKb(ferryd_pid_, "VmRSS") : -1;
    rss_.Reset();
    const Cpu before = CpuNow();
    const int64_t before_ns = NowNs();
    auto consumer = NewConsumer(path, group, topic, &tracker, filter);
    if (consumer == nullptr) return false;
    bool done = false;
    const int64_t until = NowNs() + static_cast<int64_t>(o_.timeout_seconds * 1e9);
    while (!(done = tracker.WaitDone(0.1)) && NowNs() < until) {
      if (std::string failure = consumer->Failure(); !failure.empty()) break;
    }
    const Cpu used = CpuNow() - before;
    const double wall = static_cast<double>(NowNs() - before_ns) / 1e9;
    const int64_t peak = rss_.Peak();
    std::string extra;
    if (auto* ferry = dynamic_cast<FerryConsumer*>(consumer.get())) {
      const client::SubscriberStats s = ferry->Stats();
      extra = fmt::format(", SDK: received {}, acks sent {}, reconnects {}", s.received,
                          s.acks_sent, s.reconnects);
    }
    consumer.reset();  // Leaves the group; not measured.
    if (!done) {
      Log("  {} run: only {} of {} messages within {} s", PathName(path),
          tracker.distinct(), total, o_.timeout_seconds);
      return false;
    }
    const double seconds =
        static_cast<double>(tracker.done_ns() - tracker.first_ns()) / 1e9;
    const double start =
        static_cast<double>(tracker.first_ns() - tracker.created_ns()) / 1e9;
    into->messages += total;
    into->received += tracker.received();
    into->seconds += seconds;
    into->start_seconds += start;
    into->total_seconds +=
        static_cast<double>(tracker.done_ns() - tracker.created_ns()) / 1e9;
    into->runs += 1;
    into->cpu.client += used.client;
    into->cpu.ferryd += used.ferryd;
    into->cpu.broker += used.broker;
    into->cpu.machine += used.machine;
    into->cpu_wall += wall;
    into->run_rates.push_back(static_cast<double>(total) / seconds);
    if (path != Path::kDirect) {
      into->peak_rss_kb = std::max(into->peak_rss_kb, peak);
      if (into->rss_before_kb < 0) into->rss_before_kb = rss_before;
    }
    Log("  {} run: {} messages in {:.2f} s after {:.2f} s to the first: {:.0f} msgs/s"
        "{}{}",
        label, total, seconds, start, static_cast<double>(total) / seconds,
        path != Path::kDirect
            ? fmt::format(", ferryd RSS {} → peak {}", Mib(rss_before), Mib(peak))
            : "",
        extra);
    return true;
  }

 public:
  // A fresh backlog of --messages, consumed through ferryd without and with
  // --filter. The bench knows which messages match because the filter reads
  // only the key (checked by counting with the same library ferryd uses).
  bool RunFilter() {
    auto parsed = filter::Filter::Parse(o_.filter);
    if (!parsed.ok()) {
      Log("--filter: {}", std::string(parsed.status().message()));
      return false;
    }
    const std::string topic = Name("filter");
    if (!CreateTopic(ferryd_, topic, o_.partitions)) return false;
    std::string error;
    auto producer = Producer::Create(bootstrap_, 5, &error);
    if (producer == nullptr) {
      Log("producer: {}", error);
      return false;
    }
    std::string payload(static_cast<size_t>(o_.size), 'x');
    std::mt19937 rng(99);
    std::uniform_int_distribution<int> pick(0, o_.keys - 1);
    int64_t matching = 0;
    for (int64_t i = 0; i < o_.messages; ++i) {
      const std::string& key = keys_[pick(rng)];
      matching += parsed->Matches({.topic = topic, .key = key});
      if (!producer->Produce(topic, key, payload)) break;
    }
    if (!producer->Flush(120) || producer->failed() > 0) {
      Log("filter: {} messages failed; first: {}", producer->failed(),
          producer->first_error());
      return false;
    }
    std::vector<int64_t> high;
    if (!producer->HighWatermarks(topic, o_.partitions, &high)) return false;
    producer.reset();
    filter_backlog = 0;
    for (int64_t h : high) filter_backlog += h;
    Log("filter: {} of {} messages match {}", matching, filter_backlog, o_.filter);
    for (int round = 0; round < o_.rounds; ++round) {
      const bool plain_first = round % 2 == 0;
      for (bool with_filter : {!plain_first, plain_first}) {
        if (!ConsumeBacklog(
                Path::kFerry, topic, high, with_filter ? matching : filter_backlog,
                with_filter ? &filtered : &unfiltered, with_filter ? o_.filter : "")) {
          return false;
        }
      }
    }
    return true;
  }

  // Both consumers read the same live topic at the same time (each with its
  // own fresh group), so they see the same messages, broker and machine load.
  // Runs the latency pass with the direct consumer, the Ferry one, or both
  // at once (each has its own group on the same topic).
  bool RunLatency(bool with_direct, bool with_ferry) {
    const std::string topic = Name("live");
    if (!CreateTopic(ferryd_, topic, o_.partitions)) return false;
    std::string error;
    auto producer = Producer::Create(bootstrap_, o_.producer_linger_ms, &error);
    if (producer == nullptr) {
      Log("producer: {}", error);
      return false;
    }
    // Offsets of a partition never exceed what is published in the pass.
    const double max_seconds = o_.latency_warmup_seconds + o_.latency_seconds + 60 + 5;
    const auto capacity = static_cast<int64_t>(o_.rate * max_seconds * 1.1) + 1000;
    const std::vector<int64_t> capacities(o_.partitions, capacity);
    Tracker direct_tracker(capacities, INT64_MAX), ferry_tracker(capacities, INT64_MAX);
    direct_tracker.EnableLatency();
    ferry_tracker.EnableLatency();
    const std::string direct_group = Name("direct"), ferry_group = Name("ferry");
    auto direct = with_direct
                      ? NewConsumer(Path::kDirect, direct_group, topic, &direct_tracker)
                      : nullptr;
    auto ferry = with_ferry
                     ? NewConsumer(Path::kFerry, ferry_group, topic, &ferry_tracker)
                     : nullptr;
    if ((with_direct && direct == nullptr) || (with_ferry && ferry == nullptr)) {
      return false;
    }

    // The producer publishes from now on; the window opens once both
    // consumers received a message and the warm-up passed, and closes
    // --latency-seconds later.
    Log("latency: publishing {:.0f} msgs/s of {} bytes into {}; groups {} (direct), {} "
        "(ferry)",
        o_.rate, o_.size, topic, direct_group, ferry_group);
    std::atomic<int64_t> stop_at{INT64_MAX};
    std::atomic<int64_t> window_from{INT64_MAX}, window_to{INT64_MAX};
    std::atomic<int64_t> in_window{0};
    std::atomic<bool> producer_failed{false};
    std::thread publisher([&] {
      std::string payload(static_cast<size_t>(o_.size), 'x');
      std::mt19937 rng(4321);
      std::uniform_int_distribution<int> pick(0, o_.keys - 1);
      const auto interval_ns = static_cast<int64_t>(1e9 / o_.rate);
      const int64_t start = NowNs();
      for (int64_t i = 0;; ++i) {
        const int64_t at = start + i * interval_ns;
        if (at >= stop_at.load()) break;
        const int64_t now = NowNs();
        // Sleeping at least 1 ms sends what fell due meanwhile as a burst
        // (as publish_bench's paced pass does).
        if (at > now) {
          std::this_thread::sleep_for(
              std::chrono::nanoseconds(std::max<int64_t>(at - now, 1000000)));
        }
        int64_t stamped = 0;
        if (!producer->Produce(topic, keys_[pick(rng)], payload, &stamped)) {
          producer_failed = true;
          break;
        }
        if (stamped >= window_from.load() && stamped < window_to.load()) {
          in_window.fetch_add(1);
        }
      }
    });

    const int64_t started_ns = NowNs();
    bool ok = true;
    const int64_t ready_until = started_ns + int64_t{60} * 1000000000;
    auto ready = [&] {
      return (!with_direct || direct_tracker.first_ns() != 0) &&
             (!with_ferry || ferry_tracker.first_ns() != 0);
    };
    auto failed = [&] {
      return (with_direct && !direct->Failure().empty()) ||
             (with_ferry && !ferry->Failure().empty());
    };
    while (!ready() && NowNs() < ready_until && !failed() && !producer_failed) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!ready()) {
      Log("latency: a consumer received nothing within 60 s (direct {}, ferry {})",
          direct_tracker.received(), ferry_tracker.received());
      ok = false;
    }
    if (ok) {
      // At least 1 s after the later first message (what was published
      // before a consumer was assigned drains meanwhile), and the warm-up.
      const int64_t open_ns = std::max(
          std::max(direct_tracker.first_ns(), ferry_tracker.first_ns()) + 1000000000,
          started_ns + static_cast<int64_t>(o_.latency_warmup_seconds * 1e9));
      if (open_ns > NowNs()) {
        std::this_thread::sleep_for(std::chrono::nanoseconds(open_ns - NowNs()));
      }
      // The window is in publish time (the payload's stamp), set before the
      // publisher can stamp a message inside it.
      const int64_t from = WallNs() + 2000000;
      const int64_t to = from + static_cast<int64_t>(o_.latency_seconds * 1e9);
      direct_tracker.SetWindow(from, to);
      ferry_tracker.SetWindow(from, to);
      window_to = to;
      window_from = from;
      std::this_thread::sleep_for(std::chrono::nanoseconds(from - WallNs()));
      rss_.Reset();
      const Cpu before = CpuNow();
      const int64_t before_ns = NowNs();
      std::this_thread::sleep_for(std::chrono::nanoseconds(to - WallNs()));
      latency_cpu = CpuNow() - before;
      latency_cpu_wall = static_cast<double>(NowNs() - before_ns) / 1e9;
      latency_rss_kb = rss_.Peak();
    }
    stop_at = NowNs();
    publisher.join();
    if (!producer->Flush(30) || producer->failed() > 0 || producer_failed) {
      Log("latency: {} messages failed; first: {}", producer->failed(),
          producer->first_error());
      ok = false;
    }
    if (ok) {
      // Wait for the window's messages to arrive.
      const int64_t until = NowNs() + int64_t{30} * 1000000000;
      auto behind = [&](bool with, Tracker& tracker) {
        return with && static_cast<int64_t>(tracker.window_count()) < in_window.load();
      };
      while ((behind(with_direct, direct_tracker) || behind(with_ferry, ferry_tracker)) &&
             NowNs() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    direct.reset();
    ferry.reset();
    if (!ok) return false;
    latency_published = in_window.load();
    for (auto [tracker, into] : {std::pair{&direct_tracker, &latency_direct},
                                 std::pair{&ferry_tracker, &latency_ferry}}) {
      if (!(into == &latency_direct ? with_direct : with_ferry)) continue;
      into->published = latency_published;
      into->latency_ns = tracker->TakeLatencies();
      into->received = static_cast<int64_t>(into->latency_ns.size());
      std::sort(into->latency_ns.begin(), into->latency_ns.end());
      Log("latency {}: {} of {} window messages received; p50 {:.2f} ms, p99 {:.2f} ms, "
          "p999 {:.2f} ms",
          into == &latency_direct ? "direct" : "ferry", into->received, into->published,
          PercentileMs(into->latency_ns, 0.5), PercentileMs(into->latency_ns, 0.99),
          PercentileMs(into->latency_ns, 0.999));
    }
    return (!with_direct || latency_direct.received >= latency_published) &&
           (!with_ferry || latency_ferry.received >= latency_ferry.published);
  }

 private:
  const Options o_;
  const std::string bootstrap_;
  const std::string ferryd_;
  const int ferryd_pid_;
  const int broker_pid_;
  RssSampler rss_;
  const SdkOptions sdk_;
  std::vector<std::string> keys_;
  int names_ = 0;
};

// ---------------------------------------------------------------------------
// Output.

std::string CpuPerMessage(const Cpu& cpu, int64_t messages, bool known_ferryd,
                          bool known_broker) {
  auto us = [&](double seconds, bool known) {
    if (!known || messages <= 0) return std::string("?");
    return fmt::format("{:.2f}", seconds * 1e6 / static_cast<double>(messages));
  };
  return fmt::format("{} / {} / {}", us(cpu.client, true), us(cpu.ferryd, known_ferryd),
                     us(cpu.broker, known_broker));
}

std::string Load(const Cpu& cpu, double wall) {
  if (wall <= 0) return "n/a";
  const double other = cpu.machine - cpu.client - cpu.ferryd - cpu.broker;
  return fmt::format("{:.2f} busy, {:.2f} other", cpu.machine / wall,
                     std::max(0.0, other) / wall);
}

std::string Rates(const std::vector<double>& rates) {
  std::vector<std::string> out;
  for (double r : rates) out.push_back(fmt::format("{:.0f}", r));
  return fmt::format("{}", fmt::join(out, ", "));
}

void PrintBacklog(const Options& o, const BacklogResult& b, const BacklogResult& a,
                  const BacklogResult& view, bool known_ferryd, bool known_broker) {
  fmt::print(
      "\n### Backlog: {} messages of {} B in {} partitions, fresh group each run\n\n",
      o.messages, o.size, o.partitions);
  fmt::print(
      "| path | runs | msgs/s | MB/s | ratio | per run msgs/s | s to first msg | "
      "ferryd peak RSS | CPU µs/msg client / ferryd / broker | cores busy |\n");
  fmt::print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  auto row = [&](Path path, const BacklogResult& r, const std::string& ratio) {
    fmt::print("| {} | {} | {:.0f} | {:.1f} | {} | {} | {:.2f} | {} | {} | {} |\n",
               PathName(path), r.runs, r.rate(), r.rate() * o.size / 1e6, ratio,
               Rates(r.run_rates), r.runs > 0 ? r.start_seconds / r.runs : NAN,
               path != Path::kDirect ? fmt::format("{} (before: {})", Mib(r.peak_rss_kb),
                                                   Mib(r.rss_before_kb))
                                     : "–",
               CpuPerMessage(r.cpu, r.messages, known_ferryd, known_broker),
               Load(r.cpu, r.cpu_wall));
  };
  row(Path::kDirect, b, "");
  row(Path::kFerry, a, fmt::format("**{:.2f}**", a.rate() / b.rate()));
  if (view.runs > 0) {
    row(Path::kFerryView, view, fmt::format("**{:.2f}**", view.rate() / b.rate()));
  }
  fmt::print(
      "\nmsgs/s = distinct messages / (time the last one arrived − time the first "
      "arrived), summed over runs; the join (consumer created → first message) is "
      "the \"s to first msg\" column. Ferry received {} deliveries for {} messages "
      "(redeliveries: {}); direct {} for {}.\n",
      a.received, a.messages, a.received - a.messages, b.received, b.messages);
}

void PrintFilter(const Options& o, const Bench& bench, bool known_ferryd) {
  fmt::print(
      "\n### Filter: a backlog of {} messages of {} B in {} partitions through ferryd, "
      "without and with `{}`\n\n",
      bench.filter_backlog, o.size, o.partitions, o.filter);
  fmt::print(
      "| filter | runs | delivered per run | s per run | backlog read msgs/s | "
      "delivered msgs/s | CPU µs per delivered msg client / ferryd |\n");
  fmt::print("|---|--:|--:|--:|--:|--:|--:|\n");
  auto row = [&](const char* name, const BacklogResult& r) {
    if (r.runs == 0 || r.total_seconds <= 0) return;
    const double per_run = r.total_seconds / r.runs;
    auto us = [&](double seconds, bool known) {
      return known
                 ? fmt::format("{:.1f}", seconds * 1e6 / static_cast<double>(r.messages))
                 : std::string("?");
    };
    fmt::print("| {} | {} | {} | {:.2f} | {:.0f} | {:.0f} | {} / {} |\n", name, r.runs,
               r.messages / r.runs, per_run,
               static_cast<double>(bench.filter_backlog) / per_run,
               static_cast<double>(r.messages) / r.total_seconds, us(r.cpu.client, true),
               us(r.cpu.ferryd, known_ferryd));
  };
  row("none", bench.unfiltered);
  row(o.filter.c_str(), bench.filtered);
  fmt::print(
      "\nTimes run from creating the consumer (fresh group, earliest) to the last "
      "expected delivery, join included. CPU is the whole process's (client) and "
      "ferryd's over the same span.\n");
}

void PrintLatency(const Options& o, const Bench& bench, bool known_ferryd,
                  bool known_broker) {
  fmt::print(
      "\n### End-to-end latency: {:.0f} msgs/s of {} B for {:.0f} s, {} partitions, "
      "{}\n\n",
      o.rate, o.size, o.latency_seconds, o.partitions,
      o.latency_alone
          ? "each consumer alone (direct, then Ferry; CPU and RSS: the Ferry pass)"
          : "both consumers at once");
  fmt::print("| path | msgs | p50 ms | p99 ms | p999 ms | max ms |\n");
  fmt::print("|---|--:|--:|--:|--:|--:|\n");
  auto row = [&](Path path, const LatencyResult& r) {
    fmt::print("| {} | {} of {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} |\n", PathName(path),
               r.received, r.published, PercentileMs(r.latency_ns, 0.5),
               PercentileMs(r.latency_ns, 0.99), PercentileMs(r.latency_ns, 0.999),
               PercentileMs(r.latency_ns, 1.0));
  };
  row(Path::kDirect, bench.latency_direct);
  row(Path::kFerry, bench.latency_ferry);
  fmt::print(
      "\nLatency = receive time in the application (Ferry: handler entry; direct: "
      "rd_kafka_consumer_poll returned) − publish time stamped into the payload just "
      "before rd_kafka_producev; both include the producer (linger.ms {}, acks=all) "
      "and the broker. Ferry p99 − direct p99: **{:+.2f} ms**. During the window: "
      "ferryd peak RSS {}; CPU µs/msg client (producer + both consumers) / ferryd / "
      "broker {}; cores busy {}.\n",
      o.producer_linger_ms,
      PercentileMs(bench.latency_ferry.latency_ns, 0.99) -
          PercentileMs(bench.latency_direct.latency_ns, 0.99),
      Mib(bench.latency_rss_kb),
      CpuPerMessage(bench.latency_cpu, bench.latency_published, known_ferryd,
                    known_broker),
      Load(bench.latency_cpu, bench.latency_cpu_wall));
}

int Main(int argc, char** argv) {
  CLI::App app{
      "consume_bench: Ferry (Kafka -> ferryd -> SDK Subscriber) against a direct "
      "librdkafka consumer on the same broker"};
  Options o;
  app.add_option("--messages", o.messages, "Backlog size (messages)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--size", o.size, "Message value size in bytes (>= 8)")
      ->check(CLI::Range(8, 1000000))
      ->capture_default_str();
  app.add_option("--partitions", o.partitions, "Partitions of each fresh topic")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--rounds", o.rounds,
                 "Backlog consumes per path, alternating in ABBA order")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--keys", o.keys, "Distinct message keys (uniformly random)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--rate", o.rate, "Publish rate of the latency pass (msgs/s)")
      ->check(CLI::Range(1.0, 1e7))
      ->capture_default_str();
  app.add_option("--latency-seconds", o.latency_seconds,
                 "Measured length of the latency pass per path")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  app.add_option("--latency-warmup-seconds", o.latency_warmup_seconds,
                 "Unmeasured publishing before the window opens (at least 1 s after "
                 "the consumer's first message)")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  app.add_option("--producer-linger-ms", o.producer_linger_ms,
                 "linger.ms of the latency pass's producer")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  app.add_option("--timeout-seconds", o.timeout_seconds,
                 "Give up a backlog consume after this long")
      ->check(CLI::Range(1.0, 36000.0))
      ->capture_default_str();
  app.add_option("--handler-threads", o.handler_threads,
                 "SDK HandlerThreads (default: the SDK's, 4)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--flow-messages", o.flow_messages,
                 "SDK FlowControl max outstanding messages (default: the SDK's, 1000)")
      ->check(CLI::PositiveNumber);
  app.add_option("--flow-bytes", o.flow_bytes,
                 "SDK FlowControl max outstanding bytes (default: the SDK's, 10 MiB)")
      ->check(CLI::PositiveNumber);
  app.add_option("--ack-batch", o.ack_batch,
                 "SDK AckBatch max receipts (default: the SDK's, 500)")
      ->check(CLI::PositiveNumber);
  app.add_option("--ack-delay-ms", o.ack_delay_ms,
                 "SDK AckBatch max delay (default: the SDK's, 5 ms)")
      ->check(CLI::Range(0, 60000));
  app.add_option("--ferryd-subscribe", o.ferryd_subscribe,
                 "KEY=VALUE under subscribe: in the config of the ferryd the bench "
                 "starts (e.g. commit_interval=100ms, partition_buffer_bytes=4194304)");
  app.add_option("--ferryd-env", o.ferryd_env,
                 "KEY=VALUE added to the environment of the ferryd the bench starts");
  app.add_option("--bootstrap", o.bootstrap,
                 "Use this running Kafka broker instead of starting one");
  app.add_option("--ferryd", o.ferryd,
                 "Use this running ferryd (host:port) instead of starting one; needs "
                 "--bootstrap of its cluster");
  app.add_option("--ferryd-pid", o.ferryd_pid, "Pid of --ferryd, for RSS and CPU");
  app.add_option("--broker-pid", o.broker_pid, "Pid of --bootstrap's broker, for CPU");
  app.add_flag("--skip-backlog", o.skip_backlog, "Skip the backlog pass");
  app.add_flag("--sdk-view", o.sdk_view,
               "Backlog pass: also consume through the SDK's NextBatch views (one "
               "pulling thread), after the callback API in each round");
  app.add_flag("--view-ack-all", o.view_ack_all,
               "With --sdk-view: ack each batch with AckAll instead of per message");
  app.add_flag("--skip-latency", o.skip_latency, "Skip the latency pass");
  app.add_flag("--skip-filter", o.skip_filter, "Skip the filter pass");
  app.add_option("--filter", o.filter,
                 "Filter of the filter pass; it may read only the key (the bench "
                 "counts its matches)")
      ->capture_default_str();
  app.add_flag("--latency-alone", o.latency_alone,
               "Latency pass: each consumer alone, one after the other, instead of both "
               "at once (each then has the broker to itself)");
  CLI11_PARSE(app, argc, argv);
  if (!o.ferryd.empty() && o.bootstrap.empty()) {
    fmt::print(stderr, "--ferryd needs --bootstrap (the broker of its cluster)\n");
    return 2;
  }
  std::map<std::string, std::string> env, subscribe;
  if (!ParseKeyValues(o.ferryd_env, "--ferryd-env", &env) ||
      !ParseKeyValues(o.ferryd_subscribe, "--ferryd-subscribe", &subscribe)) {
    return 2;
  }
  std::string subscribe_yaml;
  for (const auto& [key, value] : subscribe) {
    subscribe_yaml +=
        fmt::format("{}{}: {}", subscribe_yaml.empty() ? "" : ", ", key, value);
  }
  Infra infra;
  if (!StartInfra(
          o.bootstrap, o.broker_pid, o.ferryd, o.ferryd_pid,
          [&](const std::string& bootstrap) {
            // linger.ms as in publish_bench (ferryd's producer is not used
            // here); subscribe.* as given.
            std::string yaml = fmt::format(
                "log: {{ level: warn }}\n"
                "clusters:\n"
                "  main: {{ type: kafka, bootstrap: \"{}\", properties: {{ "
                "linger.ms: 5 }} }}\n",
                bootstrap);
            if (!subscribe_yaml.empty()) {
              yaml += fmt::format("subscribe: {{ {} }}\n", subscribe_yaml);
            }
            return yaml;
          },
          env, &infra)) {
    return 1;
  }

  bool ok = true;
  int64_t hwm_kb, peak_kb;
  Bench bench(o, infra);
  if (!o.skip_backlog) ok = bench.RunBacklog();
  if (ok && !o.skip_filter) ok = bench.RunFilter();
  if (ok && !o.skip_latency) {
    ok = o.latency_alone ? bench.RunLatency(true, false) && bench.RunLatency(false, true)
                         : bench.RunLatency(true, true);
  }
  hwm_kb = bench.FerrydHwmKb();
  peak_kb = bench.FerrydOverallPeakKb();

  std::string command = "consume_bench";
  for (int i = 1; i < argc; ++i) command += fmt::format(" {}", argv[i]);
  fmt::print("## consume_bench\n\n`{}`\n\n", command);
  auto or_default = [](auto value, bool set, const char* fallback) {
    return set ? fmt::format("{}", value) : fmt::format("default ({})", fallback);
  };
  fmt::print(
      "Resolved: --messages {} --size {} --partitions {} --rounds {} --keys {} --rate "
      "{} --latency-seconds {}; SDK: HandlerThreads {}, FlowControl {} msgs / {} bytes, "
      "AckBatch {} / {} ms; ferryd subscribe: {}{}; latency producer linger.ms {}; {} "
      "hardware threads\n",
      o.messages, o.size, o.partitions, o.rounds, o.keys, o.rate, o.latency_seconds,
      or_default(o.handler_threads, o.handler_threads > 0, "4"),
      or_default(o.flow_messages, o.flow_messages > 0, "1000"),
      or_default(o.flow_bytes, o.flow_bytes > 0, "10 MiB"),
      or_default(o.ack_batch, o.ack_batch > 0, "500"),
      or_default(o.ack_delay_ms, o.ack_delay_ms >= 0, "5"),
      subscribe_yaml.empty() ? std::string("defaults") : subscribe_yaml,
      o.ferryd_env.empty() ? ""
                           : fmt::format(", ferryd env {}", fmt::join(o.ferryd_env, " ")),
      o.producer_linger_ms, std::thread::hardware_concurrency());
  const bool known_ferryd = infra.ferryd_pid > 0, known_broker = infra.broker_pid > 0;
  if (bench.backlog_direct.runs > 0 || bench.backlog_ferry.runs > 0) {
    PrintBacklog(o, bench.backlog_direct, bench.backlog_ferry, bench.backlog_view,
                 known_ferryd, known_broker);
  }
  if (bench.filtered.runs > 0) PrintFilter(o, bench, known_ferryd);
  if (!bench.latency_direct.latency_ns.empty() ||
      !bench.latency_ferry.latency_ns.empty()) {
    PrintLatency(o, bench, known_ferryd, known_broker);
  }
  fmt::print("\nferryd memory: peak VmRSS sampled every 20 ms {}, VmHWM at the end {}\n",
             Mib(peak_kb), Mib(hwm_kb));
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) { return ferry::bench::Main(argc, argv); }
