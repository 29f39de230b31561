// security_bench: what TLS and authentication cost on the publish path. One
// process starts a ferryd on an embedded store once per mode and publishes
// the same workload through the C++ SDK, modes interleaved over --rounds:
//
//   off         plain text, auth off (the default)
//   tls         TLS on both listeners, auth off
//   tls+token   TLS, auth.enabled, a bearer token and one ACL rule per call
//   mtls        mutual TLS, auth.enabled, the client certificate's CN
//
// and prints, per mode, throughput and CPU per message of ferryd and of the
// client. The embedded store keeps the broker out of the figures.
//
//   security_bench --messages 200000 --size 100 --rounds 2
//
// Certificates and the token are made at start (testing::TestCertificates).
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <deque>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "ferry/client/publisher.h"
#include "security/token_table.h"
#include "testing/ferryd_process.h"
#include "testing/test_certificates.h"

namespace ferry::bench {
namespace {

struct Options {
  int64_t messages = 200000;
  int size = 100;
  int concurrency = 4;
  int rounds = 2;
};

struct Mode {
  std::string name;
  bool tls = false;
  bool mutual = false;
  bool auth = false;
};

constexpr char kSecret[] = "bench0123456789abcdef";

struct Result {
  double seconds = 0;
  double ferryd_cpu = 0;
  double client_cpu = 0;
  int64_t failed = 0;
};

// Publishes `count` messages from `concurrency` threads, each with its own
// Publisher and at most 20000 unanswered messages.
int64_t Publish(const Options& o, const client::Security& security,
                const std::string& endpoint, int64_t count, const std::string& topic) {
  std::atomic<int64_t> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < o.concurrency; ++t) {
    threads.emplace_back([&, t] {
      std::string error;
      auto publisher = client::Publisher::Builder()
                           .Endpoints({endpoint})
                           .Security(security)
                           .Build(&error);
      if (publisher == nullptr) {
        Log("publisher: {}", error);
        failed += count / o.concurrency;
        return;
      }
      const std::string value(o.size, 'v');
      std::deque<std::future<client::PublishResult>> pending;
      for (int64_t i = t; i < count; i += o.concurrency) {
        pending.push_back(
            publisher->Publish(topic, {.key = std::to_string(i % 1000), .value = value}));
        if (pending.size() >= 20000) {
          if (!pending.front().get().ok()) ++failed;
          pending.pop_front();
        }
      }
      for (auto& f : pending) {
        if (!f.get().ok()) ++failed;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  return failed;
}

Result Run(const Options& o, const Mode& mode, testing::TestCertificates& pki,
           const testing::IssuedCertificate& server,
           const testing::IssuedCertificate& client, const std::string& tokens_file) {
  std::map<std::string, std::string> env;
  testing::HttpsClientFiles https;
  client::Security security;
  if (mode.tls) {
    env = {{"FERRY_LISTEN_TLS_CERT", server.cert}, {"FERRY_LISTEN_TLS_KEY", server.key}};
    https.ca = security.ca_file = pki.ca_cert();
  }
  if (mode.mutual) {
    env["FERRY_LISTEN_TLS_CLIENT_CA"] = pki.ca_cert();
    https.cert = security.cert_file = client.cert;
    https.key = security.key_file = client.key;
  }
  std::string yaml =
      "clusters: { local: { type: embedded, path: ./data, durability: batch } }\n"
      "routes: [ { topic: \"*\", write: [local], read: [local], auto_create_topics: true "
      "} "
      "]\n";
  if (mode.auth) {
    env["FERRY_AUTH_ENABLED"] = "true";
    env["FERRY_AUTH_TOKENS_FILE"] = tokens_file;
    yaml +=
        "auth: { acl: [ { principal: bench, resource: \"topic:bench.*\", operations: "
        "[publish] } ] }\n";
    if (!mode.mutual) security.token = std::string("bench.") + kSecret;
  }
  auto node = testing::FerrydProcess::Start(yaml, env, "", https);
  if (!node.ok()) {
    Log("{}: ferryd: {}", mode.name, std::string(node.status().message()));
    std::exit(1);
  }
  const int pid = (*node)->process().pid();
  std::string topic = "bench." + mode.name;
  std::replace(topic.begin(), topic.end(), '+', '-');  // topic characters only
  Publish(o, security, (*node)->grpc_address(), o.messages / 10, topic);  // warm-up
  const double ferryd_before = CpuSeconds(pid);
  const double client_before = CpuSeconds(0);
  const int64_t start = NowNs();
  Result result;
  result.failed = Publish(o, security, (*node)->grpc_address(), o.messages, topic);
  result.seconds = static_cast<double>(NowNs() - start) / 1e9;
  result.ferryd_cpu = CpuSeconds(pid) - ferryd_before;
  result.client_cpu = CpuSeconds(0) - client_before;
  return result;
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) {
  using namespace ferry::bench;
  Options o;
  CLI::App app{"security_bench: publish cost of TLS and auth"};
  app.add_option("--messages", o.messages, "Messages per mode and round");
  app.add_option("--size", o.size, "Value bytes");
  app.add_option("--concurrency", o.concurrency,
                 "Publishing threads (one Publisher each)");
  app.add_option("--rounds", o.rounds, "Times each mode runs, interleaved");
  CLI11_PARSE(app, argc, argv);

  auto pki = ferry::testing::TestCertificates::Create();
  if (!pki.ok()) {
    Log("certificates: {}", std::string(pki.status().message()));
    return 1;
  }
  auto server = (*pki)->IssueServer();
  auto client = (*pki)->Issue("bench");
  if (!server.ok() || !client.ok()) return 1;
  const std::string tokens_file = ferry::testing::WriteTempFile(
      "bench-tokens",
      ferry::security::TokenLine("bench", "bench", kSecret, "bench-salt-01",
                                 absl::InfiniteFuture()) +
          "\n");
  const std::vector<Mode> modes = {{"off"},
                                   {"tls", true},
                                   {"tls+token", true, false, true},
                                   {"mtls", true, true, true}};
  fmt::print("| mode | round | msgs/s | ferryd µs/msg | client µs/msg | failed |\n");
  fmt::print("|---|--:|--:|--:|--:|--:|\n");
  for (int round = 1; round <= o.rounds; ++round) {
    for (const Mode& mode : modes) {
      Result r = Run(o, mode, **pki, *server, *client, tokens_file);
      const double n = static_cast<double>(o.messages);
      fmt::print("| {} | {} | {:.0f} | {:.2f} | {:.2f} | {} |\n", mode.name, round,
                 n / r.seconds, r.ferryd_cpu * 1e6 / n, r.client_cpu * 1e6 / n, r.failed);
      std::fflush(stdout);
    }
  }
  unlink(tokens_file.c_str());
  return 0;
}
