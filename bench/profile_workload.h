// What the profile drivers (publish_profile: the C++ SDK; direct_profile:
// the direct librdkafka producer) both publish, so that the two sides of
// issue 18's ratio are counted on the same messages, and the direct
// producer's settings, which publish_bench's direct pass uses too, and the
// drivers' common options (consume_profile's too).
#ifndef FERRY_BENCH_PROFILE_WORKLOAD_H_
#define FERRY_BENCH_PROFILE_WORKLOAD_H_

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace ferry::bench {

// The drivers' common options: how many messages (all drivers), how large,
// over how many keys (the publishing ones).
struct ProfileRun {
  int64_t warmup = 5000;
  int64_t messages = 20000;
  int size = 100;
  int keys = 1000;

  void AddCountOptions(CLI::App& app) {
    app.add_option("--warmup", warmup, "messages before counting")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--messages", messages, "messages counted")
        ->check(CLI::PositiveNumber);
  }
  void AddOptions(CLI::App& app) {
    AddCountOptions(app);
    app.add_option("--size", size, "value bytes");
    app.add_option("--keys", keys, "distinct keys (0: no key on any message)");
  }
};

// Keys from a fixed set in a shuffled order (the same on every run), one
// payload for every message.
struct ProfileWorkload {
  ProfileWorkload(int key_count, int size)
      : payload(static_cast<std::size_t>(size), 'x') {
    for (int k = 0; k < key_count; ++k) keys.push_back(fmt::format("key-{}", k));
    if (key_count <= 0) return;
    std::mt19937 random(42);
    std::uniform_int_distribution<int> pick(0, key_count - 1);
    for (int i = 0; i < 65536; ++i) key_order.push_back(pick(random));
  }

  // "" when there are no keys.
  const std::string& KeyAt(int64_t i) const {
    if (key_order.empty()) return no_key;
    return keys[key_order[static_cast<std::size_t>(i) % key_order.size()]];
  }

  std::vector<std::string> keys;
  std::vector<int> key_order;
  std::string payload;
  std::string no_key;
};

// librdkafka properties of the direct producer: ferryd's
// (src/backend/kafka/kafka_publish.cc) plus linger.ms=5, which publish_bench
// also sets on ferryd's cluster.
inline std::vector<std::pair<std::string, std::string>> DirectProducerSettings(
    const std::string& bootstrap, const std::string& client_id,
    const std::string& linger_ms = "5") {
  return {
      {"bootstrap.servers", bootstrap},
      {"client.id", client_id},
      {"acks", "all"},
      {"enable.idempotence", "true"},
      {"linger.ms", linger_ms},
      {"message.timeout.ms", "10000"},
      {"allow.auto.create.topics", "false"},
      {"partitioner", "murmur2_random"},
  };
}

}  // namespace ferry::bench

#endif  // FERRY_BENCH_PROFILE_WORKLOAD_H_
