#include "cli/consume_command.h"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <iostream>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "cli/message_format.h"
#include "ferry/client/subscriber.h"

namespace ferry::cli {
namespace {

// Most messages printed (and then acked) per write.
constexpr int64_t kMaxPrintBatch = 1000;

struct ConsumeOptions {
  std::string group;
  std::vector<std::string> topics;
  std::string from = "latest";
  int64_t count = 0;
  std::string ordering = "none";
  std::string format = "line";
  std::string filter;
};

std::optional<client::StartPosition> ParseFrom(const std::string& from) {
  if (from == "earliest") return client::StartPosition::Earliest();
  if (from == "latest") return client::StartPosition::Latest();
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, from, &time, &error)) return std::nullopt;
  return client::StartPosition::At(absl::ToChronoTime(time));
}

client::Ordering ParseOrdering(const std::string& ordering) {
  if (ordering == "key") return client::Ordering::kKey;
  if (ordering == "partition") return client::Ordering::kPartition;
  return client::Ordering::kNone;
}

// Writes every byte of `pieces` to `fd` (IOV_MAX at a time, resuming after
// partial writes and EINTR); false on an error.
bool WriteAll(int fd, std::vector<iovec>& pieces) {
  std::size_t next = 0;
  while (next < pieces.size()) {
    const int count =
        static_cast<int>(std::min<std::size_t>(pieces.size() - next, IOV_MAX));
    ssize_t written = writev(fd, &pieces[next], count);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    // Skip what was written; a piece written in part is cut to its rest.
    while (next < pieces.size() &&
           static_cast<std::size_t>(written) >= pieces[next].iov_len) {
      written -= static_cast<ssize_t>(pieces[next].iov_len);
      ++next;
    }
    if (written > 0) {
      pieces[next].iov_base = static_cast<char*>(pieces[next].iov_base) + written;
      pieces[next].iov_len -= static_cast<std::size_t>(written);
    }
  }
  return true;
}

// One line for stderr about a failed stream, in DescribeError's format.
std::string Describe(const GlobalOptions& options, const client::SubscriberError& error) {
  GlobalOptions node = options;
  node.server = error.endpoint;
  return DescribeError(
      node, "consume",
      grpc::Status(static_cast<grpc::StatusCode>(error.code), error.error));
}

// SIGINT and SIGTERM close the subscriber from a thread of their own:
// Close() is not async-signal-safe, so they are blocked everywhere (before
// gRPC starts its threads, which inherit the mask) and taken with sigwait.
class SignalCloser {
 public:
  SignalCloser() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  }

  // Signals close `subscriber` from now on.
  void Watch(client::Subscriber* subscriber) {
    thread_ = std::thread([this, subscriber] {
      for (;;) {
        int signal = 0;
        sigwait(&signals_, &signal);
        if (finished_) return;
        interrupted_ = true;
        subscriber->Close(std::chrono::seconds(10));
      }
    });
  }

  bool interrupted() const { return interrupted_; }

  ~SignalCloser() {
    if (thread_.joinable()) {
      finished_ = true;
      pthread_kill(thread_.native_handle(), SIGTERM);  // Wakes its sigwait.
      thread_.join();
    }
    pthread_sigmask(SIG_UNBLOCK, &signals_, nullptr);
  }

 private:
  sigset_t signals_;
  std::atomic<bool> finished_ = false;
  std::atomic<bool> interrupted_ = false;
  std::thread thread_;
};

int RunConsume(const GlobalOptions& global, const ConsumeOptions& options) {
  std::optional<client::StartPosition> start = ParseFrom(options.from);
  if (!start.has_value()) {
    std::cerr << fmt::format(
        "ferry: consume: --from \"{}\" is not earliest, latest or an RFC 3339 time "
        "(e.g. 2024-05-01T12:00:00Z)\n",
        options.from);
    return 2;
  }
  std::vector<std::string> endpoints =
      absl::StrSplit(global.server, ',', absl::SkipWhitespace());

  SignalCloser signals;
  std::string error;
  std::unique_ptr<client::Subscriber> subscriber =
      client::Subscriber::Builder()
          .Endpoints(endpoints)
          .Security(SdkSecurity(global))
          .Group(options.group)
          .Topics(options.topics)
          .Ordering(ParseOrdering(options.ordering))
          .Filter(options.filter)
          .StartAt(*start)
          .ClientId("ferry-cli")
          // Room for several print batches in flight, so the node keeps
          // sending while one is written out.
          .FlowControl(4 * kMaxPrintBatch, int64_t{64} << 20)
          .OnError([&global](const client::SubscriberError& error) {
            if (!error.fatal) std::cerr << Describe(global, error) << " (retrying)\n";
          })
          .Build(&error);
  if (subscriber == nullptr) {
    std::cerr << "ferry: consume: " << error << "\n";
    return 2;
  }
  signals.Watch(subscriber.get());

  const bool json = options.format == "json";
  int64_t printed = 0;
  bool output_failed = false;
  // What one write prints: whole received batches, the last one perhaps in
  // part (--count); the views point into the batches' bytes, so they are
  // written without a copy and acked once written.
  std::vector<client::MessageBatch> batches;
  // The lines of a write: in line format the values themselves and a
  // newline each, written with writev (no copy into a buffer); in JSON
  // format pieces of `text`.
  std::vector<iovec> pieces;
  std::string text;
  static constexpr char kNewline[] = "\n";
  while (options.count == 0 || printed < options.count) {
    std::optional<client::MessageBatch> first =
        subscriber->NextBatch(std::chrono::seconds(1));
    if (!first.has_value()) {
      if (signals.interrupted() || subscriber->Failure().has_value()) break;
      continue;
    }
    // Whatever else has arrived joins it, so that a backlog costs one write
    // and flush per kMaxPrintBatch messages instead of per response.
    const int64_t room = options.count == 0
                             ? kMaxPrintBatch
                             : std::min<int64_t>(kMaxPrintBatch, options.count - printed);
    int64_t taken = static_cast<int64_t>(first->size());
    batches.push_back(*std::move(first));
    while (taken < room) {
      std::optional<client::MessageBatch> more =
          subscriber->NextBatch(std::chrono::milliseconds(0));
      if (!more.has_value()) break;
      taken += static_cast<int64_t>(more->size());
      batches.push_back(*std::move(more));
    }
    // Past --count: the rest of the last batch is not printed (it is nacked
    // with its batch, for the group's next reader).
    const int64_t printing = std::min(taken, room);
    int64_t left = printing;
    for (const client::MessageBatch& batch : batches) {
      for (std::size_t i = 0; i < batch.size() && left > 0; ++i, --left) {
        const client::ReceivedView& m = batch[i];
        if (json) {
          text += FormatJson(m.Copy());
          text += '\n';
        } else {
          pieces.push_back({const_cast<char*>(m.value.data()), m.value.size()});
          pieces.push_back({const_cast<char*>(kNewline), 1});
        }
      }
    }
    if (json) pieces.push_back({text.data(), text.size()});
    // Written before acked (no buffer of ours in between): nothing acked is
    // lost in a buffer.
    if (!WriteAll(STDOUT_FILENO, pieces)) {
      // Not acked: the group gets them again.
      output_failed = true;
      break;
    }
    left = printing;
    for (client::MessageBatch& batch : batches) {
      if (static_cast<int64_t>(batch.size()) <= left) {
        left -= static_cast<int64_t>(batch.size());
        batch.AckAll();
        continue;
      }
      for (std::size_t i = 0; left > 0; ++i, --left) batch.Ack(i);
    }
    printed += printing;
    batches.clear();
    pieces.clear();
    text.clear();
  }
  batches.clear();  // Unsettled messages are nacked: redelivered at once.
  subscriber->Close(std::chrono::seconds(10));
  if (output_failed) {
    std::cerr << "ferry: consume: writing to standard output failed; the last "
                 "messages were not acknowledged\n";
    return 1;
  }
  if (std::optional<client::SubscriberError> failure = subscriber->Failure()) {
    std::cerr << Describe(global, *failure) << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

void AddConsumeCommand(CLI::App& app, const GlobalOptions& options, Command& command) {
  auto consume = std::make_shared<ConsumeOptions>();
  CLI::App* sub = app.add_subcommand(
      "consume", "Print a consumer group's messages and ack them (at least once)");
  sub->add_option("--group,-g", consume->group, "Consumer group")->required();
  sub->add_option("--topic,-t", consume->topics, "Topic (repeatable)")->required();
  sub->add_option("--from", consume->from,
                  "Where a group without committed offsets starts: earliest, latest "
                  "or an RFC 3339 time")
      ->capture_default_str();
  sub->add_option("--count,-c", consume->count, "Exit after this many messages (0: run)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--ordering", consume->ordering, "none, key or partition")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "key", "partition"}));
  sub->add_option("--filter", consume->filter,
                  "Only messages matching this filter cross the wire, e.g. "
                  "\"headers.type = 'order' AND json.total > 100\" (docs/filters.md)");
  sub->add_option("--format,-f", consume->format,
                  "line: the value; json: one object per line (bytes that are not "
                  "UTF-8 as key_base64/value_base64)")
      ->capture_default_str()
      ->check(CLI::IsMember({"line", "json"}));
  sub->callback([&options, &command, consume] {
    command = [&options, consume] { return RunConsume(options, *consume); };
  });
}

}  // namespace ferry::cli
