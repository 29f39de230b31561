#include "cli/produce_command.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cli/line_blocks.h"
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
  // The callback of a PublishMany call of `count` messages.
  client::Publisher::ManyCallback Track(std::size_t count) {
    {
      absl::MutexLock lock(&mu_);
      published_ += static_cast<int64_t>(count);
    }
    return [this](client::PublishManyResult result) { Add(result); };
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
  void Add(const client::PublishManyResult& result) {
    absl::MutexLock lock(&mu_);
    sent_ += static_cast<int64_t>(result.messages.size() - result.failed);
    if (result.failed == 0) return;
    if (failed_ == 0) {
      for (const client::MessageOutcome& outcome : result.messages) {
        if (outcome.ok()) continue;
        first_error_ =
            fmt::format("code {}: {}", outcome.code, result.errors[outcome.error]);
        break;
      }
    }
    failed_ += static_cast<int64_t>(result.failed);
  }

  mutable absl::Mutex mu_;
  int64_t published_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
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
  // One PublishMany call per block of lines: the SDK encodes the views into
  // requests at the call (keeping each key's order, also across calls),
  // pipelines them and bounds what is in flight (the call blocks at
  // MaxOutstandingBytes); results are counted as the calls complete.
  Summary summary;
  std::vector<client::MessageView> views;
  const int read_error = ForEachBlockOfLines(
      STDIN_FILENO, std::size_t{1} << 20, [&](std::span<const std::string_view> lines) {
        views.clear();
        for (std::string_view line : lines) {
          client::MessageView& view = views.emplace_back();
          view.headers = headers;
          view.value = line;
          if (options.key_delimiter.empty()) {
            view.key = options.key;
          } else if (size_t at = line.find(options.key_delimiter);
                     at != std::string_view::npos) {
            view.key = line.substr(0, at);
            view.value = line.substr(at + options.key_delimiter.size());
          }
        }
        publisher->PublishMany(options.topic, views, summary.Track(views.size()));
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
  }
  if (read_error != 0) {
    std::cerr << "ferry: produce: reading standard input failed ("
              << std::strerror(read_error)
              << "); only the complete lines read before were published\n";
  }
  if (summary.failed() > 0 || read_error != 0) return 1;
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
