#include "cli/produce_command.h"

#include <fmt/format.h>

#include <chrono>
#include <deque>
#include <iostream>
#include <map>

#include "ferry/client/publisher.h"

namespace ferry::cli {
namespace {

struct ProduceOptions {
  std::string topic;
  std::string key;
  std::string key_delimiter;
  std::vector<std::string> headers;
  int timeout_seconds = 30;
};

struct Summary {
  int64_t sent = 0;
  int64_t failed = 0;
  std::string first_error;

  void Add(const client::PublishResult& result) {
    if (result.ok()) {
      ++sent;
    } else if (failed++ == 0) {
      first_error = fmt::format("code {}: {}", result.code, result.error);
    }
  }
};

int RunProduce(const GlobalOptions& global, const ProduceOptions& options) {
  std::vector<client::Header> headers;
  for (const std::string& header : options.headers) {
    size_t eq = header.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << fmt::format("ferry: produce: --header \"{}\" is not key=value\n",
                               header);
      return 2;
    }
    headers.push_back({header.substr(0, eq), header.substr(eq + 1)});
  }
  std::string error;
  auto publisher = client::Publisher::Builder()
                       .Endpoints({global.server})
                       .Security(SdkSecurity(global))
                       .DeliveryTimeout(std::chrono::seconds(options.timeout_seconds))
                       .Build(&error);
  if (publisher == nullptr) {
    std::cerr << "ferry: produce: " << error << "\n";
    return 2;
  }

  const auto start = std::chrono::steady_clock::now();
  Summary summary;
  // Results are collected as they complete so memory stays flat for long
  // inputs; the SDK bounds what is in flight.
  std::deque<std::future<client::PublishResult>> pending;
  std::string line;
  while (std::getline(std::cin, line)) {
    client::Message message;
    message.headers = headers;
    if (!options.key_delimiter.empty()) {
      size_t at = line.find(options.key_delimiter);
      if (at == std::string::npos) {
        message.value = line;
      } else {
        message.key = line.substr(0, at);
        message.value = line.substr(at + options.key_delimiter.size());
      }
    } else {
      message.key = options.key;
      message.value = line;
    }
    pending.push_back(publisher->Publish(options.topic, std::move(message)));
    while (!pending.empty() &&
           (pending.size() > 10000 || pending.front().wait_for(std::chrono::seconds(0)) ==
                                          std::future_status::ready)) {
      summary.Add(pending.front().get());
      pending.pop_front();
    }
  }
  for (auto& result : pending) summary.Add(result.get());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << fmt::format("sent {}, failed {} in {:.2f}s\n", summary.sent,
                           summary.failed, seconds);
  if (summary.failed > 0) {
    std::cerr << fmt::format("ferry: produce: {} of {} messages failed; first: {}\n",
                             summary.failed, summary.sent + summary.failed,
                             summary.first_error);
    return 1;
  }
  return 0;
}

}  // namespace

void AddProduceCommand(CLI::App& app, const GlobalOptions& options, Command& command) {
  auto produce = std::make_shared<ProduceOptions>();
  CLI::App* sub =
      app.add_subcommand("produce", "Publish one message per line of standard input");
  sub->add_option("--topic,-t", produce->topic, "Topic to publish to")->required();
  auto* key = sub->add_option("--key,-k", produce->key, "Key for every message");
  sub->add_option("--key-delimiter,-K", produce->key_delimiter,
                  "Split each line into key, delimiter, value (like kcat -K)")
      ->excludes(key);
  sub->add_option("--header,-H", produce->headers, "Header key=value (repeatable)");
  sub->add_option("--timeout", produce->timeout_seconds,
                  "Give up on a message after this many seconds of retries")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  sub->callback([&options, &command, produce] {
    command = [&options, produce] { return RunProduce(options, *produce); };
  });
}

}  // namespace ferry::cli
