// scale_bench: what one ferryd holds. Opens many subscriber streams across
// many groups and many publishing streams against one node (embedded store or
// Kafka), drives a slow steady load through them and prints ferryd's memory,
// threads, file descriptors, CPU and the delivery latency (see bench/README.md).
//
// The client side is raw gRPC callback streams, many per channel, so one
// bench process on two cores can hold tens of thousands of them (the SDK
// gives every Subscriber its own channel and threads).
#include <grpcpp/grpcpp.h>
#include <librdkafka/rdkafka.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <sstream>

#include "bench/bench_util.h"
#include "ferry/client/publisher.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "ferry/v1/publisher.grpc.pb.h"
#include "ferry/v1/subscriber.grpc.pb.h"

namespace ferry::bench {
namespace {

namespace v1 = ferry::v1;

int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Options {
  std::string mode = "streams";
  std::string backend = "embedded";
  int streams = 10000;
  int groups = 1000;
  int topics = 10;
  int partitions = 10;
  int publishers = 5000;
  int connections = 64;
  double rate = 1.0;
  int size = 100;
  int seconds = 60;
  int warmup_seconds = 10;
  // --mode topics
  int few_topics = 10;
  int64_t messages = 100000;
  int direct_timeout_ms = 10000;  // ferryd's publish.timeout default
  bool skip_consume = false;
  std::string direct_stats_dir;  // librdkafka statistics of the direct passes
};

// Where the node stands: /proc readings of ferryd.
struct NodeSample {
  int64_t rss_kb = -1;
  int64_t threads = -1;
  int64_t fds = -1;
  double cpu_s = -1;
};

NodeSample Sample(int pid) {
  NodeSample s{.rss_kb = StatusKb(pid, "VmRSS"),
               .threads = StatusKb(pid, "Threads"),
               .cpu_s = CpuSeconds(pid)};
  std::error_code error;
  auto it = std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", pid), error);
  if (!error) s.fds = std::distance(it, std::filesystem::directory_iterator());
  return s;
}

std::string Show(const NodeSample& s) {
  return fmt::format("RSS {}, {} threads, {} fds", Mib(s.rss_kb), s.threads, s.fds);
}

// How a callback stream ended: OnDone sets it, Wait blocks until then.
class StreamEnd {
 public:
  void Set(const grpc::Status& status) {
    std::lock_guard lock(mu_);
    status_ = status;
    done_ = true;
    cv_.notify_all();
  }
  const grpc::Status& Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return done_; });
    return status_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  grpc::Status status_;
};

// A client stream the bench cancels when done. Holds itself open (AddHold
// in the constructor of the subclass) so writes may start from any thread.
template <typename Request, typename Response>
class CallbackStream : public grpc::ClientBidiReactor<Request, Response> {
 public:
  void OnDone(const grpc::Status& status) override { end_.Set(status); }

  void Stop() {
    context_.TryCancel();
    this->RemoveHold();
    end_.Wait();
  }

 protected:
  grpc::ClientContext context_;
  StreamEnd end_;
};

// One Subscribe stream: opens, acks every message at once and records its
// delivery latency (publish wall clock carried in the value's first 8 bytes).
class SubscribeStream final
    : public CallbackStream<v1::SubscribeRequest, v1::SubscribeResponse> {
 public:
  // `measure_from`: wall clock (ns) from which latencies are kept; 0: none yet.
  // `earliest`: a new group starts at the oldest records, else at the end.
  SubscribeStream(v1::Subscriber::Stub* stub, const std::string& group,
                  const std::vector<std::string>& topics,
                  const std::atomic<int64_t>* measure_from, bool earliest = false,
                  int64_t max_outstanding = 100)
      : measure_from_(measure_from) {
    v1::SubscriptionOpen* open = open_.mutable_open();
    open->set_group(group);
    for (const std::string& topic : topics) open->add_topics(topic);
    open->set_client_id("scale_bench");
    open->mutable_flow()->set_max_outstanding_messages(max_outstanding);
    if (earliest) open->mutable_start()->set_earliest(true);
    stub->async()->Subscribe(&context_, this);
    StartWrite(&open_);
    writing_ = true;
    StartRead(&response_);
    AddHold();
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (response_.has_opened()) opened_.store(true);
    if (response_.has_messages()) {
      const int64_t now = WallNs();
      const int64_t from = measure_from_->load();
      std::lock_guard lock(mu_);
      received_.fetch_add(response_.messages().messages_size());
      for (const v1::ReceivedMessage& m : response_.messages().messages()) {
        int64_t sent = 0;
        if (m.value().size() >= sizeof(sent)) {
          std::memcpy(&sent, m.value().data(), sizeof(sent));
          if (from > 0 && sent >= from) latencies_.push_back(now - sent);
        }
        pending_acks_.push_back(m.receipt());
      }
      MaybeWriteLocked();
    }
    StartRead(&response_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (ok) MaybeWriteLocked();
  }

  bool opened() const { return opened_.load(); }
  int64_t received() const { return received_.load(); }
  // After Stop().
  std::vector<int64_t>& latencies() { return latencies_; }
  const grpc::Status& status() { return end_.Wait(); }

 private:
  void MaybeWriteLocked() {
    if (writing_ || pending_acks_.empty()) return;
    ack_.Clear();
    for (std::string& receipt : pending_acks_) {
      ack_.mutable_ack()->add_receipts(std::move(receipt));
    }
    pending_acks_.clear();
    writing_ = true;
    StartWrite(&ack_);
  }

  const std::atomic<int64_t>* const measure_from_;
  v1::SubscribeRequest open_;
  v1::SubscribeResponse response_;
  std::atomic<bool> opened_{false};
  std::mutex mu_;
  bool writing_ = false;
  v1::SubscribeRequest ack_;
  std::vector<std::string> pending_acks_;
  std::atomic<int64_t> received_{0};
  std::vector<int64_t> latencies_;
};

// One PublishStream: sends one message at a time when the pacer asks.
class PublishStream final
    : public CallbackStream<v1::PublishRequest, v1::PublishResponse> {
 public:
  explicit PublishStream(v1::Publisher::Stub* stub) {
    stub->async()->PublishStream(&context_, this);
    StartRead(&response_);
    AddHold();
    StartCall();
  }

  // False when the previous batch is still being written.
  bool Send(const std::string& topic, int size, int messages = 1) {
    std::lock_guard lock(mu_);
    if (writing_) return false;
    request_.Clear();
    request_.set_request_id(++next_id_);
    request_.set_topic(topic);
    const int64_t now = WallNs();
    for (int i = 0; i < messages; ++i) {
      std::string* value = request_.add_messages()->mutable_value();
      value->assign(static_cast<size_t>(std::max(size, 8)), 'v');
      std::memcpy(value->data(), &now, sizeof(now));
    }
    writing_ = true;
    StartWrite(&request_);
    return true;
  }

  void OnWriteDone(bool) override {
    std::lock_guard lock(mu_);
    writing_ = false;
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    for (const v1::PublishResult& r : response_.results()) {
      (r.status().code() == 0 ? acked_ : failed_).fetch_add(1);
    }
    if (response_.has_error()) failed_.fetch_add(1);
    StartRead(&response_);
  }

  int64_t acked() const { return acked_.load(); }
  int64_t failed() const { return failed_.load(); }

 private:
  v1::PublishRequest request_;
  v1::PublishResponse response_;
  std::mutex mu_;
  bool writing_ = false;
  uint64_t next_id_ = 0;
  std::atomic<int64_t> acked_{0}, failed_{0};
};

// Waits until `ready` holds or `timeout` passed; false on timeout.
template <typename Ready>
bool WaitFor(Ready ready, std::chrono::seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!ready()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// Creates `name` with `partitions` partitions through ferryd's Admin API.
bool CreateTopics(const std::shared_ptr<grpc::Channel>& channel,
                  const std::vector<std::string>& names, int partitions) {
  auto admin = v1::Admin::NewStub(channel);
  for (const std::string& name : names) {
    v1::CreateTopicRequest request;
    request.set_name(name);
    request.set_partitions(partitions);
    v1::Topic topic;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    const grpc::Status status = admin->CreateTopic(&context, request, &topic);
    if (!status.ok() && status.error_code() != grpc::StatusCode::ALREADY_EXISTS) {
      Log("creating topic {}: {}", name, status.error_message());
      return false;
    }
  }
  return true;
}

void RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  getrlimit(RLIMIT_NOFILE, &limit);
  Log("file descriptor limit (bench and the ferryd it starts): {}", limit.rlim_cur);
}

// A Kafka broker and a ferryd on it, both started here.
bool StartKafkaInfra(Infra* infra) {
  return StartInfra(
      "", 0, "", 0,
      [](const std::string& bootstrap) {
        return fmt::format(
            "log: {{ level: warn }}\nclusters:\n"
            "  main: {{ type: kafka, bootstrap: \"{}\" }}\n",
            bootstrap);
      },
      {}, infra);
}

int RunStreams(const Options& o) {
  const std::string store =
      (std::filesystem::temp_directory_path() / fmt::format("scale-bench-{}", getpid()))
          .string();
  Infra infra;
  if (o.backend == "kafka") {
    if (!StartKafkaInfra(&infra)) return 1;
  } else {
    auto node = testing::FerrydProcess::Start(
        fmt::format("log: {{ level: warn }}\nclusters:\n"
                    "  main: {{ type: embedded, path: \"{}\", durability: batch }}\n",
                    store),
        {});
    if (!node.ok()) {
      Log("ferryd: {}", node.status().ToString());
      return 1;
    }
    infra.node = *std::move(node);
    infra.ferryd = infra.node->grpc_address();
    infra.ferryd_pid = infra.node->process().pid();
  }
  const int pid = infra.ferryd_pid;
  std::vector<std::string> topics;
  for (int t = 0; t < o.topics; ++t) topics.push_back(fmt::format("scale.{}", t));

  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::Subscriber::Stub>> subscribers;
  std::vector<std::unique_ptr<v1::Publisher::Stub>> publisher_stubs;
  for (int c = 0; c < o.connections; ++c) {
    grpc::ChannelArguments args;
    // A distinct argument per channel: its own subchannel, so its own TCP
    // connection (gRPC shares subchannels of identical channels).
    args.SetInt("ferry.scale_bench.connection", c);
    channels.push_back(grpc::CreateCustomChannel(
        infra.ferryd, grpc::InsecureChannelCredentials(), args));
    subscribers.push_back(v1::Subscriber::NewStub(channels.back()));
    publisher_stubs.push_back(v1::Publisher::NewStub(channels.back()));
  }
  if (!CreateTopics(channels[0], topics, o.partitions)) return 1;

  std::this_thread::sleep_for(std::chrono::seconds(1));
  const NodeSample idle = Sample(pid);
  Log("ferryd idle: {}", Show(idle));

  std::atomic<int64_t> measure_from{0};
  std::vector<std::unique_ptr<SubscribeStream>> streams;
  // Opens streams [from, to): stream i joins group i % groups, which reads
  // topic group % topics.
  auto open = [&](int from, int to) {
    const int64_t started = NowNs();
    for (int i = from; i < to; ++i) {
      const int group = i % o.groups;
      streams.push_back(std::make_unique<SubscribeStream>(
          subscribers[i % o.connections].get(), fmt::format("scale.g{}", group),
          std::vector<std::string>{topics[group % o.topics]}, &measure_from));
    }
    const bool all = WaitFor(
        [&] {
          return std::all_of(streams.begin(), streams.end(),
                             [](const auto& s) { return s->opened(); });
        },
        std::chrono::seconds(600));
    const int64_t opened = std::count_if(streams.begin(), streams.end(),
                                         [](const auto& s) { return s->opened(); });
    Log("opened {} of {} streams in {:.1f} s{}", opened, streams.size(),
        (NowNs() - started) / 1e9, all ? "" : " (timed out)");
  };
  const int first = std::min(o.groups, o.streams);
  open(0, first);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const NodeSample with_groups = Sample(pid);
  Log("ferryd with {} groups, one stream each: {}", first, Show(with_groups));
  open(first, o.streams);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const NodeSample with_streams = Sample(pid);
  Log("ferryd with {} streams: {}", o.streams, Show(with_streams));

  std::vector<std::unique_ptr<PublishStream>> publishers;
  for (int p = 0; p < o.publishers; ++p) {
    publishers.push_back(
        std::make_unique<PublishStream>(publisher_stubs[p % o.connections].get()));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const NodeSample with_publishers = Sample(pid);
  Log("ferryd with {} publishing streams too: {}", o.publishers, Show(with_publishers));

  // Every group reads its whole topic, shared among its streams: for `rate`
  // messages per second per stream each topic takes streams-per-group x rate.
  const double per_topic = o.rate * o.streams / o.groups;
  const double total_rate = per_topic * o.topics;
  const double deliveries_rate = per_topic * o.groups;
  Log("load: {:.0f} msgs/s published ({} topics x {:.1f}), {:.0f} deliveries/s expected, "
      "{} s warm-up then {} s measured",
      total_rate, o.topics, per_topic, deliveries_rate, o.warmup_seconds, o.seconds);
  RssSampler rss(pid);
  int64_t sent = 0, busy = 0;
  NodeSample load_start;
  const int64_t start = NowNs();
  const int64_t measure_at = start + int64_t{o.warmup_seconds} * 1'000'000'000;
  const int64_t end = measure_at + int64_t{o.seconds} * 1'000'000'000;
  size_t next_publisher = 0;
  while (NowNs() < end) {
    if (measure_from.load() == 0 && NowNs() >= measure_at) {
      measure_from.store(WallNs());
      load_start = Sample(pid);
      rss.Reset();
    }
    const auto due = static_cast<int64_t>(total_rate * (NowNs() - start) / 1e9);
    for (; sent < due; ++sent) {
      // Round robin; a publisher still writing its last message passes its turn.
      for (size_t tries = 0; tries < publishers.size(); ++tries) {
        PublishStream& p = *publishers[next_publisher++ % publishers.size()];
        if (p.Send(topics[sent % o.topics], o.size)) break;
        ++busy;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const NodeSample load_end = Sample(pid);
  const double measured_s = (NowNs() - measure_at) / 1e9;
  std::this_thread::sleep_for(std::chrono::seconds(2));  // last deliveries

  int64_t acked = 0, failed = 0;
  for (auto& p : publishers) {
    p->Stop();
    acked += p->acked();
    failed += p->failed();
  }
  int64_t received = 0, broken = 0;
  std::vector<int64_t> latencies;
  for (auto& s : streams) {
    s->Stop();
    received += s->received();
    if (s->status().error_code() != grpc::StatusCode::CANCELLED) {
      if (broken++ < 3) Log("stream ended: {}", s->status().error_message());
    }
    latencies.insert(latencies.end(), s->latencies().begin(), s->latencies().end());
  }
  std::sort(latencies.begin(), latencies.end());

  const double cores = (load_end.cpu_s - load_start.cpu_s) / measured_s;
  fmt::print(
      "\nscale_bench backend={} streams={} groups={} topics={}x{} publishers={} "
      "connections={} rate={}/s per stream size={} B\n",
      o.backend, o.streams, o.groups, o.topics, o.partitions, o.publishers, o.connections,
      o.rate, o.size);
  fmt::print("| state | ferryd RSS | threads | fds |\n|---|--:|--:|--:|\n");
  for (const auto& [name, s] : std::vector<std::pair<std::string, NodeSample>>{
           {"idle", idle},
           {fmt::format("{} groups, 1 stream each", first), with_groups},
           {fmt::format("{} streams", o.streams), with_streams},
           {fmt::format("+ {} publishing streams", o.publishers), with_publishers},
           {"end of load", load_end}}) {
    fmt::print("| {} | {} | {} | {} |\n", name, Mib(s.rss_kb), s.threads, s.fds);
  }
  const auto per = [](int64_t kb_delta, int n) {
    return n > 0 ? fmt::format("{:.1f} KiB", static_cast<double>(kb_delta) / n) : "n/a";
  };
  fmt::print(
      "memory per group (first stream included): {}; per further stream: {}; "
      "per publishing stream: {}\n",
      per(with_groups.rss_kb - idle.rss_kb, first),
      per(with_streams.rss_kb - with_groups.rss_kb, o.streams - first),
      per(with_publishers.rss_kb - with_streams.rss_kb, o.publishers));
  fmt::print(
      "under load: peak RSS {}, ferryd CPU {:.2f} cores, {} published ({} acked, {} "
      "failed, {} turns passed busy), {} delivered ({:.0f}/s overall), {} streams "
      "broken\n",
      Mib(rss.Peak()), cores, sent, acked, failed, busy, received,
      received / ((NowNs() - start) / 1e9), broken);
  fmt::print(
      "delivery latency (publish -> subscriber), {} samples: p50 {:.2f} ms, p99 "
      "{:.2f} ms, p999 {:.2f} ms, max {:.2f} ms\n",
      latencies.size(), PercentileMs(latencies, 0.5), PercentileMs(latencies, 0.99),
      PercentileMs(latencies, 0.999), PercentileMs(latencies, 1.0));
  fmt::print("machine load average at the end: {}", [] {
    std::ifstream in("/proc/loadavg");
    std::string line;
    std::getline(in, line);
    return line + "\n";
  }());
  infra.node.reset();
  std::filesystem::remove_all(store);
  return 0;
}

// A librdkafka handle of `type` with `properties`; null (logged) on error.
rd_kafka_t* NewKafka(rd_kafka_type_t type,
                     const std::map<std::string, std::string>& properties) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), error, sizeof(error)) !=
        RD_KAFKA_CONF_OK) {
      Log("{}: {}", key, error);
      rd_kafka_conf_destroy(conf);
      return nullptr;
    }
  }
  rd_kafka_t* handle = rd_kafka_new(type, conf, error, sizeof(error));
  if (handle == nullptr) Log("rd_kafka_new: {}", error);
  return handle;
}

constexpr int kLibrdkafkaMessageTimeoutMs = 300'000;

// One publish pass: its rate, outcomes and the CPU each process spent on it.
struct PublishArm {
  double msgs_per_s = -1;  // acknowledged messages per second of the pass
  int64_t acked = 0;
  int64_t timed_out = 0;  // failed for good (the SDK's or librdkafka's timeout)
  int64_t refused = 0;    // Ferry: sends refused RESOURCE_EXHAUSTED, resent
  int64_t sends = 0;      // Ferry: messages ferryd was sent, resends included
  double client_cpu_s = 0, ferryd_cpu_s = 0, broker_cpu_s = 0;
};

// CPU seconds of the bench (the client), ferryd and the broker, to subtract.
struct CpuMark {
  double client = 0, ferryd = 0, broker = 0;
  static CpuMark Now(const Infra& infra) {
    return {CpuSeconds(getpid()), CpuSeconds(infra.ferryd_pid),
            CpuSeconds(infra.broker_pid)};
  }
  void Charge(const Infra& infra, PublishArm* arm) const {
    const CpuMark now = Now(infra);
    arm->client_cpu_s = now.client - client;
    arm->ferryd_cpu_s = now.ferryd - ferryd;
    arm->broker_cpu_s = now.broker - broker;
  }
};

// `messages` values of `size` bytes published round robin over `topics`
// straight to Kafka by a producer configured like ferryd's (acks=all,
// idempotent, linger 5 ms, message.timeout.ms = `timeout_ms`, ferryd's
// publish.timeout), keeping librdkafka's sticky partitioner.
// With `stats_path`, librdkafka's statistics JSON (statistics.interval.ms
// 1000) is written there, one object a line.
PublishArm DirectPublish(const std::string& bootstrap,
                         const std::vector<std::string>& topics, int64_t messages,
                         int size, int timeout_ms, const std::string& stats_path) {
  PublishArm arm;
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::map<std::string, std::string> properties{
      {"bootstrap.servers", bootstrap},
      {"acks", "all"},
      {"enable.idempotence", "true"},
      {"linger.ms", "5"},
      {"message.timeout.ms", std::to_string(timeout_ms)}};
  // What the callbacks see (the configuration's opaque).
  struct Context {
    PublishArm* arm;
    FILE* stats;
  };
  std::unique_ptr<FILE, int (*)(FILE*)> stats(
      stats_path.empty() ? nullptr : std::fopen(stats_path.c_str(), "w"), &std::fclose);
  if (!stats_path.empty() && stats == nullptr) Log("cannot write {}", stats_path);
  Context context{&arm, stats.get()};
  if (stats != nullptr) {
    properties["statistics.interval.ms"] = "1000";
    rd_kafka_conf_set_stats_cb(conf,
                               [](rd_kafka_t*, char* json, size_t length, void* opaque) {
                                 FILE* out = static_cast<Context*>(opaque)->stats;
                                 std::fwrite(json, 1, length, out);
                                 std::fputc('\n', out);
                                 return 0;  // librdkafka frees json
                               });
  }
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), error, sizeof(error)) !=
        RD_KAFKA_CONF_OK) {
      Log("{}: {}", key, error);
      rd_kafka_conf_destroy(conf);
      return arm;
    }
  }
  rd_kafka_conf_set_opaque(conf, &context);
  rd_kafka_conf_set_dr_msg_cb(
      conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
        PublishArm* a = static_cast<Context*>(opaque)->arm;
        (m->err == RD_KAFKA_RESP_ERR_NO_ERROR ? a->acked : a->timed_out)++;
      });
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  if (producer == nullptr) {
    Log("rd_kafka_new: {}", error);
    return arm;
  }
  std::string value(static_cast<size_t>(size), 'v');
  const int64_t start = NowNs();
  for (int64_t i = 0; i < messages; ++i) {
    const std::string& topic = topics[static_cast<size_t>(i) % topics.size()];
    while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()),
                             RD_KAFKA_V_VALUE(value.data(), value.size()),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(producer, 10);
    }
    rd_kafka_poll(producer, 0);
  }
  const bool flushed = rd_kafka_flush(producer, 120'000) == RD_KAFKA_RESP_ERR_NO_ERROR;
  const double seconds = (NowNs() - start) / 1e9;
  rd_kafka_destroy(producer);
  if (!flushed) Log("direct publish: flush timed out");
  arm.msgs_per_s = arm.acked / seconds;
  return arm;
}

// The same through ferryd with the C++ SDK's Publisher (default batching and
// delivery timeout).
PublishArm FerryPublish(const std::string& ferryd, const std::vector<std::string>& topics,
                        int64_t messages, int size) {
  PublishArm arm;
  std::string error;
  auto publisher = client::Publisher::Builder().Endpoints({ferryd}).Build(&error);
  if (publisher == nullptr) {
    Log("publisher: {}", error);
    return arm;
  }
  // Shared with callbacks that may run after a timed-out flush.
  auto acked = std::make_shared<std::atomic<int64_t>>(0);
  auto failed = std::make_shared<std::atomic<int64_t>>(0);
  const int64_t start = NowNs();
  for (int64_t i = 0; i < messages; ++i) {
    publisher->Publish(topics[static_cast<size_t>(i) % topics.size()],
                       {.value = std::string(static_cast<size_t>(size), 'v')},
                       [acked, failed](client::PublishResult r) {
                         (r.ok() ? acked : failed)->fetch_add(1);
                       });
  }
  const bool flushed = publisher->Flush(std::chrono::seconds(120));
  const double seconds = (NowNs() - start) / 1e9;
  arm.acked = acked->load();
  if (!flushed || failed->load() > 0) {
    Log("Ferry publish: {} acknowledged, {} failed in {:.1f} s{}", acked->load(),
        failed->load(), seconds, flushed ? "" : ", flush timed out");
  }
  arm.msgs_per_s = arm.acked / seconds;
  return arm;
}

// Messages per second of a new group reading `messages` records of `topics`
// from the start straight from Kafka (the group's join included).
double DirectConsume(const std::string& bootstrap, const std::vector<std::string>& topics,
                     int64_t messages) {
  rd_kafka_t* consumer =
      NewKafka(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap},
                                   {"group.id", fmt::format("direct.{}", NowNs())},
                                   {"auto.offset.reset", "earliest"},
                                   {"enable.auto.commit", "true"}});
  if (consumer == nullptr) return -1;
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(topics.size()));
  for (const std::string& topic : topics) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), RD_KAFKA_PARTITION_UA);
  }
  const int64_t start = NowNs();
  rd_kafka_subscribe(consumer, list);
  rd_kafka_topic_partition_list_destroy(list);
  int64_t received = 0;
  const int64_t deadline = start + int64_t{300} * 1'000'000'000;
  while (received < messages && NowNs() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) ++received;
    rd_kafka_message_destroy(m);
  }
  const double seconds = (NowNs() - start) / 1e9;
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  return received >= messages ? messages / seconds : -1;
}

// The same through ferryd: one Subscribe stream of a new group, acking all.
double FerryConsume(v1::Subscriber::Stub* stub, const std::vector<std::string>& topics,
                    int64_t messages) {
  std::atomic<int64_t> measure_from{0};
  const int64_t start = NowNs();
  SubscribeStream stream(stub, fmt::format("ferry.{}", NowNs()), topics, &measure_from,
                         /*earliest=*/true, /*max_outstanding=*/5000);
  const bool all =
      WaitFor([&] { return stream.received() >= messages; }, std::chrono::seconds(300));
  const double seconds = (NowNs() - start) / 1e9;
  stream.Stop();
  if (!all) Log("Ferry consume: {} of {} received", stream.received(), messages);
  return all ? messages / seconds : -1;
}

// What ferryd's /metrics say about its publishes so far: messages the broker
// acknowledged, messages that failed (a client resends the retryable ones,
// so acknowledged + failed is what the clients sent), and the breaker.
struct PublishCounts {
  int64_t acknowledged = 0;
  int64_t failed = 0;
  int64_t refused = 0;  // RESOURCE_EXHAUSTED by admission by wait, never written
  int64_t failovers = 0;
  int breaker_state = -1;  // 0 closed, 1 half-open, 2 open

  static PublishCounts Read(const testing::FerrydProcess& node) {
    PublishCounts counts;
    std::istringstream metrics(node.HttpGet("/metrics").second);
    for (std::string line; std::getline(metrics, line);) {
      const size_t space = line.rfind(' ');
      if (line.starts_with('#') || space == std::string::npos) continue;
      const auto value = static_cast<int64_t>(std::stod(line.substr(space + 1)));
      if (line.starts_with("ferry_publish_messages_total{")) counts.acknowledged += value;
      if (line.starts_with("ferry_publish_errors_total{")) counts.failed += value;
      if (line.starts_with("ferry_publish_refused_messages_total{"))
        counts.refused += value;
      if (line.starts_with("ferry_cluster_failovers_total{")) counts.failovers += value;
      if (line.starts_with("ferry_cluster_breaker_state{")) {
        counts.breaker_state = static_cast<int>(value);
      }
    }
    return counts;
  }
};

// Where a direct pass writes librdkafka's statistics; empty without
// --direct-stats-dir.
std::string StatsPath(const Options& o, int topics, std::string_view pass) {
  if (o.direct_stats_dir.empty()) return "";
  return fmt::format("{}/{}-topics-{}.json", o.direct_stats_dir, topics, pass);
}

// Publish and consume throughput over few and many topics, through ferryd and
// straight to Kafka, side by side.
int RunTopics(const Options& o) {
  Infra infra;
  if (!StartKafkaInfra(&infra)) return 1;
  auto channel = grpc::CreateChannel(infra.ferryd, grpc::InsecureChannelCredentials());
  auto subscriber = v1::Subscriber::NewStub(channel);
  RssSampler rss(infra.ferryd_pid);
  struct Row {
    int topics = 0;
    PublishArm direct, direct_default, ferry;
    double direct_consume = 0, ferry_consume = 0;
    int64_t failovers = 0;
    int breaker_state = -1;
    int64_t peak_rss_kb = -1;
  };
  std::vector<Row> rows;
  for (int count : {o.few_topics, o.topics}) {
    std::vector<std::string> topics;
    for (int t = 0; t < count; ++t) topics.push_back(fmt::format("t{}.{}", count, t));
    const int64_t created = NowNs();
    if (!CreateTopics(channel, topics, o.partitions)) return 1;
    Log("{} topics x {} partitions created in {:.1f} s", count, o.partitions,
        (NowNs() - created) / 1e9);
    rss.Reset();
    Row row;
    row.topics = count;
    CpuMark mark = CpuMark::Now(infra);
    row.direct = DirectPublish(infra.bootstrap, topics, o.messages, o.size,
                               o.direct_timeout_ms, StatsPath(o, count, "direct"));
    mark.Charge(infra, &row.direct);
    Log("{} topics: direct publish {:.0f} msgs/s, {} acknowledged, {} timed out", count,
        row.direct.msgs_per_s, row.direct.acked, row.direct.timed_out);
    // librdkafka's own message.timeout.ms (300 s): what a direct client
    // gets when it waits as long as it takes.
    mark = CpuMark::Now(infra);
    row.direct_default =
        DirectPublish(infra.bootstrap, topics, o.messages, o.size,
                      kLibrdkafkaMessageTimeoutMs, StatsPath(o, count, "direct-300s"));
    mark.Charge(infra, &row.direct_default);
    Log("{} topics: direct publish (300 s timeout) {:.0f} msgs/s, {} acknowledged, {} "
        "timed out",
        count, row.direct_default.msgs_per_s, row.direct_default.acked,
        row.direct_default.timed_out);
    const PublishCounts before = PublishCounts::Read(*infra.node);
    mark = CpuMark::Now(infra);
    row.ferry = FerryPublish(infra.ferryd, topics, o.messages, o.size);
    mark.Charge(infra, &row.ferry);
    const PublishCounts after = PublishCounts::Read(*infra.node);
    row.ferry.timed_out = after.failed - before.failed;
    row.ferry.refused = after.refused - before.refused;
    row.ferry.sends = after.acknowledged - before.acknowledged + row.ferry.timed_out +
                      row.ferry.refused;
    row.failovers = after.failovers - before.failovers;
    row.breaker_state = after.breaker_state;
    Log("{} topics: Ferry publish {:.0f} msgs/s; ferryd: {} acknowledged, {} failed, {} "
        "refused (the SDK sent {} for {}), {} failovers, breaker state {} (0 closed, 2 "
        "open)",
        count, row.ferry.msgs_per_s, after.acknowledged - before.acknowledged,
        row.ferry.timed_out, row.ferry.refused, row.ferry.sends, o.messages,
        row.failovers, row.breaker_state);
    if (!o.skip_consume) {
      // Both paths' acknowledged messages.
      const int64_t written =
          row.direct.acked + row.direct_default.acked + row.ferry.acked;
      row.direct_consume = DirectConsume(infra.bootstrap, topics, written);
      Log("{} topics: direct consume {:.0f} msgs/s", count, row.direct_consume);
      row.ferry_consume = FerryConsume(subscriber.get(), topics, written);
      Log("{} topics: Ferry consume {:.0f} msgs/s", count, row.ferry_consume);
    }
    row.peak_rss_kb = rss.Peak();
    rows.push_back(row);
  }
  fmt::print(
      "\nscale_bench --mode topics: {} messages of {} B published per path, {} "
      "partitions per topic, one broker; direct message.timeout.ms {}\n",
      o.messages, o.size, o.partitions, o.direct_timeout_ms);
  fmt::print(
      "| path | topics | msgs/s acked | acked / timed out | CPU us/msg client / ferryd / "
      "broker | refused sends | sends per acked msg |\n"
      "|---|--:|--:|--:|--:|--:|--:|\n");
  const auto per_msg = [](double cpu_s, int64_t acked) {
    return acked > 0 ? fmt::format("{:.1f}", cpu_s * 1e6 / acked) : std::string("-");
  };
  const std::string direct_label =
      fmt::format("direct, {} s", o.direct_timeout_ms / 1000);
  for (const int path : {0, 1, 2}) {
    const bool ferry = path == 2;
    for (const Row& r : rows) {
      const PublishArm& a = path == 0 ? r.direct : path == 1 ? r.direct_default : r.ferry;
      fmt::print("| {} | {} | {:.0f} | {} / {} | {} / {} / {} | {} | {} |\n",
                 path == 0   ? direct_label
                 : path == 1 ? std::string("direct, 300 s")
                             : std::string("Ferry"),
                 r.topics, a.msgs_per_s, a.acked, a.timed_out,
                 per_msg(a.client_cpu_s, a.acked), per_msg(a.ferryd_cpu_s, a.acked),
                 per_msg(a.broker_cpu_s, a.acked),
                 ferry ? std::to_string(a.refused) : "-",
                 ferry && a.acked > 0
                     ? fmt::format("{:.2f}", static_cast<double>(a.sends) / a.acked)
                     : "-");
    }
  }
  fmt::print(
      "\n| topics | Ferry / direct (same timeout) msgs/s | this / first count: direct | "
      "direct 300 s | Ferry | failovers, breaker after (Ferry) | consume direct / Ferry "
      "msgs/s | ferryd peak RSS |\n|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  for (const Row& r : rows) {
    fmt::print(
        "| {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {}, {} | {:.0f} / {:.0f} | {} |\n",
        r.topics, r.ferry.msgs_per_s / r.direct.msgs_per_s,
        r.direct.msgs_per_s / rows[0].direct.msgs_per_s,
        r.direct_default.msgs_per_s / rows[0].direct_default.msgs_per_s,
        r.ferry.msgs_per_s / rows[0].ferry.msgs_per_s, r.failovers,
        r.breaker_state == 0 ? "closed" : std::to_string(r.breaker_state),
        r.direct_consume, r.ferry_consume, Mib(r.peak_rss_kb));
  }
  fmt::print("machine load average at the end: {}", [] {
    std::ifstream in("/proc/loadavg");
    std::string line;
    std::getline(in, line);
    return line + "\n";
  }());
  return 0;
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) {
  ferry::bench::Options o;
  CLI::App app{"scale_bench: many streams, groups and publishers against one ferryd"};
  app.add_option("--mode", o.mode,
                 "streams: many streams, groups and publishers; topics: throughput "
                 "over --few-topics then --topics topics (Kafka), Ferry beside direct")
      ->check(CLI::IsMember({"streams", "topics"}));
  app.add_option("--few-topics", o.few_topics, "--mode topics: the small topic count")
      ->check(CLI::PositiveNumber);
  app.add_option("--messages", o.messages, "--mode topics: messages published per path")
      ->check(CLI::PositiveNumber);
  app.add_option("--direct-timeout-ms", o.direct_timeout_ms,
                 "--mode topics: the direct producer's message.timeout.ms (ferryd's "
                 "publish.timeout)")
      ->check(CLI::PositiveNumber);
  app.add_option("--direct-stats-dir", o.direct_stats_dir,
                 "--mode topics: write librdkafka's statistics JSON of each direct pass "
                 "(every second) to DIR/<topics>-topics-<pass>.json");
  app.add_flag("--skip-consume", o.skip_consume,
               "--mode topics: publish passes only, no read-back");
  app.add_option("--backend", o.backend, "--mode streams: embedded or kafka")
      ->check(CLI::IsMember({"embedded", "kafka"}));
  app.add_option("--streams", o.streams, "Subscriber streams")
      ->check(CLI::PositiveNumber);
  app.add_option("--groups", o.groups,
                 "Consumer groups (stream i joins group i % groups)")
      ->check(CLI::PositiveNumber);
  app.add_option("--topics", o.topics, "Topics (group g reads topic g % topics)")
      ->check(CLI::PositiveNumber);
  app.add_option("--partitions", o.partitions, "Partitions per topic")
      ->check(CLI::PositiveNumber);
  app.add_option("--publishers", o.publishers, "Publishing streams")
      ->check(CLI::PositiveNumber);
  app.add_option("--connections", o.connections,
                 "gRPC channels (TCP connections) the streams share")
      ->check(CLI::PositiveNumber);
  app.add_option("--rate", o.rate, "Messages per second each subscriber stream receives")
      ->check(CLI::PositiveNumber);
  app.add_option("--size", o.size, "Message value bytes (>= 8)");
  app.add_option("--seconds", o.seconds, "Measured seconds")->check(CLI::PositiveNumber);
  app.add_option("--warmup-seconds", o.warmup_seconds, "Load before measuring");
  CLI11_PARSE(app, argc, argv);
  ferry::bench::RaiseFileLimit();
  return o.mode == "topics" ? ferry::bench::RunTopics(o) : ferry::bench::RunStreams(o);
}
