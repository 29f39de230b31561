// mirror_bench: Ferry's mirror against Apache Kafka's MirrorMaker 2, in one
// run on the same two brokers. A source topic is preloaded with keyed
// records whose value carries a sequence number; each system then copies it
// to the target broker while this program watches the target's watermarks
// and the copier's CPU time (/proc/<pid>/stat); afterwards every target
// partition is read back and checked against where each record was written
// on the source: all present, partition for partition, in source order,
// duplicates counted. Started by bench/mirror_bench.sh, which fetches
// MirrorMaker 2's jars first. See bench/README.md.
#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "testing/process.h"

namespace ferry::bench {
namespace {

struct Options {
  int64_t records = 1'000'000;
  int size = 1024;
  int partitions = 8;
  int keys = 1000;
  std::vector<std::string> systems = {"ferry", "mm2"};
  std::string mm2_libs;
  int mm2_tasks = 1;
  std::vector<std::string> mm2_overrides;
  double timeout_seconds = 900;
  std::string perf_ferryd;
  bool keep_work_dir = false;
  std::vector<std::string> ferryd_env;
};

using RdKafka = std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)>;

// A librdkafka client of `type` with `properties`; null (logged) on error.
RdKafka MakeClient(rd_kafka_type_t type,
                   const std::map<std::string, std::string>& properties,
                   void (*on_delivery)(rd_kafka_t*, const rd_kafka_message_t*,
                                       void*) = nullptr,
                   void* opaque = nullptr) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), error, sizeof(error)) !=
        RD_KAFKA_CONF_OK) {
      Log("{}: {}", key, error);
      rd_kafka_conf_destroy(conf);
      return {nullptr, &rd_kafka_destroy};
    }
  }
  if (on_delivery != nullptr) rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  if (opaque != nullptr) rd_kafka_conf_set_opaque(conf, opaque);
  rd_kafka_t* client = rd_kafka_new(type, conf, error, sizeof(error));
  if (client == nullptr) Log("client: {}", error);
  return {client, &rd_kafka_destroy};
}

// Where each preloaded record (by sequence number) sits on the source.
struct Placement {
  std::vector<int32_t> partition;
  std::vector<int64_t> offset;
  std::vector<int64_t> per_partition;  // records per source partition
  int64_t failed = 0;
};

void OnPreloadDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* placement = static_cast<Placement*>(opaque);
  const auto seq = reinterpret_cast<intptr_t>(message->_private);
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++placement->failed;
    return;
  }
  placement->partition[seq] = message->partition;
  placement->offset[seq] = message->offset;
  ++placement->per_partition[message->partition];
}

std::string Key(int64_t seq, int keys) { return fmt::format("key-{}", seq % keys); }

// Writes `records` keyed records (Java's murmur2 partitioner, acks=all,
// idempotent) whose value starts with the 12-digit sequence number.
bool Preload(const std::string& bootstrap, const std::string& topic, const Options& o,
             Placement* placement) {
  placement->partition.assign(o.records, -1);
  placement->offset.assign(o.records, -1);
  placement->per_partition.assign(o.partitions, 0);
  RdKafka producer = MakeClient(RD_KAFKA_PRODUCER,
                                {{"bootstrap.servers", bootstrap},
                                 {"acks", "all"},
                                 {"enable.idempotence", "true"},
                                 {"linger.ms", "5"},
                                 {"partitioner", "murmur2_random"},
                                 {"queue.buffering.max.kbytes", "262144"}},
                                &OnPreloadDelivery, placement);
  if (!producer) return false;
  std::string value(o.size, 'v');
  const int64_t start = NowNs();
  for (int64_t seq = 0; seq < o.records; ++seq) {
    const std::string key = Key(seq, o.keys);
    const std::string digits = fmt::format("{:012}", seq);
    std::memcpy(value.data(), digits.data(), std::min(digits.size(), value.size()));
    while (true) {
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          producer.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
          RD_KAFKA_V_KEY(key.data(), key.size()),
          RD_KAFKA_V_VALUE(value.data(), value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<intptr_t>(seq))),
          RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        Log("preload: {}", rd_kafka_err2str(err));
        return false;
      }
      rd_kafka_poll(producer.get(), 50);
    }
    rd_kafka_poll(producer.get(), 0);
  }
  if (rd_kafka_flush(producer.get(), 120'000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      placement->failed > 0) {
    Log("preload: {} records not acknowledged", placement->failed);
    return false;
  }
  Log("preloaded {} records of {} B into {} ({} partitions) in {:.1f} s", o.records,
      o.size, topic, o.partitions, static_cast<double>(NowNs() - start) / 1e9);
  return true;
}

// High watermarks of `partitions` partitions of `topic`; empty on error.
std::vector<int64_t> HighWatermarks(rd_kafka_t* client, const std::string& topic,
                                    int partitions) {
  std::vector<int64_t> high(partitions, 0);
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0;
    if (rd_kafka_query_watermark_offsets(client, topic.c_str(), p, &low, &high[p],
                                         5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return {};
    }
  }
  return high;
}

// Deletes `topic` and waits until the broker's metadata no longer has it, so
// the next copier starts on an empty target. False (logged) on failure.
bool DeleteTopic(const std::string& bootstrap, const std::string& topic) {
  RdKafka admin = MakeClient(RD_KAFKA_PRODUCER, {{"bootstrap.servers", bootstrap}});
  if (!admin) return false;
  rd_kafka_DeleteTopic_t* request = rd_kafka_DeleteTopic_new(topic.c_str());
  rd_kafka_queue_t* queue = rd_kafka_queue_new(admin.get());
  rd_kafka_DeleteTopics(admin.get(), &request, 1, nullptr, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 30'000);
  const rd_kafka_resp_err_t err =
      event == nullptr ? RD_KAFKA_RESP_ERR__TIMED_OUT : rd_kafka_event_error(event);
  if (event != nullptr) rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  rd_kafka_DeleteTopic_destroy(request);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    Log("deleting {}: {}", topic, rd_kafka_err2str(err));
    return false;
  }
  for (int attempt = 0; attempt < 300; ++attempt) {
    const rd_kafka_metadata_t* metadata = nullptr;
    RdKafka fresh = MakeClient(RD_KAFKA_PRODUCER, {{"bootstrap.servers", bootstrap}});
    if (rd_kafka_metadata(fresh.get(), 1, nullptr, &metadata, 5000) ==
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      bool listed = false;
      for (int i = 0; i < metadata->topic_cnt; ++i) {
        listed = listed || topic == metadata->topics[i].topic;
      }
      rd_kafka_metadata_destroy(metadata);
      if (!listed) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  Log("{} still listed 30 s after its deletion", topic);
  return false;
}

// Whether `topic` is missing or empty on the broker at `bootstrap`.
bool TargetEmpty(const std::string& bootstrap, const std::string& topic, int partitions) {
  RdKafka client = MakeClient(RD_KAFKA_PRODUCER, {{"bootstrap.servers", bootstrap}});
  int64_t total = 0;
  for (int64_t high : HighWatermarks(client.get(), topic, partitions)) total += high;
  return total == 0;
}

// What the target holds, read back and compared with the placement.
struct Check {
  int64_t present = 0;       // distinct sequence numbers found
  int64_t duplicates = 0;    // further copies of one already found
  int64_t misplaced = 0;     // on another partition than on the source
  int64_t out_of_order = 0;  // first copies not in source offset order
  int64_t bad = 0;           // unparseable value or wrong key
};

Check ReadBack(const std::string& bootstrap, const std::string& topic, const Options& o,
               const Placement& placement) {
  Check check;
  RdKafka consumer = MakeClient(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap},
                                                    {"group.id", "mirror-bench-check"},
                                                    {"enable.partition.eof", "true"},
                                                    {"enable.auto.commit", "false"}});
  if (!consumer) {
    check.bad = -1;
    return check;
  }
  const std::vector<int64_t> high = HighWatermarks(consumer.get(), topic, o.partitions);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(o.partitions);
  int remaining = 0;
  for (int p = 0; p < o.partitions; ++p) {
    if (high.empty() || high[p] == 0) continue;
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    ++remaining;
  }
  rd_kafka_assign(consumer.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  std::vector<uint8_t> seen(o.records, 0);
  std::vector<int64_t> next(o.partitions, 0);  // next source offset expected
  int64_t idle_since = NowNs();
  while (remaining > 0 && NowNs() - idle_since < 30'000'000'000) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer.get(), 500);
    if (m == nullptr) continue;
    idle_since = NowNs();
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (m->offset >= high[m->partition]) --remaining;
    } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      Log("read back {}: {}", topic, rd_kafka_message_errstr(m));
    } else {
      const std::string_view value(static_cast<const char*>(m->payload),
                                   std::min<size_t>(m->len, 12));
      int64_t seq = -1;
      if (value.size() == 12) seq = std::strtoll(std::string(value).c_str(), nullptr, 10);
      const std::string_view key(static_cast<const char*>(m->key), m->key_len);
      if (seq < 0 || seq >= o.records || key != Key(seq, o.keys)) {
        ++check.bad;
      } else if (placement.partition[seq] != m->partition) {
        ++check.misplaced;
      } else if (seen[seq]) {
        ++check.duplicates;
      } else {
        seen[seq] = 1;
        ++check.present;
        if (placement.offset[seq] != next[m->partition]) ++check.out_of_order;
        next[m->partition] = placement.offset[seq] + 1;
      }
    }
    rd_kafka_message_destroy(m);
  }
  if (remaining > 0)
    Log("read back {}: {} partitions not read to the end", topic, remaining);
  rd_kafka_consumer_close(consumer.get());
  return check;
}

// One system's figures.
struct Result {
  std::string system;
  int64_t records = 0;
  double seconds = 0;        // start command → target holds every record
  double first_seconds = 0;  // start command → first record on the target
  double cpu = 0;            // the copier's processes, utime + stime
  double broker_cpu = 0;     // both brokers
  double other_cpu = 0;      // the rest of the machine (noise)
  int64_t peak_rss_kb = -1;
  bool complete = false;
  Check check = {};
};

// Whether `pid` runs (exists and is no zombie: the copiers are our children).
bool Alive(int pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!std::getline(in, line)) return false;
  const size_t paren = line.rfind(')');
  return paren + 2 < line.size() && line[paren + 2] != 'Z';
}

// Watches the target until each partition holds what the source partition
// holds (or `timeout`, or a copier exits), measuring the copiers' CPU from
// now on.
Result Watch(const std::string& system, const std::vector<int>& pids,
             const std::vector<int>& broker_pids, const std::string& target_bootstrap,
             const std::string& target_topic, const Options& o,
             const Placement& placement, int64_t start_ns, double cpu0, double brokers0,
             double machine0, double self0) {
  Result r{.system = system};
  auto cpu_of = [](const std::vector<int>& pids) {
    double sum = 0;
    for (int pid : pids) sum += std::max(0.0, CpuSeconds(pid));
    return sum;
  };
  std::vector<std::unique_ptr<RssSampler>> rss;
  for (int pid : pids) rss.push_back(std::make_unique<RssSampler>(pid));
  RdKafka client =
      MakeClient(RD_KAFKA_PRODUCER, {{"bootstrap.servers", target_bootstrap}});
  const int64_t deadline = start_ns + static_cast<int64_t>(o.timeout_seconds * 1e9);
  int64_t last_total = -1;
  int64_t last_log = NowNs();
  while (NowNs() < deadline) {
    const std::vector<int64_t> high =
        HighWatermarks(client.get(), target_topic, o.partitions);
    int64_t total = 0;
    bool all = !high.empty();
    for (size_t p = 0; p < high.size(); ++p) {
      total += high[p];
      all = all && high[p] >= placement.per_partition[p];
    }
    if (total > 0 && r.first_seconds == 0) {
      r.first_seconds = static_cast<double>(NowNs() - start_ns) / 1e9;
    }
    if (all) {
      r.complete = true;
      break;
    }
    if (!std::all_of(pids.begin(), pids.end(), Alive)) {
      Log("{}: a copier process exited (see its log)", system);
      break;
    }
    if (NowNs() - last_log > 10'000'000'000 && total != last_total) {
      Log("{}: {} of {} records on the target", system, total, o.records);
      last_log = NowNs();
      last_total = total;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  r.seconds = static_cast<double>(NowNs() - start_ns) / 1e9;
  r.cpu = cpu_of(pids) - cpu0;
  r.broker_cpu = cpu_of(broker_pids) - brokers0;
  r.other_cpu = std::max(0.0, (MachineBusySeconds() - machine0) - r.cpu - r.broker_cpu -
                                  (CpuSeconds(0) - self0));
  for (const auto& sampler : rss) {
    r.peak_rss_kb = std::max(r.peak_rss_kb, sampler->OverallPeak());
  }
  if (!r.complete)
    Log("{}: the target was not complete after {:.0f} s", system, r.seconds);
  return r;
}

// Runs `perf record -g` on `pid` until destroyed (SIGINT lets perf write).
std::unique_ptr<testing::Subprocess> StartPerf(const std::string& output, int pid) {
  if (output.empty()) return nullptr;
  auto perf = testing::Subprocess::Spawn(
      {"perf", "record", "-g", "-o", output, "-p", std::to_string(pid)}, output + ".log");
  if (!perf.ok()) {
    Log("perf: {}", perf.status().ToString());
    return nullptr;
  }
  return *std::move(perf);
}

void StopPerf(std::unique_ptr<testing::Subprocess> perf) {
  if (perf == nullptr) return;
  perf->Signal(SIGINT);
  (void)perf->Wait(absl::Seconds(60));
}

Result RunFerry(int nodes, const testing::KafkaBroker& source,
                const testing::KafkaBroker& target, const std::string& topic,
                const Options& o, const Placement& placement,
                const std::vector<int>& broker_pids) {
  const std::string system =
      nodes == 1 ? "Ferry mirror, 1 ferryd" : "Ferry mirror, 2 ferryd";
  const std::string yaml =
      absl::StrCat("clusters:\n", testing::KafkaClusterEntry("a", source.bootstrap()),
                   testing::KafkaClusterEntry("b", target.bootstrap()),
                   "control: { cluster: a, topic: __ferry_control.mirror-bench }\n",
                   "routes:\n  - { topic: \"*\", write: [a] }\n");
  std::map<std::string, std::string> env;
  ParseKeyValues(o.ferryd_env, "--ferryd-env", &env);  // checked in main
  std::vector<std::unique_ptr<testing::FerrydProcess>> ferryd;
  std::vector<int> pids;
  for (int i = 0; i < nodes; ++i) {
    auto node = testing::FerrydProcess::Start(yaml, env);
    if (!node.ok()) {
      Log("ferryd: {}", node.status().ToString());
      return {.system = system};
    }
    pids.push_back((*node)->process().pid());
    ferryd.push_back(*std::move(node));
  }
  auto cpu_of = [](const std::vector<int>& pids) {
    double sum = 0;
    for (int pid : pids) sum += CpuSeconds(pid);
    return sum;
  };
  auto perf = StartPerf(o.perf_ferryd, pids[0]);
  const double cpu0 = cpu_of(pids), brokers0 = cpu_of(broker_pids),
               machine0 = MachineBusySeconds(), self0 = CpuSeconds(0);
  const int64_t start = NowNs();
  const std::string job = fmt::format("bench{}", nodes);
  auto started =
      testing::RunFerryCli({"--server", ferryd[0]->grpc_address(), "mirror", "start", job,
                            "--from", "a", "--to", "b", "--topic", topic});
  if (!started.ok() || started->exit_code != 0) {
    Log("ferry mirror start: {}",
        started.ok() ? started->err : started.status().ToString());
    return {.system = system};
  }
  Result r = Watch(system, pids, broker_pids, target.bootstrap(), topic, o, placement,
                   start, cpu0, brokers0, machine0, self0);
  StopPerf(std::move(perf));
  (void)testing::RunFerryCli(
      {"--server", ferryd[0]->grpc_address(), "mirror", "stop", job});
  return r;
}

// MirrorMaker 2's settings, chosen to match what ferryd's mirror does: one
// task (one consumer and one producer, as one ferryd has), idempotent
// producer with acks=all and up to 5 requests in flight (ferryd's
// librdkafka producer), librdkafka's default batch.size (1,000,000 B) and
// ferryd's linger.ms=1, source offsets flushed every second (ferryd commits
// every second); no heartbeats, checkpoints or group offset sync (Ferry's
// mirror does none of these; MM2 then logs that its checkpoint connector
// cannot run, which is expected). Each can be overridden with --mm2.
std::map<std::string, std::string> Mm2Properties(const std::string& source,
                                                 const std::string& target,
                                                 const std::string& topic,
                                                 const Options& o) {
  std::map<std::string, std::string> p = {
      {"clusters", "src, tgt"},
      {"src.bootstrap.servers", source},
      {"tgt.bootstrap.servers", target},
      {"src->tgt.enabled", "true"},
      {"tgt->src.enabled", "false"},
      {"src->tgt.topics", topic},
      {"tasks.max", std::to_string(o.mm2_tasks)},
      {"emit.heartbeats.enabled", "false"},
      {"emit.checkpoints.enabled", "false"},
      {"sync.group.offsets.enabled", "false"},
      {"sync.topic.acls.enabled", "false"},
      // Skips scanning the class path for plugins at start-up (MM2's own
      // log suggests it); its jars all carry ServiceLoader manifests.
      {"plugin.discovery", "service_load"},
      {"offset.flush.interval.ms", "1000"},
      {"replication.factor", "1"},
      {"offset-syncs.topic.replication.factor", "1"},
      {"heartbeats.topic.replication.factor", "1"},
      {"checkpoints.topic.replication.factor", "1"},
      {"config.storage.replication.factor", "1"},
      {"offset.storage.replication.factor", "1"},
      {"status.storage.replication.factor", "1"},
      {"tgt.producer.acks", "all"},
      {"tgt.producer.enable.idempotence", "true"},
      {"tgt.producer.max.in.flight.requests.per.connection", "5"},
      {"tgt.producer.linger.ms", "1"},
      {"tgt.producer.batch.size", "1000000"},
  };
  for (const std::string& entry : o.mm2_overrides) {
    const size_t eq = entry.find('=');
    p[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return p;
}

Result RunMm2(const testing::KafkaBroker& source, const testing::KafkaBroker& target,
              const std::string& topic, const Options& o, const Placement& placement,
              const std::vector<int>& broker_pids, const std::string& work_dir) {
  const std::string system =
      fmt::format("MirrorMaker 2, dedicated, tasks.max={}", o.mm2_tasks);
  {
    std::ofstream props(work_dir + "/mm2.properties");
    for (const auto& [key, value] :
         Mm2Properties(source.bootstrap(), target.bootstrap(), topic, o)) {
      props << key << " = " << value << "\n";
    }
    // Producer and consumer configs at INFO show the settings MM2 really used.
    std::ofstream log4j(work_dir + "/log4j.properties");
    log4j << "log4j.rootLogger=WARN, stdout\n"
             "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
             "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
             "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
             "log4j.logger.org.apache.kafka.clients.producer.ProducerConfig=INFO\n"
             "log4j.logger.org.apache.kafka.clients.consumer.ConsumerConfig=INFO\n"
             "log4j.logger.org.apache.kafka.connect.mirror=INFO\n";
  }
  const double brokers0 = [&] {
    double sum = 0;
    for (int pid : broker_pids) sum += CpuSeconds(pid);
    return sum;
  }();
  const double machine0 = MachineBusySeconds(), self0 = CpuSeconds(0);
  const int64_t start = NowNs();
  // The JVM options of Kafka's connect-mirror-maker.sh / kafka-run-class.sh.
  auto mm2 = testing::Subprocess::Spawn(
      {"java", "-Xms256M", "-Xmx2G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
       "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
       "-Djava.awt.headless=true",
       fmt::format("-Dlog4j.configuration=file:{}/log4j.properties", work_dir), "-cp",
       o.mm2_libs + "/*", "org.apache.kafka.connect.mirror.MirrorMaker",
       work_dir + "/mm2.properties"},
      work_dir + "/mm2.log", {}, work_dir);
  if (!mm2.ok()) {
    Log("MirrorMaker 2: {}", mm2.status().ToString());
    return {.system = system};
  }
  Log("MirrorMaker 2 pid {}, log {}/mm2.log", (*mm2)->pid(), work_dir);
  // Its CPU counts from the JVM's start: start-up is part of what it costs.
  Result r = Watch(system, {(*mm2)->pid()}, broker_pids, target.bootstrap(),
                   "src." + topic, o, placement, start, 0, brokers0, machine0, self0);
  (*mm2)->Signal(SIGTERM);
  if (!(*mm2)->Wait(absl::Seconds(30)).ok()) (*mm2)->Signal(SIGKILL);
  return r;
}

void PrintTable(const std::vector<Result>& results, const Options& o) {
  fmt::print(
      "\n| system | records | seconds | records/s | first record s | copy records/s | "
      "CPU s total | CPU "
      "µs/record | peak RSS | brokers CPU s | other CPU s | missing | duplicates | "
      "out of order | misplaced |\n");
  fmt::print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  // A rate only for a copy that completed.
  auto rate = [&](const Result& r, double seconds) {
    return r.complete && seconds > 0
               ? fmt::format("{:.0f}", static_cast<double>(o.records) / seconds)
               : std::string("–");
  };
  for (const Result& r : results) {
    fmt::print(
        "| {} | {} | {:.1f} | {} | {:.1f} | {} | {:.1f} | {:.1f} | {} | {:.1f} | "
        "{:.1f} | {} | {} | {} | {} |\n",
        r.system, o.records, r.seconds, rate(r, r.seconds), r.first_seconds,
        rate(r, r.seconds - r.first_seconds), r.cpu,
        r.cpu * 1e6 / static_cast<double>(o.records), Mib(r.peak_rss_kb), r.broker_cpu,
        r.other_cpu, o.records - r.check.present, r.check.duplicates,
        r.check.out_of_order, r.check.misplaced + r.check.bad);
  }
  fmt::print(
      "\nseconds: from the start command (ferry mirror start; the MirrorMaker JVM's "
      "launch) until each target partition holds as many records as its source "
      "partition. copy records/s: records / (seconds - first record s), the rate once "
      "copying runs. CPU: utime+stime of the copier processes over that time. other CPU: "
      "the rest of the machine (should be ~0).\n");
}

int Run(const Options& o) {
  std::vector<std::string> known = {"ferry", "ferry2", "mm2"};
  for (const std::string& s : o.systems) {
    if (std::find(known.begin(), known.end(), s) == known.end()) {
      fmt::print(stderr, "--systems: unknown system '{}' (ferry, ferry2, mm2)\n", s);
      return 2;
    }
    if (s == "mm2" && o.mm2_libs.empty()) {
      fmt::print(stderr,
                 "--systems mm2 needs --mm2-libs (bench/mirror_bench.sh sets it)\n");
      return 2;
    }
  }
  Log("starting the source and the target broker");
  auto source = testing::KafkaBroker::Start("mirror-bench-src");
  if (!source.ok()) {
    Log("source broker: {}", source.status().ToString());
    return 1;
  }
  auto target = testing::KafkaBroker::Start("mirror-bench-dst");
  if (!target.ok()) {
    Log("target broker: {}", target.status().ToString());
    return 1;
  }
  const std::vector<int> broker_pids = {BrokerPidFromState(**source),
                                        BrokerPidFromState(**target)};
  const std::string topic = "mirror-bench";
  if (absl::Status s = (*source)->CreateTopic(topic, o.partitions); !s.ok()) {
    Log("{}", s.ToString());
    return 1;
  }
  Placement placement;
  if (!Preload((*source)->bootstrap(), topic, o, &placement)) return 1;
  const std::string work_dir =
      std::filesystem::temp_directory_path() / fmt::format("mirror-bench-{}", getpid());
  std::filesystem::create_directories(work_dir);

  std::vector<Result> results;
  bool ferry_ran = false;
  for (const std::string& system : o.systems) {
    const bool mm2 = system == "mm2";
    const std::string target_topic = mm2 ? "src." + topic : topic;
    // Every Ferry run writes the target's topic of the same name.
    if (!mm2 && ferry_ran && !DeleteTopic((*target)->bootstrap(), topic)) return 1;
    ferry_ran = ferry_ran || !mm2;
    if (!TargetEmpty((*target)->bootstrap(), target_topic, o.partitions)) {
      Log("{} on the target holds records already: each copier needs an empty target "
          "(is a system named twice in --systems?)",
          target_topic);
      return 1;
    }
    const Result r =
        mm2 ? RunMm2(**source, **target, topic, o, placement, broker_pids, work_dir)
            : RunFerry(system == "ferry" ? 1 : 2, **source, **target, topic, o, placement,
                       broker_pids);
    Log("{}: {:.1f} s, checking the target", r.system, r.seconds);
    results.push_back(r);
    results.back().check = ReadBack((*target)->bootstrap(), target_topic, o, placement);
  }
  PrintTable(results, o);
  if (o.keep_work_dir) {
    Log("MirrorMaker 2's configuration and log kept in {}", work_dir);
  } else {
    std::filesystem::remove_all(work_dir);
  }
  for (const Result& r : results) {
    if (!r.complete || r.check.present != o.records || r.check.out_of_order != 0 ||
        r.check.misplaced != 0 || r.check.bad != 0) {
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) {
  ferry::bench::Options o;
  const auto key_value = [](const std::string& entry) -> std::string {
    return entry.find('=') == std::string::npos ? "expected KEY=VALUE" : "";
  };
  CLI::App app{
      "Ferry's mirror against MirrorMaker 2: copies one preloaded topic between two "
      "local brokers with each and prints time, CPU per record and a check of the "
      "target. Usually started through bench/mirror_bench.sh."};
  app.add_option("--records", o.records, "Records preloaded into the source topic")
      ->check(CLI::PositiveNumber);
  app.add_option("--size", o.size, "Record value size in bytes (>= 12)")
      ->check(CLI::Range(12, 1 << 20));
  app.add_option("--partitions", o.partitions, "Partitions of the source topic")
      ->check(CLI::Range(1, 1000));
  app.add_option("--keys", o.keys, "Distinct keys (record i has key i % keys)")
      ->check(CLI::PositiveNumber);
  app.add_option("--systems", o.systems,
                 "Which copiers to run, in this order: ferry (one ferryd), ferry2 (two "
                 "ferryd), mm2")
      ->delimiter(',');
  app.add_option("--mm2-libs", o.mm2_libs, "Folder of MirrorMaker 2's jars");
  app.add_option("--mm2-tasks", o.mm2_tasks, "MirrorMaker 2's tasks.max")
      ->check(CLI::PositiveNumber);
  app.add_option("--mm2", o.mm2_overrides,
                 "KEY=VALUE overriding a MirrorMaker 2 property (repeatable)")
      ->check(key_value);
  app.add_option("--timeout-seconds", o.timeout_seconds,
                 "Give up on a copier after this long")
      ->check(CLI::PositiveNumber);
  app.add_option("--perf-ferryd", o.perf_ferryd,
                 "Record `perf record -g` of the (first) ferryd into this file during "
                 "its mirror run");
  app.add_option("--ferryd-env", o.ferryd_env,
                 "KEY=VALUE added to ferryd's environment (repeatable), e.g. "
                 "MALLOC_CONF=... for jemalloc")
      ->check(key_value);
  app.add_flag("--keep-work-dir", o.keep_work_dir,
               "Keep MirrorMaker 2's configuration and log (in the temp directory)");
  CLI11_PARSE(app, argc, argv);
  return ferry::bench::Run(o);
}
