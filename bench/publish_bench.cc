// publish_bench: publishes the same workload (a) through ferryd with the C++
// SDK and (b) straight to the same Kafka broker with librdkafka, alternating
// the two in one process, and prints throughput, ack latency percentiles,
// the ratio (a)/(b), CPU per message and ferryd's peak RSS.
//
//   publish_bench --messages 100000 --sizes 100,1024,16384
//
// Without --bootstrap/--ferryd it starts its own broker (testing::KafkaBroker)
// and ferryd (testing::FerrydProcess) and removes them at exit. bench/README.md
// explains the method and every column; bench/RESULTS.md has measurements.
//
// Threading: per path and handle, one application thread publishes; the
// direct path has one more thread per producer serving delivery reports
// (rd_kafka_poll), the Ferry path one thread per publishing thread that waits
// for the futures in publish order and stamps their completion.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/api_floor.h"
#include "bench/bench_util.h"
#include "bench/profile_workload.h"
#include "common/stage_trace.h"
#include "ferry/client/publisher.h"
#include "ferry/client/subscriber.h"

namespace ferry::bench {
namespace {

struct Options {
  int64_t messages = 200000;
  std::vector<int> sizes = {100, 1024, 16384};
  int concurrency = 4;
  int partitions = 6;
  int keys = 1000;
  int rounds = 2;
  double paced_fraction = 0.5;
  double paced_seconds = 10;
  int64_t max_run_bytes = int64_t{1} << 30;
  int64_t warmup = 2000;
  double warmup_seconds = 45;
  bool shared_publisher = false;
  bool sdk_callbacks = false;
  // > 0: a third path publishes through PublishMany in calls of this many.
  int sdk_batch = 0;
  // > 0: after the passes, the API floor (api_floor.h) over this many
  // messages per form, beside the direct producer's CPU per message.
  int64_t api_floor_messages = 200000;
  std::string bootstrap;
  std::string ferryd;
  int ferryd_pid = 0;
  int broker_pid = 0;
  std::vector<std::string> ferryd_env;
  double paced_rate = 0;
  int sdk_linger_ms = -1;
  int ferryd_linger_ms = -1;  // -1: ferryd's default
  // KEY=VALUE librdkafka properties of the started ferryd's cluster.
  std::vector<std::string> ferryd_properties;
  // --backends mode (empty: the classic direct-vs-Ferry comparison on Kafka).
  std::vector<std::string> backends;
  double fsync_seconds = 2;
  double consume_timeout_seconds = 300;
};

// ---------------------------------------------------------------------------
// Workload and results.

// What every handle of either path publishes in one run. Both paths get the
// same key sequence per handle.
struct Workload {
  std::string topic;
  const std::string* payload = nullptr;
  const std::vector<std::string>* keys = nullptr;
  // Per handle: indexes into `keys`, one per message (size >= per_handle).
  const std::vector<std::vector<int>>* key_sequence = nullptr;
  int64_t per_handle = 0;
  // 0: as fast as possible. Otherwise each handle starts message i at
  // start + i * interval_ns (open loop; a late message goes at once).
  int64_t interval_ns = 0;
};

// One handle's share of a run.
struct HandleResult {
  std::vector<int64_t> latency_ns;  // Successful messages only.
  int64_t errors = 0;
  std::string first_error;
  int64_t first_send_ns = 0;
  int64_t last_ack_ns = 0;
};

// CPU seconds used by the bench process, ferryd, the broker and the whole
// machine (all CPUs, from /proc/stat).
struct Cpu {
  double client = 0, ferryd = 0, broker = 0, machine = 0;
};

// "1.23 cores busy of 2 (bench 0.40, ferryd 0.30, broker 0.35, other 0.18)":
// what the whole box (all CPUs, /proc/stat) used over `wall` seconds, and
// whose it was; "other" is every process but these three, i.e. noise.
std::string BoxCores(const Cpu& cpu, double wall) {
  if (wall <= 0) return "n/a";
  const double other = cpu.machine - cpu.client - cpu.ferryd - cpu.broker;
  return fmt::format(
      "box {:.2f} cores busy of {} (bench {:.2f}, ferryd {:.2f}, broker {:.2f}, other "
      "{:.2f})",
      cpu.machine / wall, std::thread::hardware_concurrency(), cpu.client / wall,
      cpu.ferryd / wall, cpu.broker / wall, std::max(0.0, other) / wall);
}

// Several runs of one path at one size, merged.
struct PathResult {
  int64_t messages = 0;
  int64_t errors = 0;
  std::string first_error;
  double seconds = 0;  // Sum over runs of (last ack - first send).
  std::vector<int64_t> latency_ns;
  Cpu cpu;
  double cpu_wall = 0;  // Seconds over which `cpu` was measured.
  int64_t peak_rss_kb = -1;

  void Add(std::vector<HandleResult>& handles, const Cpu& used, double wall,
           int64_t rss_kb) {
    int64_t first = INT64_MAX, last = 0;
    for (HandleResult& h : handles) {
      messages += static_cast<int64_t>(h.latency_ns.size()) + h.errors;
      errors += h.errors;
      if (first_error.empty()) first_error = h.first_error;
      first = std::min(first, h.first_send_ns);
      last = std::max(last, h.last_ack_ns);
      latency_ns.insert(latency_ns.end(), h.latency_ns.begin(), h.latency_ns.end());
    }
    seconds += static_cast<double>(last - first) / 1e9;
    cpu.client += used.client;
    cpu.ferryd += used.ferryd;
    cpu.broker += used.broker;
    cpu.machine += used.machine;
    cpu_wall += wall;
    peak_rss_kb = std::max(peak_rss_kb, rss_kb);
  }
  double rate() const {
    return seconds > 0 ? static_cast<double>(messages) / seconds : 0;
  }
  // Nearest-rank percentile in milliseconds; sorts on first use.
  double PercentileMs(double p) {
    if (latency_ns.empty()) return NAN;
    if (!std::is_sorted(latency_ns.begin(), latency_ns.end())) {
      std::sort(latency_ns.begin(), latency_ns.end());
    }
    auto rank =
        static_cast<size_t>(std::ceil(p * static_cast<double>(latency_ns.size())));
    rank = std::clamp<size_t>(rank, 1, latency_ns.size());
    return static_cast<double>(latency_ns[rank - 1]) / 1e6;
  }
};

// Paces one handle: waits until message i's slot (open loop).
class Pacer {
 public:
  Pacer(int64_t start_ns, int64_t interval_ns)
      : start_ns_(start_ns), interval_ns_(interval_ns) {}
  void Wait(int64_t i) const {
    if (interval_ns_ == 0) return;
    const int64_t at = start_ns_ + i * interval_ns_;
    const int64_t now = NowNs();
    // Sleeping at least 1 ms sends what fell due meanwhile as a burst: far
    // fewer wake-ups than one per message, bursts well below linger.ms.
    if (at > now) {
      std::this_thread::sleep_for(
          std::chrono::nanoseconds(std::max<int64_t>(at - now, 1000000)));
    }
  }

 private:
  int64_t start_ns_, interval_ns_;
};

// ---------------------------------------------------------------------------
// (b) Direct: librdkafka producers configured like ferryd's.

class DirectProducer {
 public:
  static std::unique_ptr<DirectProducer> Create(const std::string& bootstrap, int index,
                                                std::string* error) {
    std::unique_ptr<DirectProducer> p(new DirectProducer());
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    const std::vector<std::pair<std::string, std::string>> settings =
        DirectProducerSettings(bootstrap, fmt::format("publish-bench-direct-{}", index));
    char errstr[512];
    for (const auto& [key, value] : settings) {
      if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof(errstr)) !=
          RD_KAFKA_CONF_OK) {
        *error = fmt::format("{}: {}", key, errstr);
        rd_kafka_conf_destroy(conf);
        return nullptr;
      }
    }
    // With FERRY_STAGE_TRACE: a row per acknowledged message, beside the
    // SDK's rows, so stage_trace_report.py can compare both paths' latencies
    // in the same moments of the box (e.g. only while a core was free).
    p->trace_ =
        stage_trace::Tracer::Open("direct-publish", "path\tpublished_ns\tacked_ns");
    rd_kafka_conf_set_opaque(conf, p.get());
    rd_kafka_conf_set_dr_msg_cb(conf, &DirectProducer::OnDelivery);
    p->rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (p->rk_ == nullptr) {
      *error = errstr;
      rd_kafka_conf_destroy(conf);
      return nullptr;
    }
    // Delivery reports are served only by poll: a dedicated thread, as in
    // ferryd, so the publishing thread never delays them.
    p->poller_ = std::thread([raw = p.get()] {
      while (!raw->stop_.load()) rd_kafka_poll(raw->rk_, 100);
    });
    return p;
  }

  ~DirectProducer() {
    stop_ = true;
    if (poller_.joinable()) poller_.join();
    if (rk_ != nullptr) {
      rd_kafka_flush(rk_, 10000);
      rd_kafka_destroy(rk_);
    }
  }

  // Publishes the handle's share of `work` and waits for every delivery
  // report.
  HandleResult Run(const Workload& work, int handle, int64_t start_ns) {
    const int64_t n = work.per_handle;
    sent_ns_.assign(n, 0);
    acked_ns_.assign(n, 0);
    result_ = HandleResult{};
    result_.latency_ns.reserve(n);
    done_.store(0);
    const std::vector<int>& sequence = (*work.key_sequence)[handle];
    const Pacer pacer(start_ns, work.interval_ns);
    for (int64_t i = 0; i < n; ++i) {
      pacer.Wait(i);
      const std::string& key = (*work.keys)[sequence[i]];
      for (;;) {
        const int64_t now = NowNs();
        if (i == 0) result_.first_send_ns = now;
        sent_ns_[i] = now;
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk_, RD_KAFKA_V_TOPIC(work.topic.c_str()),
            // Keyless (--keys 0): a null key, placed by the partitioner.
            RD_KAFKA_V_KEY(key.empty() ? nullptr : key.data(), key.size()),
            RD_KAFKA_V_VALUE(const_cast<char*>(work.payload->data()),
                             work.payload->size()),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<intptr_t>(i))),
            RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          // The poller thread frees the queue; try again shortly.
          std::this_thread::sleep_for(std::chrono::microseconds(200));
          continue;
        }
        std::lock_guard lock(mu_);
        ++result_.errors;
        if (result_.first_error.empty()) result_.first_error = rd_kafka_err2str(err);
        done_.fetch_add(1);
        break;
      }
    }
    int64_t seen = done_.load();
    while (seen < n) {
      done_.wait(seen);
      seen = done_.load();
    }
    std::lock_guard lock(mu_);
    // After the run, so that writing the rows delays no message.
    if (trace_ != nullptr) {
      for (int64_t i = 0; i < n; ++i) {
        if (acked_ns_[i] > 0) trace_->Row("direct", {sent_ns_[i], acked_ns_[i]});
      }
    }
    return std::move(result_);
  }

 private:
  DirectProducer() = default;

  // On the poller thread.
  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
    const int64_t now = NowNs();
    auto* self = static_cast<DirectProducer*>(opaque);
    const auto i = static_cast<int64_t>(reinterpret_cast<intptr_t>(message->_private));
    {
      std::lock_guard lock(self->mu_);
      if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        self->result_.latency_ns.push_back(now - self->sent_ns_[i]);
        self->acked_ns_[i] = now;
      } else {
        ++self->result_.errors;
        if (self->result_.first_error.empty()) {
          self->result_.first_error = rd_kafka_err2str(message->err);
        }
      }
      self->result_.last_ack_ns = now;
    }
    self->done_.fetch_add(1);
    self->done_.notify_all();
  }

  rd_kafka_t* rk_ = nullptr;
  std::thread poller_;
  std::atomic<bool> stop_{false};
  // Written by the publishing thread before each produce call; read by the
  // poller after the report (librdkafka's queues order the two).
  std::vector<int64_t> sent_ns_;
  std::vector<int64_t> acked_ns_;               // Guarded by mu_; 0: not acknowledged.
  std::unique_ptr<stage_trace::Tracer> trace_;  // Null unless FERRY_STAGE_TRACE.
  std::mutex mu_;
  HandleResult result_;  // Guarded by mu_.
  std::atomic<int64_t> done_{0};
};

// ---------------------------------------------------------------------------
// (a) Ferry: the C++ SDK through ferryd.

// SDK defaults (batches of up to 500 messages / 1 MiB, 5 ms linger, 64 MiB
// outstanding), what an application gets without tuning, unless `linger_ms`
// >= 0 overrides the linger.
std::unique_ptr<client::Publisher> NewPublisher(const std::string& endpoint,
                                                int linger_ms, std::string* error) {
  client::Publisher::Builder builder;
  builder.Endpoints({endpoint});
  if (linger_ms >= 0) builder.Linger(std::chrono::milliseconds(linger_ms));
  return builder.Build(error);
}

// The workload's key names: `keys` distinct ones, or for 0 one empty key,
// which both paths send as no key at all (the SDK does not order keyless
// messages, and ferryd and librdkafka place them without a key).
std::vector<std::string> KeyNames(int keys) {
  if (keys == 0) return {std::string()};
  std::vector<std::string> names;
  for (int k = 0; k < keys; ++k) names.push_back(fmt::format("key-{:04d}", k));
  return names;
}

// A uniform pick over the workload's key names.
std::uniform_int_distribution<int> KeyPick(int keys) {
  return std::uniform_int_distribution<int>(0, std::max(keys, 1) - 1);
}

// Waits for message i's turn, then builds it and stamps its send time (and
// the run's first send).
client::Message NextMessage(const Workload& work, int handle, const Pacer& pacer,
                            int64_t i, std::vector<int64_t>* sent_ns,
                            HandleResult* result) {
  pacer.Wait(i);
  client::Message message;
  message.key = (*work.keys)[(*work.key_sequence)[handle][i]];
  message.value = *work.payload;
  const int64_t now = NowNs();
  if (i == 0) result->first_send_ns = now;
  (*sent_ns)[i] = now;
  return message;
}

// Publishes the handle's share of `work` through `publisher` and waits for
// every result. A second thread waits for the futures in publish order and
// stamps each when it is ready; a future that completed while an earlier one
// was still pending is stamped late, so Ferry's latencies are upper bounds.
HandleResult RunFerryHandle(client::Publisher& publisher, const Workload& work,
                            int handle, int64_t start_ns) {
  const int64_t n = work.per_handle;
  std::vector<std::future<client::PublishResult>> futures(n);
  std::vector<int64_t> sent_ns(n);
  std::atomic<int64_t> published{0};
  HandleResult result;
  result.latency_ns.reserve(n);

  std::thread collector([&] {
    for (int64_t i = 0; i < n; ++i) {
      int64_t seen = published.load(std::memory_order_acquire);
      while (seen <= i) {
        published.wait(seen, std::memory_order_acquire);
        seen = published.load(std::memory_order_acquire);
      }
      futures[i].wait();
      const int64_t now = NowNs();
      client::PublishResult r = futures[i].get();
      if (r.ok()) {
        result.latency_ns.push_back(now - sent_ns[i]);
      } else {
        ++result.errors;
        if (result.first_error.empty()) {
          result.first_error = fmt::format("code {}: {}", r.code, r.error);
        }
      }
      result.last_ack_ns = now;
      futures[i] = {};
    }
  });

  const Pacer pacer(start_ns, work.interval_ns);
  for (int64_t i = 0; i < n; ++i) {
    client::Message message = NextMessage(work, handle, pacer, i, &sent_ns, &result);
    futures[i] = publisher.Publish(work.topic, std::move(message));
    published.store(i + 1, std::memory_order_release);
    published.notify_one();
  }
  collector.join();
  return result;
}

// Waits until callbacks counted all `n` messages in `done`, then moves their
// figures into `result`.
void AwaitCallbacks(int64_t n, std::atomic<int64_t>& done,
                    const std::atomic<int64_t>& last_ack_ns,
                    const std::vector<int64_t>& latency_ns, HandleResult* result) {
  for (int64_t seen = done.load(); seen < n; seen = done.load()) done.wait(seen);
  result->last_ack_ns = last_ack_ns.load();
  result->latency_ns.reserve(n);
  for (int64_t latency : latency_ns) {
    if (latency >= 0) result->latency_ns.push_back(latency);
  }
}

// The same with the SDK's callback form of Publish: each callback stamps its
// own message, so these latencies are exact, and no second thread waits.
HandleResult RunFerryHandleWithCallbacks(client::Publisher& publisher,
                                         const Workload& work, int handle,
                                         int64_t start_ns) {
  const int64_t n = work.per_handle;
  std::vector<int64_t> sent_ns(n);
  std::vector<int64_t> latency_ns(n, -1);  // -1: failed
  std::atomic<int64_t> done{0};
  std::atomic<int64_t> last_ack_ns{0};
  std::mutex errors_mu;
  HandleResult result;

  const Pacer pacer(start_ns, work.interval_ns);
  for (int64_t i = 0; i < n; ++i) {
    client::Message message = NextMessage(work, handle, pacer, i, &sent_ns, &result);
    publisher.Publish(work.topic, std::move(message), [&, i](client::PublishResult r) {
      const int64_t acked = NowNs();
      if (r.ok()) {
        latency_ns[i] = acked - sent_ns[i];
      } else {
        std::lock_guard<std::mutex> lock(errors_mu);
        if (result.errors++ == 0) {
          result.first_error = fmt::format("code {}: {}", r.code, r.error);
        }
      }
      int64_t last = last_ack_ns.load(std::memory_order_relaxed);
      while (last < acked && !last_ack_ns.compare_exchange_weak(last, acked)) {
      }
      if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == n) done.notify_one();
    });
  }
  AwaitCallbacks(n, done, last_ack_ns, latency_ns, &result);
  return result;
}

// The same through PublishMany, `batch` messages per call (callback form):
// each call waits for its last message's slot, and its messages' latencies
// run from the call to its one callback.
HandleResult RunFerryManyHandle(client::Publisher& publisher, const Workload& work,
                                int handle, int64_t start_ns, int batch) {
  const int64_t n = work.per_handle;
  std::vector<int64_t> latency_ns(n, -1);  // -1: failed
  std::atomic<int64_t> done{0};
  std::atomic<int64_t> last_ack_ns{0};
  std::mutex errors_mu;
  HandleResult result;
  std::vector<client::MessageView> views(batch);
  const std::vector<int>& sequence = (*work.key_sequence)[handle];
  const Pacer pacer(start_ns, work.interval_ns);
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t count = std::min<int64_t>(batch, n - first);
    pacer.Wait(first + count - 1);
    for (int64_t j = 0; j < count; ++j) {
      views[j] = client::MessageView{.key = (*work.keys)[sequence[first + j]],
                                     .value = *work.payload};
    }
    const int64_t sent = NowNs();
    if (first == 0) result.first_send_ns = sent;
    publisher.PublishMany(
        work.topic, std::span<const client::MessageView>(views.data(), count),
        [&, first, count, sent](client::PublishManyResult r) {
          const int64_t acked = NowNs();
          for (int64_t j = 0; j < count; ++j) {
            if (r.messages[j].ok()) latency_ns[first + j] = acked - sent;
          }
          if (!r.ok()) {
            std::lock_guard<std::mutex> lock(errors_mu);
            for (std::size_t j = 0; j < r.size(); ++j) {
              if (r.messages[j].ok()) continue;
              if (result.errors++ == 0) {
                result.first_error =
                    fmt::format("code {}: {}", r.messages[j].code, r.Get(j).error);
              }
            }
          }
          int64_t last = last_ack_ns.load(std::memory_order_relaxed);
          while (last < acked && !last_ack_ns.compare_exchange_weak(last, acked)) {
          }
          if (done.fetch_add(count, std::memory_order_acq_rel) + count == n) {
            done.notify_one();
          }
        });
  }
  AwaitCallbacks(n, done, last_ack_ns, latency_ns, &result);
  return result;
}

HandleResult RunFerry(client::Publisher& publisher, const Workload& work, int handle,
                      int64_t start_ns, bool callbacks) {
  return callbacks ? RunFerryHandleWithCallbacks(publisher, work, handle, start_ns)
                   : RunFerryHandle(publisher, work, handle, start_ns);
}

// ---------------------------------------------------------------------------
// The benchmark.

enum class Path { kDirect, kFerry, kFerryMany };

const char* PathName(Path path) {
  switch (path) {
    case Path::kDirect:
      return "direct";
    case Path::kFerry:
      return "ferry";
    case Path::kFerryMany:
      return "ferry PublishMany";
  }
  return "?";
}

// One paced run of one path (a pass) on its own. A path's pooled p99 is set
// by its worst pass, so each pass is shown with the CPU the whole box used
// meanwhile: whether a core was free while it ran.
struct PassRecord {
  int size = 0;
  Path path = Path::kDirect;
  int pass = 0;  // 1, 2, ... per size and path
  int64_t messages = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  double wall = 0;  // Seconds over which `cpu` was measured.
  Cpu cpu;
};

struct SizeResult {
  int size = 0;
  int64_t messages = 0;  // Per path in the max pass.
  PathResult max_direct, max_ferry, paced_direct, paced_ferry;
  // --sdk-batch: the PublishMany path.
  PathResult max_many, paced_many;
  double paced_rate = 0;
};

class Bench {
 public:
  Bench(Options options, std::string bootstrap, std::string ferryd, int ferryd_pid,
        int broker_pid)
      : o_(std::move(options)),
        bootstrap_(std::move(bootstrap)),
        ferryd_(std::move(ferryd)),
        ferryd_pid_(ferryd_pid),
        broker_pid_(broker_pid),
        rss_(ferryd_pid) {
    keys_ = KeyNames(o_.keys);
  }

  // Runs every size; false if setting up failed (messages on stderr).
  bool RunAll(std::vector<SizeResult>* out) {
    for (int size : o_.sizes) {
      SizeResult r;
      if (!RunSize(size, &r)) return false;
      out->push_back(std::move(r));
    }
    return true;
  }

  int64_t FerrydHwmKb() const {
    return ferryd_pid_ > 0 ? StatusKb(ferryd_pid_, "VmHWM") : -1;
  }
  int64_t FerrydOverallPeakKb() const { return rss_.OverallPeak(); }
  const std::vector<PassRecord>& Passes() const { return passes_; }

 private:
  bool RunSize(int size, SizeResult* r) {
    r->size = size;
    const std::string topic = fmt::format(
        "bench.s{}.{}.{}", size, getpid(),
        std::chrono::system_clock::now().time_since_epoch().count() / 1000000);
    if (!CreateTopic(ferryd_, topic, o_.partitions)) return false;
    const std::string payload(static_cast<size_t>(size), 'x');
    int64_t total = o_.messages;
    if (total * size > o_.max_run_bytes) {
      total = o_.max_run_bytes / size;
      Log("size {}: {} messages per path instead of {} (--max-run-bytes {})", size, total,
          o_.messages, o_.max_run_bytes);
    }
    const int handles = o_.concurrency;
    const int64_t per_handle_run =
        std::max<int64_t>(1, total / (int64_t{handles} * o_.rounds));
    r->messages = per_handle_run * handles * o_.rounds;

    // Clients live for the whole size, as an application's would.
    std::vector<std::unique_ptr<DirectProducer>> direct;
    std::vector<std::unique_ptr<client::Publisher>> ferry;
    for (int h = 0; h < handles; ++h) {
      std::string error;
      direct.push_back(DirectProducer::Create(bootstrap_, h, &error));
      if (direct.back() == nullptr) {
        Log("librdkafka producer: {}", error);
        return false;
      }
      if (h == 0 || !o_.shared_publisher) {
        ferry.push_back(NewPublisher(ferryd_, o_.sdk_linger_ms, &error));
        if (ferry.back() == nullptr) {
          Log("ferry publisher: {}", error);
          return false;
        }
      }
    }
    auto publisher_for = [&](int h) -> client::Publisher& {
      return *ferry[o_.shared_publisher ? 0 : h];
    };

    // Key sequences: uniform over the keys, the same for both paths.
    std::vector<std::vector<int>> sequence(handles);
    auto fill = [&](int64_t count) {
      for (int h = 0; h < handles; ++h) {
        std::mt19937 rng(1234 + h);
        std::uniform_int_distribution<int> pick = KeyPick(o_.keys);
        auto& s = sequence[h];
        while (static_cast<int64_t>(s.size()) < count) s.push_back(pick(rng));
      }
    };
    fill(std::max(per_handle_run, o_.warmup));

    Workload work{.topic = topic,
                  .payload = &payload,
                  .keys = &keys_,
                  .key_sequence = &sequence,
                  .per_handle = 0,
                  .interval_ns = 0};

    auto run = [&](Path path, PathResult* into) {
      if (into != nullptr) {
        Log("  {} run: {} messages", PathName(path), work.per_handle * handles);
      }
      const Cpu before = CpuNow();
      const int64_t before_ns = NowNs();
      if (path != Path::kDirect) rss_.Reset();
      std::vector<HandleResult> results(handles);
      std::vector<std::thread> threads;
      const int64_t start_ns = NowNs() + 1000000;  // 1 ms for the threads to start
      for (int h = 0; h < handles; ++h) {
        threads.emplace_back([&, h] {
          if (path == Path::kDirect) {
            results[h] = direct[h]->Run(work, h, start_ns);
          } else if (path == Path::kFerryMany) {
            results[h] =
                RunFerryManyHandle(publisher_for(h), work, h, start_ns, o_.sdk_batch);
          } else {
            results[h] = RunFerry(publisher_for(h), work, h, start_ns, o_.sdk_callbacks);
          }
        });
      }
      for (std::thread& t : threads) t.join();
      const Cpu after = CpuNow();
      const Cpu used{after.client - before.client, after.ferryd - before.ferryd,
                     after.broker - before.broker, after.machine - before.machine};
      if (into != nullptr) {
        const double wall = static_cast<double>(NowNs() - before_ns) / 1e9;
        if (work.interval_ns > 0) RecordPass(size, path, results, used, wall);
        into->Add(results, used, wall, path == Path::kDirect ? -1 : rss_.Peak());
        if (trace_ != nullptr) {
          trace_->Row(PathName(path),
                      {size, work.interval_ns > 0 ? 1 : 0, before_ns, NowNs()});
        }
      }
    };
    // ABBA order over the rounds (ABCCBA with --sdk-batch), so that drift
    // (log segments, page cache, JIT) hits every path alike.
    auto alternate = [&](PathResult* direct_result, PathResult* ferry_result,
                         PathResult* many_result) {
      std::vector<std::pair<Path, PathResult*>> order = {{Path::kDirect, direct_result},
                                                         {Path::kFerry, ferry_result}};
      if (o_.sdk_batch > 0) order.emplace_back(Path::kFerryMany, many_result);
      for (int round = 0; round < o_.rounds; ++round) {
        for (std::size_t i = 0; i < order.size(); ++i) {
          const auto& [path, into] =
              round % 2 == 0 ? order[i] : order[order.size() - 1 - i];
          run(path, into);
        }
      }
    };

    // Connections, metadata, and on the first size the broker's JIT: warm-up
    // runs until at least `warmup_left_` seconds passed (once per size at least).
    Log("size {}: topic {}, warm-up ({} messages per handle and path, {:.0f} s at least)",
        size, topic, o_.warmup, warmup_left_);
    work.per_handle = o_.warmup;
    const int64_t warmup_until = NowNs() + static_cast<int64_t>(warmup_left_ * 1e9);
    do {
      run(Path::kDirect, nullptr);
      run(Path::kFerry, nullptr);
      if (o_.sdk_batch > 0) run(Path::kFerryMany, nullptr);
    } while (NowNs() < warmup_until);
    warmup_left_ = 0;

    if (o_.messages > 0) {
      Log("size {}: max pass, {} messages per path in {} rounds", size, r->messages,
          o_.rounds);
      work.per_handle = per_handle_run;
      alternate(&r->max_direct, &r->max_ferry, &r->max_many);
      Log("size {}: max direct {:.0f} msgs/s, ferry {:.0f} msgs/s (ratio {:.2f})", size,
          r->max_direct.rate(), r->max_ferry.rate(),
          r->max_ferry.rate() / r->max_direct.rate());
    }

    if ((o_.paced_fraction > 0 || o_.paced_rate > 0) && o_.paced_seconds > 0) {
      // The same offered load for both paths, which neither saturates: the
      // fraction of the slower path's max (or a fixed --paced-rate).
      r->paced_rate =
          o_.paced_rate > 0
              ? o_.paced_rate
              : o_.paced_fraction * std::min(r->max_direct.rate(), r->max_ferry.rate());
      const double per_handle_rate = r->paced_rate / handles;
      work.interval_ns = static_cast<int64_t>(1e9 / per_handle_rate);
      work.per_handle = std::max<int64_t>(
          1, static_cast<int64_t>(per_handle_rate * o_.paced_seconds / o_.rounds));
      fill(work.per_handle);
      Log("size {}: paced pass at {:.0f} msgs/s ({} messages per path)", size,
          r->paced_rate, work.per_handle * handles * o_.rounds);
      alternate(&r->paced_direct, &r->paced_ferry, &r->paced_many);
    }
    return true;
  }

  // Keeps the figures of one paced pass and logs them.
  void RecordPass(int size, Path path, std::vector<HandleResult>& results,
                  const Cpu& used, double wall) {
    PathResult alone;
    alone.Add(results, used, wall, -1);
    PassRecord p{.size = size,
                 .path = path,
                 .pass = 1,
                 .messages = alone.messages,
                 .p50_ms = alone.PercentileMs(0.5),
                 .p99_ms = alone.PercentileMs(0.99),
                 .max_ms = alone.PercentileMs(1.0),
                 .wall = wall,
                 .cpu = used};
    for (const PassRecord& q : passes_) {
      if (q.size == size && q.path == path) ++p.pass;
    }
    Log("  {} pass {}: p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms; {}", PathName(path),
        p.pass, p.p50_ms, p.p99_ms, p.max_ms, BoxCores(used, wall));
    passes_.push_back(p);
  }

  Cpu CpuNow() const {
    return Cpu{CpuSeconds(0), ferryd_pid_ > 0 ? CpuSeconds(ferryd_pid_) : 0,
               broker_pid_ > 0 ? CpuSeconds(broker_pid_) : 0, MachineBusySeconds()};
  }

  const Options o_;
  const std::string bootstrap_;
  const std::string ferryd_;
  const int ferryd_pid_;
  const int broker_pid_;
  RssSampler rss_;
  std::vector<std::string> keys_;
  double warmup_left_ = o_.warmup_seconds;
  std::vector<PassRecord> passes_;  // Paced passes, in run order.
  // With FERRY_STAGE_TRACE: a row per measured pass (path, size, paced or
  // not, first and last stamp), to find each pass in the SDK's and ferryd's
  // rows.
  const std::unique_ptr<stage_trace::Tracer> trace_ =
      stage_trace::Tracer::Open("bench", "path\tsize\tpaced\tstart_ns\tend_ns");
};

// ---------------------------------------------------------------------------
// Output.

// The config of the ferryd the bench starts: its defaults, with the cluster
// properties --ferryd-property and --ferryd-linger-ms set.
std::string FerrydYaml(const std::string& bootstrap, const Options& o) {
  std::map<std::string, std::string> properties;
  ParseKeyValues(o.ferryd_properties, "--ferryd-property", &properties);
  if (o.ferryd_linger_ms >= 0) {
    properties["linger.ms"] = std::to_string(o.ferryd_linger_ms);
  }
  std::string listed;
  for (const auto& [key, value] : properties) {
    listed += fmt::format("{}{}: \"{}\"", listed.empty() ? "" : ", ", key, value);
  }
  return fmt::format(
      "log: {{ level: warn }}\n"
      "clusters:\n"
      "  main: {{ type: kafka, bootstrap: \"{}\"{} }}\n",
      bootstrap, listed.empty() ? "" : fmt::format(", properties: {{ {} }}", listed));
}

std::string SizeLabel(int size) {
  if (size >= 1024 && size % 1024 == 0) return fmt::format("{} KiB", size / 1024);
  return fmt::format("{} B", size);
}

// "client / ferryd / broker" CPU microseconds per message.
std::string CpuPerMessage(const PathResult& p, bool known_ferryd, bool known_broker) {
  auto us = [&](double seconds, bool known) {
    if (!known) return std::string("?");
    return fmt::format("{:.1f}", seconds * 1e6 / static_cast<double>(p.messages));
  };
  return fmt::format("{} / {} / {}", us(p.cpu.client, true),
                     us(p.cpu.ferryd, known_ferryd), us(p.cpu.broker, known_broker));
}

void PrintTable(const std::string& title, std::vector<SizeResult>& results, bool paced,
                bool known_ferryd, bool known_broker) {
  fmt::print("\n### {}\n\n", title);
  fmt::print(
      "| size | path | msgs/s | MB/s | p50 ms | p99 ms | p999 ms | ratio | ferryd peak "
      "RSS | CPU µs/msg client / ferryd / broker |{}\n",
      paced ? " p99 added by the hop |" : "");
  fmt::print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|{}\n", paced ? "--:|" : "");
  for (SizeResult& r : results) {
    PathResult& b = paced ? r.paced_direct : r.max_direct;
    PathResult& a = paced ? r.paced_ferry : r.max_ferry;
    PathResult& many = paced ? r.paced_many : r.max_many;
    if (b.messages == 0 && a.messages == 0) continue;
    auto row = [&](const char* path, PathResult& p, const std::string& ratio,
                   const std::string& added) {
      const double mbps = p.rate() * r.size / 1e6;
      fmt::print(
          "| {} | {} | {:.0f} | {:.1f} | {:.2f} | {:.2f} | {:.2f} | {} | {} | {} |{}\n",
          SizeLabel(r.size), path, p.rate(), mbps, p.PercentileMs(0.5),
          p.PercentileMs(0.99), p.PercentileMs(0.999), ratio,
          p.peak_rss_kb < 0 ? "–" : Mib(p.peak_rss_kb),
          CpuPerMessage(p, known_ferryd, known_broker), added);
    };
    const std::string added =
        paced ? fmt::format(" **{:+.2f} ms** |",
                            a.PercentileMs(0.99) - b.PercentileMs(0.99))
              : "";
    row("(b) direct librdkafka", b, "", paced ? " |" : "");
    row("(a) Ferry SDK → ferryd", a, fmt::format("**{:.2f}**", a.rate() / b.rate()),
        added);
    if (many.messages > 0) {
      row("(a') Ferry SDK PublishMany → ferryd", many,
          fmt::format("**{:.2f}**", many.rate() / b.rate()),
          paced ? fmt::format(" **{:+.2f} ms** |",
                              many.PercentileMs(0.99) - b.PercentileMs(0.99))
                : "");
    }
  }
  fmt::print(
      "\nMachine load during the runs (cores busy, of {}; \"other\" is every "
      "process but the bench, ferryd and the broker, i.e. noise):",
      std::thread::hardware_concurrency());
  for (SizeResult& r : results) {
    PathResult& b = paced ? r.paced_direct : r.max_direct;
    PathResult& a = paced ? r.paced_ferry : r.max_ferry;
    auto load = [](const PathResult& p) {
      if (p.cpu_wall <= 0) return std::string("n/a");
      const double other = p.cpu.machine - p.cpu.client - p.cpu.ferryd - p.cpu.broker;
      return fmt::format("{:.2f} busy, {:.2f} other", p.cpu.machine / p.cpu_wall,
                         std::max(0.0, other) / p.cpu_wall);
    };
    PathResult& many = paced ? r.paced_many : r.max_many;
    fmt::print(" {}: (b) {}, (a) {}{};", SizeLabel(r.size), load(b), load(a),
               many.messages > 0 ? fmt::format(", (a') {}", load(many)) : "");
  }
  fmt::print("\n");
  for (SizeResult& r : results) {
    for (PathResult* p :
         {paced ? &r.paced_direct : &r.max_direct, paced ? &r.paced_ferry : &r.max_ferry,
          paced ? &r.paced_many : &r.max_many}) {
      if (p->errors > 0) {
        fmt::print("\n{}: {} of {} messages failed; first: {}\n", SizeLabel(r.size),
                   p->errors, p->messages, p->first_error);
      }
    }
  }
  std::fflush(stdout);
}

// One row per paced pass, in run order: its latencies alone and the CPU the
// whole box used while it ran.
void PrintPasses(const std::vector<PassRecord>& passes) {
  if (passes.empty()) return;
  fmt::print(
      "\n### Paced passes, one row each, in run order (a path's p99 above pools its "
      "passes)\n\n");
  fmt::print(
      "| size | path | pass | messages | seconds | p50 ms | p99 ms | max ms | box cores "
      "busy (of {}) | bench / ferryd / broker / other cores |\n",
      std::thread::hardware_concurrency());
  fmt::print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  for (const PassRecord& p : passes) {
    auto cores = [&](double seconds) { return seconds / p.wall; };
    fmt::print(
        "| {} | {} | {} | {} | {:.1f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} / "
        "{:.2f} / {:.2f} / {:.2f} |\n",
        SizeLabel(p.size), PathName(p.path), p.pass, p.messages, p.wall, p.p50_ms,
        p.p99_ms, p.max_ms, cores(p.cpu.machine), cores(p.cpu.client),
        cores(p.cpu.ferryd), cores(p.cpu.broker),
        std::max(0.0, cores(p.cpu.machine - p.cpu.client - p.cpu.ferryd - p.cpu.broker)));
  }
  std::fflush(stdout);
}

// What the per-message API alone costs (api_floor.h), measured now in this
// process, against the direct producer's CPU per message of the max pass.
void PrintApiFloor(const Options& o, const std::vector<SizeResult>& results) {
  const int batch = o.sdk_batch > 0 ? o.sdk_batch : 500;
  const FloorResult floor = MeasureApiFloor(o.api_floor_messages, batch);
  fmt::print(
      "\nAPI floor (bench/api_floor.h, {} messages per form, handed over {} at a time; "
      "client CPU µs per message, and ÷ the direct producer's of the max pass):\n",
      o.api_floor_messages, batch);
  for (const SizeResult& r : results) {
    const PathResult& direct = r.max_direct;
    if (direct.messages == 0) continue;
    const double direct_us =
        direct.cpu.client * 1e6 / static_cast<double>(direct.messages);
    auto of = [&](double us) {
      return fmt::format("{:.2f} ({:.2f}×)", us, us / direct_us);
    };
    fmt::print("- {}: direct {:.2f}; result alone {}; future {}; callback {}\n",
               SizeLabel(r.size), direct_us, of(floor.result_us), of(floor.future_us),
               of(floor.callback_us));
  }
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------
// --backends: the Ferry path (SDK → ferryd) on each backend, one after the
// other in one process, each on a ferryd of its own: publish (max pass),
// then consume what was published (backlog), then the next backend.

const std::vector<std::string> kBackends = {"kafka", "embedded-sync", "embedded-batch"};

struct BackendResult {
  std::string backend;
  PathResult publish;
  int64_t consumed = 0;        // Deliveries (redeliveries count again).
  double consume_seconds = 0;  // First delivery → the delivery reaching the total.
  std::string consume_error;
  int64_t peak_rss_kb = -1;  // ferryd, publish and consume.
  double other_cores = -1;   // Foreign load during publish and consume.
};

// Runs `handles` threads, thread h returning run(h, start_ns), into one
// PathResult.
template <typename RunHandle>
PathResult RunHandles(int handles, RunHandle run) {
  std::vector<HandleResult> results(handles);
  std::vector<std::thread> threads;
  const int64_t start_ns = NowNs() + 1000000;  // 1 ms for the threads to start
  for (int h = 0; h < handles; ++h) {
    threads.emplace_back([&, h] { results[h] = run(h, start_ns); });
  }
  for (std::thread& t : threads) t.join();
  PathResult out;
  out.Add(results, Cpu{}, 0, -1);
  return out;
}

// Consumes `total` messages of `topic` from the earliest offset with a
// Subscriber (SDK defaults, fresh group, the handler acks at once, as in
// consume_bench). Sets the consume fields of `r`.
void ConsumeBacklog(const std::string& ferryd, const std::string& topic, int64_t total,
                    double timeout_seconds, BackendResult* r) {
  std::atomic<int64_t> received{0}, first_ns{0}, done_ns{0};
  std::mutex mu;
  std::string failure;
  client::Subscriber::Builder builder;
  builder.Endpoints({ferryd})
      .Group(fmt::format("bench.consume.{}.{}", getpid(), topic))
      .Topics({topic})
      .ClientId("publish-bench-consume")
      .StartAt(client::StartPosition::Earliest())
      .OnMessage([&](const client::ReceivedMessage&, client::AckHandle handle) {
        const int64_t now = NowNs();
        int64_t expected = 0;
        first_ns.compare_exchange_strong(expected, now);
        handle.Ack();
        if (received.fetch_add(1) + 1 == total) done_ns.store(now);
      })
      .OnError([&](const client::SubscriberError& e) {
        Log("ferry subscriber: {} code {}: {}", e.fatal ? "fatal" : "error", e.code,
            e.error);
        if (e.fatal) {
          std::lock_guard lock(mu);
          failure = e.error;
        }
      });
  std::string error;
  std::unique_ptr<client::Subscriber> subscriber = builder.Build(&error);
  if (subscriber == nullptr) {
    r->consume_error = error;
    return;
  }
  const int64_t until = NowNs() + static_cast<int64_t>(timeout_seconds * 1e9);
  while (done_ns.load() == 0 && NowNs() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::lock_guard lock(mu);
    if (!failure.empty()) break;
  }
  subscriber->Close(std::chrono::seconds(10));
  r->consumed = received.load();
  if (done_ns.load() == 0) {
    std::lock_guard lock(mu);
    r->consume_error = !failure.empty()
                           ? failure
                           : fmt::format("only {} of {} messages within {} s",
                                         r->consumed, total, timeout_seconds);
    return;
  }
  r->consume_seconds = static_cast<double>(done_ns.load() - first_ns.load()) / 1e9;
}

class BackendBench {
 public:
  BackendBench(const Options& o, std::map<std::string, std::string> env,
               std::filesystem::path root)
      : o_(o), env_(std::move(env)), root_(std::move(root)) {
    keys_ = KeyNames(o_.keys);
  }

  // Measures `backend`; a direct librdkafka row follows kafka's. False if
  // setting up failed (logged).
  bool Run(const std::string& backend, std::vector<BackendResult>* out) {
    Infra infra;
    const bool kafka = backend == "kafka";
    const std::string store = (root_ / backend).string();
    if (kafka) {
      if (!StartInfra(
              o_.bootstrap, o_.broker_pid, "", 0,
              [&](const std::string& bootstrap) { return FerrydYaml(bootstrap, o_); },
              env_, &infra)) {
        return false;
      }
    } else {
      // A fresh store per backend; defaults but durability.
      Log("starting ferryd on an embedded store in {}", store);
      auto started = testing::FerrydProcess::Start(
          fmt::format("log: {{ level: warn }}\n"
                      "clusters:\n"
                      "  main: {{ type: embedded, path: \"{}\", durability: {} }}\n",
                      store, backend == "embedded-sync" ? "sync" : "batch"),
          env_);
      if (!started.ok()) {
        Log("ferryd: {}", started.status().ToString());
        return false;
      }
      infra.node = *std::move(started);
      infra.ferryd = infra.node->grpc_address();
      infra.ferryd_pid = infra.node->process().pid();
    }
    const bool ok = Measure(backend, infra, out);
    infra.node.reset();
    infra.broker.reset();
    if (!kafka) std::filesystem::remove_all(store);
    return ok;
  }

 private:
  bool Measure(const std::string& backend, const Infra& infra,
               std::vector<BackendResult>* out) {
    const bool kafka = backend == "kafka";
    const std::string base = fmt::format(
        "bench.backends.{}.{}", getpid(),
        std::chrono::system_clock::now().time_since_epoch().count() / 1000000);
    const std::string warm_topic = base + ".warmup", topic = base + ".ferry",
                      direct_topic = base + ".direct";
    for (const std::string& t : {warm_topic, topic}) {
      if (!CreateTopic(infra.ferryd, t, o_.partitions)) return false;
    }
    if (kafka && !CreateTopic(infra.ferryd, direct_topic, o_.partitions)) return false;

    const int handles = o_.concurrency;
    const int64_t per_handle = std::max<int64_t>(1, o_.messages / handles);
    std::vector<std::unique_ptr<client::Publisher>> ferry;
    std::vector<std::unique_ptr<DirectProducer>> direct;
    for (int h = 0; h < handles; ++h) {
      std::string error;
      if (h == 0 || !o_.shared_publisher) {
        ferry.push_back(NewPublisher(infra.ferryd, o_.sdk_linger_ms, &error));
        if (ferry.back() == nullptr) {
          Log("ferry publisher: {}", error);
          return false;
        }
      }
      if (kafka) {
        direct.push_back(DirectProducer::Create(infra.bootstrap, h, &error));
        if (direct.back() == nullptr) {
          Log("librdkafka producer: {}", error);
          return false;
        }
      }
    }
    std::vector<std::vector<int>> sequence(handles);
    for (int h = 0; h < handles; ++h) {
      std::mt19937 rng(1234 + h);
      std::uniform_int_distribution<int> pick = KeyPick(o_.keys);
      while (static_cast<int64_t>(sequence[h].size()) < std::max(per_handle, o_.warmup)) {
        sequence[h].push_back(pick(rng));
      }
    }
    const std::string payload(static_cast<size_t>(o_.sizes.front()), 'x');
    Workload work{.topic = warm_topic,
                  .payload = &payload,
                  .keys = &keys_,
                  .key_sequence = &sequence,
                  .per_handle = o_.warmup,
                  .interval_ns = 0};
    auto ferry_run = [&] {
      return RunHandles(handles, [&](int h, int64_t start_ns) {
        return RunFerry(*ferry[o_.shared_publisher ? 0 : h], work, h, start_ns,
                        o_.sdk_callbacks);
      });
    };
    auto direct_run = [&] {
      return RunHandles(handles, [&](int h, int64_t start_ns) {
        return direct[h]->Run(work, h, start_ns);
      });
    };

    // Warm-up into its own topic, so the backlog below is the measured run
    // only. A fresh broker's JVM needs --warmup-seconds; the embedded store
    // gets one round.
    Log("{}: warm-up", backend);
    const int64_t warmup_until =
        NowNs() + (kafka ? static_cast<int64_t>(o_.warmup_seconds * 1e9) : 0);
    do {
      ferry_run();
      if (kafka) direct_run();
    } while (NowNs() < warmup_until);

    RssSampler rss(infra.ferryd_pid);
    rss.Reset();
    const double client0 = CpuSeconds(0), ferryd0 = CpuSeconds(infra.ferryd_pid),
                 broker0 = infra.broker_pid > 0 ? CpuSeconds(infra.broker_pid) : 0,
                 machine0 = MachineBusySeconds();
    const int64_t start_ns = NowNs();
    BackendResult r;
    r.backend = backend;
    work.topic = topic;
    work.per_handle = per_handle;
    Log("{}: publishing {} messages of {} bytes", backend, per_handle * handles,
        payload.size());
    r.publish = ferry_run();
    Log("{}: publish {:.0f} msgs/s, p99 {:.2f} ms, {} failed", backend, r.publish.rate(),
        r.publish.PercentileMs(0.99), r.publish.errors);
    const int64_t total = r.publish.messages - r.publish.errors;
    Log("{}: consuming the backlog of {} messages", backend, total);
    ConsumeBacklog(infra.ferryd, topic, total, o_.consume_timeout_seconds, &r);
    Log("{}: consume {:.0f} msgs/s{}", backend,
        r.consume_seconds > 0 ? static_cast<double>(total) / r.consume_seconds : 0,
        r.consume_error.empty() ? "" : ", " + r.consume_error);
    r.peak_rss_kb = rss.Peak();
    const double wall = static_cast<double>(NowNs() - start_ns) / 1e9;
    const double others =
        (MachineBusySeconds() - machine0) - (CpuSeconds(0) - client0) -
        (CpuSeconds(infra.ferryd_pid) - ferryd0) -
        (infra.broker_pid > 0 ? CpuSeconds(infra.broker_pid) - broker0 : 0);
    r.other_cores = std::max(0.0, others) / wall;
    out->push_back(std::move(r));

    if (kafka) {
      BackendResult d;
      d.backend = "kafka, direct librdkafka (no Ferry)";
      work.topic = direct_topic;
      Log("{}: direct librdkafka, {} messages", backend, per_handle * handles);
      d.publish = direct_run();
      out->push_back(std::move(d));
    }
    return true;
  }

  const Options& o_;
  const std::map<std::string, std::string> env_;
  const std::filesystem::path root_;
  std::vector<std::string> keys_;
};

int RunBackends(const Options& o, const std::map<std::string, std::string>& env,
                const std::string& command) {
  // Fresh stores under one temporary directory, whose filesystem the fsync
  // probe measures.
  const std::filesystem::path root = std::filesystem::temp_directory_path() /
                                     fmt::format("ferry-backends-bench-{}", getpid());
  std::filesystem::create_directories(root);
  Log("fsync probe: 4 KiB appends + fdatasync in {} for {:.0f} s", root.string(),
      o.fsync_seconds);
  const double fsync_rate = FsyncRate(root.string(), o.fsync_seconds);
  Log("fsync probe: {:.0f} syncs/s", fsync_rate);

  std::vector<BackendResult> results;
  bool ok = true;
  {
    BackendBench bench(o, env, root);
    for (const std::string& backend : o.backends) {
      if (!bench.Run(backend, &results)) {
        ok = false;
        break;
      }
    }
  }
  std::filesystem::remove_all(root);

  const int size = o.sizes.front();
  fmt::print("## publish_bench --backends\n\n`{}`\n\n", command);
  fmt::print(
      "{} messages of {} B per backend, {} publishing threads ({}), {} partitions, {} "
      "keys; consume: one Subscriber (SDK defaults, handler acks at once) reads the "
      "published backlog from the earliest offset; {} hardware threads\n\n",
      std::max<int64_t>(1, o.messages / o.concurrency) * o.concurrency, size,
      o.concurrency, o.shared_publisher ? "one shared Publisher" : "one Publisher each",
      o.partitions, o.keys, std::thread::hardware_concurrency());
  fmt::print(
      "| backend | publish msgs/s | MB/s | p50 ms | p99 ms | consume msgs/s | MB/s | "
      "ferryd peak RSS | other load (cores) |\n");
  fmt::print("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  int64_t failed = 0;
  for (BackendResult& r : results) {
    const int64_t total = r.publish.messages - r.publish.errors;
    failed += r.publish.errors;
    const bool consumed = r.consume_seconds > 0;
    const double consume_rate =
        consumed ? static_cast<double>(total) / r.consume_seconds : 0;
    const bool ferry_row = r.other_cores >= 0;
    fmt::print(
        "| {} | {:.0f} | {:.1f} | {:.2f} | {:.2f} | {} | {} | {} | {} |\n", r.backend,
        r.publish.rate(), r.publish.rate() * size / 1e6, r.publish.PercentileMs(0.5),
        r.publish.PercentileMs(0.99),
        consumed ? fmt::format("{:.0f}", consume_rate) : (ferry_row ? "failed" : "–"),
        consumed ? fmt::format("{:.1f}", consume_rate * size / 1e6) : "–",
        ferry_row ? Mib(r.peak_rss_kb) : "–",
        ferry_row ? fmt::format("{:.2f}", r.other_cores) : "–");
    if (ferry_row && !consumed) ++failed;
  }
  fmt::print("\nDisk: {:.0f} fsyncs/s (4 KiB appends + fdatasync, {:.0f} s, in {}).\n",
             fsync_rate, o.fsync_seconds, root.string());
  for (BackendResult& r : results) {
    if (r.backend.rfind("embedded", 0) == 0 && fsync_rate > 0) {
      fmt::print(
          "{}: publish {:.0f} msgs/s = {:.1f} × the fsync rate: each fsync carries at "
          "least that many messages on average\n",
          r.backend, r.publish.rate(), r.publish.rate() / fsync_rate);
    }
  }
  for (BackendResult& r : results) {
    if (r.publish.errors > 0) {
      fmt::print("{}: {} of {} publishes failed; first: {}\n", r.backend,
                 r.publish.errors, r.publish.messages, r.publish.first_error);
    }
    if (!r.consume_error.empty()) {
      fmt::print("{}: consume: {}\n", r.backend, r.consume_error);
    }
  }
  std::fflush(stdout);
  return ok && failed == 0 ? 0 : 1;
}

// Why the paced pass's options do not fit together, or "" if they do.
// `fraction_given`: --paced-fraction was on the command line.
std::string PacedError(const Options& o, bool fraction_given) {
  if (o.paced_rate > 0 && fraction_given) {
    return "--paced-rate and --paced-fraction both set the paced pass's load: give one";
  }
  if (o.messages == 0 && o.paced_rate <= 0) {
    return "--messages 0 skips the max pass, so the paced pass needs --paced-rate";
  }
  if (o.paced_rate > 0 && o.paced_seconds <= 0) {
    return "--paced-rate needs --paced-seconds > 0";
  }
  const double per_run = o.paced_rate * o.paced_seconds / (o.concurrency * o.rounds);
  if (o.paced_rate > 0 && per_run < 1) {
    return fmt::format(
        "--paced-rate {} for --paced-seconds {} gives {:.2f} messages per thread and "
        "run (--concurrency {}, --rounds {}): raise the rate or the seconds",
        o.paced_rate, o.paced_seconds, per_run, o.concurrency, o.rounds);
  }
  return "";
}

std::string Join(const std::vector<int>& values) {
  std::string out;
  for (int v : values) out += (out.empty() ? "" : ",") + std::to_string(v);
  return out;
}

// The ferryd the bench starts runs in a directory of its own and inherits
// FERRY_STAGE_TRACE: a relative directory would put its rows there, where
// stage_trace_report.py never finds them.
void MakeStageTraceDirAbsolute() {
  const char* dir = std::getenv("FERRY_STAGE_TRACE");
  if (dir == nullptr || *dir == '\0') return;
  std::error_code error;
  const std::filesystem::path absolute = std::filesystem::absolute(dir, error);
  if (!error) setenv("FERRY_STAGE_TRACE", absolute.c_str(), 1);
}

int Main(int argc, char** argv) {
  MakeStageTraceDirAbsolute();
  CLI::App app{
      "publish_bench: Ferry (SDK -> ferryd -> Kafka) against direct librdkafka "
      "producers on the same broker"};
  Options o;
  app.add_option("--messages", o.messages, "Messages per path and size in the max pass")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--sizes", o.sizes, "Message value sizes in bytes")
      ->delimiter(',')
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--concurrency", o.concurrency,
                 "Publishing threads per path, each with its own producer / publisher")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--topic-partitions", o.partitions, "Partitions of each fresh topic")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--keys", o.keys,
                 "Distinct message keys (uniformly random); 0: keyless, no key on any "
                 "message of either path")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  app.add_option("--rounds", o.rounds,
                 "Alternations per pass (ABBA order); each run gets 1/rounds of the "
                 "messages")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--paced-fraction", o.paced_fraction,
                 "Paced pass offered load, as a fraction of the slower path's max "
                 "(0: no paced pass)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--paced-rate", o.paced_rate,
                 "Paced pass offered load in msgs/s, the same for every path and size, "
                 "instead of --paced-fraction (then --messages 0 skips the max pass)")
      ->check(CLI::Range(1.0, 1e7));
  app.add_option("--sdk-linger-ms", o.sdk_linger_ms,
                 "Linger of the ferry Publishers (default: the SDK's, 5 ms)")
      ->check(CLI::Range(0, 10000));
  app.add_option("--ferryd-linger-ms", o.ferryd_linger_ms,
                 "linger.ms of the ferryd the bench starts (default: ferryd's, 1 ms; "
                 "the direct producers always use 5)")
      ->check(CLI::Range(0, 10000));
  app.add_option("--ferryd-property", o.ferryd_properties,
                 "KEY=VALUE: a librdkafka property of the started ferryd's cluster "
                 "(clusters.main.properties), e.g. socket.nagle.disable=true");
  app.add_option("--paced-seconds", o.paced_seconds,
                 "Length of the paced pass per path and size")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--max-run-bytes", o.max_run_bytes,
                 "Caps messages * size per path and size (large sizes get fewer "
                 "messages)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", o.warmup,
                 "Unmeasured messages per handle and path before each size")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--warmup-seconds", o.warmup_seconds,
                 "Minimum length of the first size's warm-up (a fresh broker's JVM "
                 "needs it)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_flag("--shared-publisher", o.shared_publisher,
               "One ferry Publisher shared by all threads instead of one per thread");
  app.add_flag("--sdk-callbacks", o.sdk_callbacks,
               "Publish with the SDK's callback form instead of one future per message");
  app.add_option("--sdk-batch", o.sdk_batch,
                 "Also publish through the SDK's PublishMany, this many messages per "
                 "call, in rows of its own (a'); 0: not")
      ->check(CLI::Range(0, 100000));
  app.add_option("--api-floor-messages", o.api_floor_messages,
                 "Messages per form of the API floor (bench/api_floor.h) printed beside "
                 "the max pass; 0: not measured")
      ->capture_default_str();
  app.add_option("--bootstrap", o.bootstrap,
                 "Use this running Kafka broker instead of starting one");
  app.add_option("--ferryd", o.ferryd,
                 "Use this running ferryd (host:port) instead of starting one; needs "
                 "--bootstrap of its cluster");
  app.add_option("--ferryd-env", o.ferryd_env,
                 "KEY=VALUE added to the environment of the ferryd the bench starts "
                 "(e.g. LD_PRELOAD=..., GLIBC_TUNABLES=...)");
  app.add_option("--ferryd-pid", o.ferryd_pid, "Pid of --ferryd, for RSS and CPU");
  app.add_option("--broker-pid", o.broker_pid, "Pid of --bootstrap's broker, for CPU");
  app.add_option("--backends", o.backends,
                 "Instead of the direct-vs-Ferry comparison: the Ferry path on each "
                 "of these backends (kafka, embedded-sync, embedded-batch), publish "
                 "and backlog consume, one ferryd each, first --sizes value only")
      ->delimiter(',')
      ->check(CLI::IsMember(kBackends));
  app.add_option("--fsync-seconds", o.fsync_seconds,
                 "--backends: length of the disk's fsync-rate probe")
      ->check(CLI::Range(0.1, 60.0))
      ->capture_default_str();
  app.add_option("--consume-timeout-seconds", o.consume_timeout_seconds,
                 "--backends: longest a backlog consume may take")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  std::map<std::string, std::string> properties;  // checked here, used by FerrydYaml
  if (!ParseKeyValues(o.ferryd_properties, "--ferryd-property", &properties)) return 2;
  std::string command = "publish_bench";
  for (int i = 1; i < argc; ++i) command += fmt::format(" {}", argv[i]);
  if (!o.backends.empty()) {
    if (o.paced_rate > 0) {
      fmt::print(stderr, "--backends has no paced pass: drop --paced-rate\n");
      return 2;
    }
    if (!o.ferryd.empty() || o.messages == 0) {
      fmt::print(stderr, "--backends starts its own ferryds and needs --messages > 0\n");
      return 2;
    }
    std::map<std::string, std::string> env;
    if (!ParseKeyValues(o.ferryd_env, "--ferryd-env", &env)) return 2;
    if (app.count("--sizes") == 0) o.sizes = {1024};
    return RunBackends(o, env, command);
  }
  if (const std::string error = PacedError(o, app.count("--paced-fraction") > 0);
      !error.empty()) {
    fmt::print(stderr, "{}\n", error);
    return 2;
  }
  if (!o.ferryd.empty() && o.bootstrap.empty()) {
    fmt::print(stderr, "--ferryd needs --bootstrap (the broker of its cluster)\n");
    return 2;
  }

  std::map<std::string, std::string> env;
  if (!ParseKeyValues(o.ferryd_env, "--ferryd-env", &env)) return 2;
  Infra infra;
  if (!StartInfra(
          o.bootstrap, o.broker_pid, o.ferryd, o.ferryd_pid,
          [&](const std::string& bootstrap) { return FerrydYaml(bootstrap, o); }, env,
          &infra)) {
    return 1;
  }
  const std::string& bootstrap = infra.bootstrap;
  const std::string& ferryd = infra.ferryd;
  const int broker_pid = infra.broker_pid;
  const int ferryd_pid = infra.ferryd_pid;

  std::vector<SizeResult> results;
  std::vector<PassRecord> passes;
  bool ok;
  int64_t hwm_kb, peak_kb;
  {
    Bench bench(o, bootstrap, ferryd, ferryd_pid, broker_pid);
    ok = bench.RunAll(&results);
    hwm_kb = bench.FerrydHwmKb();
    peak_kb = bench.FerrydOverallPeakKb();
    passes = bench.Passes();
  }

  fmt::print("## publish_bench\n\n`{}`\n\n", command);
  fmt::print(
      "Resolved: --messages {} --sizes {} --concurrency {} --topic-partitions {} --keys "
      "{} --rounds {} {} --paced-seconds {}; Ferry: {}, SDK linger {}, "
      "ferryd linger.ms {}{}{}; {} hardware threads\n",
      o.messages, Join(o.sizes), o.concurrency, o.partitions,
      o.keys == 0 ? std::string("0 (keyless)") : std::to_string(o.keys), o.rounds,
      o.paced_rate > 0 ? fmt::format("--paced-rate {}", o.paced_rate)
                       : fmt::format("--paced-fraction {}", o.paced_fraction),
      o.paced_seconds,
      fmt::format("{}, {}{}",
                  o.shared_publisher ? "one Publisher shared by all threads"
                                     : "one Publisher per thread",
                  o.sdk_callbacks ? "callback form" : "a future per message",
                  o.sdk_batch > 0
                      ? fmt::format(", (a') PublishMany of {} messages per call "
                                    "(callback form)",
                                    o.sdk_batch)
                      : ""),
      o.sdk_linger_ms < 0 ? std::string("default (5 ms)")
                          : fmt::format("{} ms", o.sdk_linger_ms),
      !o.ferryd.empty()        ? std::string("(external)")
      : o.ferryd_linger_ms < 0 ? std::string("default (1)")
                               : std::to_string(o.ferryd_linger_ms),
      o.ferryd_properties.empty()
          ? ""
          : fmt::format(", ferryd properties {}", fmt::join(o.ferryd_properties, " ")),
      o.ferryd_env.empty() ? ""
                           : fmt::format(", ferryd env {}", fmt::join(o.ferryd_env, " ")),
      std::thread::hardware_concurrency());
  if (o.messages > 0) {
    PrintTable("Max throughput (closed loop: every handle publishes as fast as it can)",
               results, false, ferryd_pid > 0, broker_pid > 0);
    if (o.api_floor_messages > 0) PrintApiFloor(o, results);
  }
  if ((o.paced_fraction > 0 || o.paced_rate > 0) && o.paced_seconds > 0) {
    PrintTable(o.paced_rate > 0
                   ? fmt::format("Paced at {:.0f} msgs/s for both paths", o.paced_rate)
                   : fmt::format("Paced at {:.0f}% of the slower path's max (same "
                                 "offered load for both paths)",
                                 o.paced_fraction * 100),
               results, true, ferryd_pid > 0, broker_pid > 0);
    fmt::print("\nOffered load per size:");
    for (const SizeResult& r : results) {
      fmt::print(" {} {:.0f} msgs/s;", SizeLabel(r.size), r.paced_rate);
    }
    fmt::print("\n");
    PrintPasses(passes);
  }
  fmt::print("\nferryd memory: peak VmRSS sampled every 20 ms {}, VmHWM at the end {}\n",
             Mib(peak_kb), Mib(hwm_kb));
  int64_t failed = 0;
  for (SizeResult& r : results) {
    failed += r.max_direct.errors + r.max_ferry.errors + r.paced_direct.errors +
              r.paced_ferry.errors + r.max_many.errors + r.paced_many.errors;
  }
  return ok && failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) { return ferry::bench::Main(argc, argv); }
