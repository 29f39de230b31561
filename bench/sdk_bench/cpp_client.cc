// One benchmark client of bench/sdk_bench: publishes or consumes --messages
// messages of --size bytes with the Ferry C++ SDK (--client ferry, through
// ferryd) or with librdkafka (--client librdkafka, straight to Kafka, acks=all
// and idempotence as ferryd's producer), and prints one JSON line: messages,
// seconds of the measured window and the process's own user+system CPU
// seconds in it (getrusage).
#include <librdkafka/rdkafka.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "ferry/client/publisher.h"
#include "ferry/client/subscriber.h"

namespace {

struct Args {
  std::string client = "ferry";
  std::string mode = "publish";
  std::string target = "127.0.0.1:7400";
  std::string topic = "bench";
  std::string group = "bench";
  int size = 1024;
  int messages = 100000;
};

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Wall and CPU time from construction to Print().
class Window {
 public:
  Window() : wall_(std::chrono::steady_clock::now()), cpu_(CpuSeconds()) {}
  void Print(long messages) const {
    const double cpu = CpuSeconds() - cpu_;
    const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - wall_;
    std::printf("{\"messages\": %ld, \"seconds\": %.6f, \"cpu\": %.6f}\n", messages,
                wall.count(), cpu);
  }

 private:
  std::chrono::steady_clock::time_point wall_;
  double cpu_;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "cpp_client: %s\n", what.c_str());
  std::exit(1);
}

std::string Key(int i) { return "k" + std::to_string(i % 1000); }

void FerryPublish(const Args& args) {
  std::string error;
  auto publisher =
      ferry::client::Publisher::Builder().Endpoints({args.target}).Build(&error);
  if (publisher == nullptr) Die(error);
  const std::string value(args.size, 'x');
  Window window;
  std::vector<std::future<ferry::client::PublishResult>> results;
  results.reserve(args.messages);
  for (int i = 0; i < args.messages; ++i) {
    results.push_back(publisher->Publish(args.topic, {.key = Key(i), .value = value}));
  }
  for (auto& result : results) {
    ferry::client::PublishResult r = result.get();
    if (!r.ok()) Die(r.error);
  }
  window.Print(args.messages);
}

void FerryConsume(const Args& args) {
  std::mutex mu;
  std::condition_variable done;
  long received = 0;
  Window window;
  std::string error;
  auto subscriber = ferry::client::Subscriber::Builder()
                        .Endpoints({args.target})
                        .Group(args.group)
                        .Topics({args.topic})
                        .StartAt(ferry::client::StartPosition::Earliest())
                        .FlowControl(5000, int64_t{64} << 20)
                        .OnMessage([&](const ferry::client::ReceivedMessage&,
                                       ferry::client::AckHandle handle) {
                          handle.Ack();
                          std::lock_guard lock(mu);
                          if (++received == args.messages) done.notify_all();
                        })
                        .Build(&error);
  if (subscriber == nullptr) Die(error);
  {
    std::unique_lock lock(mu);
    done.wait(lock, [&] { return received >= args.messages; });
  }
  window.Print(args.messages);
  subscriber->Close(std::chrono::seconds(10));
}

rd_kafka_conf_t* Conf(const std::map<std::string, std::string>& settings) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& [key, value] : settings) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      Die(errstr);
    }
  }
  return conf;
}

std::atomic<long> delivery_failures{0};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) delivery_failures.fetch_add(1);
}

void LibrdkafkaPublish(const Args& args) {
  rd_kafka_conf_t* conf = Conf({{"bootstrap.servers", args.target},
                                {"acks", "all"},
                                {"enable.idempotence", "true"},
                                {"linger.ms", "5"}});
  rd_kafka_conf_set_dr_msg_cb(conf, &OnDelivery);
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (rk == nullptr) Die(errstr);
  std::string value(args.size, 'x');
  Window window;
  for (int i = 0; i < args.messages; ++i) {
    const std::string key = Key(i);
    for (;;) {
      rd_kafka_resp_err_t err =
          rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(args.topic.c_str()),
                            RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                            RD_KAFKA_V_VALUE(value.data(), value.size()),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) Die(rd_kafka_err2str(err));
      rd_kafka_poll(rk, 10);  // serve delivery reports to make room
    }
    rd_kafka_poll(rk, 0);
  }
  if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) Die("flush timed out");
  if (delivery_failures.load() > 0)
    Die(std::to_string(delivery_failures.load()) + " failed");
  window.Print(args.messages);
  rd_kafka_destroy(rk);
}

void LibrdkafkaConsume(const Args& args) {
  rd_kafka_conf_t* conf = Conf({{"bootstrap.servers", args.target},
                                {"group.id", args.group},
                                {"auto.offset.reset", "earliest"}});
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
  if (rk == nullptr) Die(errstr);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, args.topic.c_str(), RD_KAFKA_PARTITION_UA);
  Window window;
  if (rd_kafka_subscribe(rk, topics) != RD_KAFKA_RESP_ERR_NO_ERROR)
    Die("subscribe failed");
  rd_kafka_topic_partition_list_destroy(topics);
  long received = 0;
  while (received < args.messages) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) ++received;
    rd_kafka_message_destroy(m);
  }
  window.Print(received);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  CLI::App app{"bench/sdk_bench client: the Ferry C++ SDK or librdkafka"};
  app.add_option("--client", args.client, "ferry or librdkafka")
      ->check(CLI::IsMember({"ferry", "librdkafka"}));
  app.add_option("--mode", args.mode, "publish or consume")
      ->check(CLI::IsMember({"publish", "consume"}));
  app.add_option("--target", args.target, "ferryd endpoint or Kafka bootstrap");
  app.add_option("--topic", args.topic, "topic");
  app.add_option("--group", args.group, "consumer group");
  app.add_option("--size", args.size, "value bytes")->check(CLI::PositiveNumber);
  app.add_option("--messages", args.messages, "messages")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  const bool ferry = args.client == "ferry";
  if (args.mode == "publish") {
    ferry ? FerryPublish(args) : LibrdkafkaPublish(args);
  } else {
    ferry ? FerryConsume(args) : LibrdkafkaConsume(args);
  }
  return 0;
}
