#include "cli/produce_command.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
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

// Results arrive on the publisher's thread while lines are still read.
class Summary {
 public:
  client::Publisher::Callback Track() {
    {
      absl::MutexLock lock(&mu_);
      ++published_;
    }
    return [this](client::PublishResult result) { Add(result); };
  }

  // Waits until every tracked message has its result.
  void WaitForAll() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](Summary* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
          return s->sent_ + s->failed_ == s->published_;
        },
        this));
  }

  int64_t sent() const {
    absl::MutexLock lock(&mu_);
    return sent_;
  }
  int64_t failed() const {
    absl::MutexLock lock(&mu_);
    return failed_;
  }
  std::string first_error() const {
    absl::MutexLock lock(&mu_);
    return first_error_;
  }

 private:
  void Add(const client::PublishResult& result) {
    absl::MutexLock lock(&mu_);
    if (result.ok()) {
      ++sent_;
    } else if (failed_++ == 0) {
      first_error_ = fmt::format("code {}: {}", result.code, result.error);
    }
  }

  mutable absl::Mutex mu_;
  int64_t published_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

// Calls `line` for each line of `in` (without its '\n'; a last line without
// one counts too). Reads in large blocks: getline on a stream synchronized
// with stdio reads a character at a time.
template <typename OnLine>
void ForEachLine(std::FILE* in, OnLine line) {
  std::vector<char> block(std::size_t{1} << 20);
  std::string partial;
  for (;;) {
    const std::size_t read = std::fread(block.data(), 1, block.size(), in);
    if (read == 0) break;
    std::string_view data(block.data(), read);
    for (std::size_t end = data.find('\n'); end != std::string_view::npos;
         end = data.find('\n')) {
      if (partial.empty()) {
        line(data.substr(0, end));
      } else {
        partial.append(data.substr(0, end));
        line(std::string_view(partial));
        partial.clear();
      }
      data.remove_prefix(end + 1);
    }
    partial.append(data);
  }
  if (!partial.empty()) line(std::string_view(partial));
}

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
                       // Half a node's default publish.max_inflight_bytes.
                       // With the SDK's default (equal to it, but not
                       // counting ids, which the node does) a fast input
                       // filled the node: ~70 batches per 200k lines came
                       // back RESOURCE_EXHAUSTED and sat in retry backoff.
                       .MaxOutstandingBytes(std::size_t{32} << 20)
                       .Build(&error);
  if (publisher == nullptr) {
    std::cerr << "ferry: produce: " << error << "\n";
    return 2;
  }

  const auto start = std::chrono::steady_clock::now();
  // The SDK batches and pipelines the messages and bounds what is in flight
  // (Publish blocks at MaxOutstandingBytes); results are counted as they come.
  Summary summary;
  ForEachLine(stdin, [&](std::string_view line) {
    client::Message message;
    message.headers = headers;
    if (!options.key_delimiter.empty()) {
      size_t at = line.find(options.key_delimiter);
      if (at == std::string_view::npos) {
        message.value = line;
      } else {
        message.key = line.substr(0, at);
        message.value = line.substr(at + options.key_delimiter.size());
      }
    } else {
      message.key = options.key;
      message.value = line;
    }
    publisher->Publish(options.topic, std::move(message), summary.Track());
  });
  summary.WaitForAll();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << fmt::format("sent {}, failed {} in {:.2f}s\n", summary.sent(),
                           summary.failed(), seconds);
  if (summary.failed() > 0) {
    std::cerr << fmt::format("ferry: produce: {} of {} messages failed; first: {}\n",
                             summary.failed(), summary.sent() + summary.failed(),
                             summary.first_error());
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
