// consume_profile: a small driver for counting the C++ SDK's work per
// consumed message under `valgrind --tool=callgrind` or `perf stat`. It
// consumes a backlog that is already in a topic through a running ferryd,
// fresh group from the earliest offset, in one of four forms:
//   callback  the OnMessage handler reads the value and acks each message
//             (--ordering none, key or partition)
//   next      one thread takes messages one at a time (Next), reads each
//             value and acks it
//   view      one thread takes MessageBatches (NextBatch), reads each view's
//             value and acks it by index (Ack(i))
//   view-all  the same, one AckAll per batch
// First --warmup messages, then --messages counted: under callgrind the
// counters are zeroed when the warm-up is done and dumped when the last
// counted message was handled, so the dump holds those messages (and what
// the SDK's threads did meanwhile). It prints the window's CPU time of the
// process per message, or fails when the backlog does not hold warm-up +
// counted messages within --deadline.
//
//   consume_profile --ferryd 127.0.0.1:7400 --topic backlog --form view --messages 20000

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "bench/callgrind_window.h"
#include "bench/profile_workload.h"
#include "ferry/client/subscriber.h"

namespace {

namespace client = ferry::client;

// The process's CPU time, all threads (CLOCK_PROCESS_CPUTIME_ID on Linux).
double CpuSeconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

// Counts handled messages; opens the window after the warm-up (at once
// without one) and closes it after the last counted message. Called by one
// thread at a time per message but from any handler thread.
class Window {
 public:
  Window(int64_t warmup, int64_t messages) : warmup_(warmup), total_(warmup + messages) {
    if (warmup_ == 0) Open();
  }

  void Seen(const std::string_view value) {
    sink_.fetch_add(value.empty() ? 0 : static_cast<unsigned char>(value[0]),
                    std::memory_order_relaxed);
    const int64_t n = count_.fetch_add(1) + 1;
    if (n == warmup_) Open();
    if (n == total_) Close();
  }
  // False if the window did not close by `deadline`.
  bool WaitUntil(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return done_cv_.wait_until(lock, deadline, [this] { return done_.load(); });
  }
  bool done() const { return done_.load(); }
  int64_t seen() const { return count_.load(); }
  double cpu_seconds() const { return cpu_; }

 private:
  void Open() {
    cpu_start_ = CpuSeconds();
    CALLGRIND_ZERO_STATS;
    opened_.store(true, std::memory_order_release);
  }
  void Close() {
    CALLGRIND_DUMP_STATS;
    const double end = CpuSeconds();
    // Another handler thread may still be opening the window.
    while (!opened_.load(std::memory_order_acquire)) std::this_thread::yield();
    cpu_ = end - cpu_start_;
    std::lock_guard<std::mutex> lock(mu_);
    done_.store(true);
    done_cv_.notify_all();
  }

  const int64_t warmup_;
  const int64_t total_;
  std::atomic<int64_t> count_{0};
  std::atomic<uint64_t> sink_{0};
  std::atomic<bool> opened_{false};
  double cpu_start_ = 0;  // written before opened_, read after it
  std::atomic<bool> done_{false};
  double cpu_ = 0;  // written before done_, read after it
  std::mutex mu_;
  std::condition_variable done_cv_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string ferryd, topic, form = "callback", ordering = "none";
  ferry::bench::ProfileRun run;
  int deadline_s = 300;
  CLI::App app{"C++ SDK consume driver for callgrind/perf stat"};
  app.add_option("--ferryd", ferryd, "host:port of a running ferryd")->required();
  app.add_option("--topic", topic, "topic holding at least warmup + messages")
      ->required();
  app.add_option("--form", form, "callback, next, view or view-all")
      ->check(CLI::IsMember({"callback", "next", "view", "view-all"}));
  app.add_option("--ordering", ordering, "callback form: none, key or partition")
      ->check(CLI::IsMember({"none", "key", "partition"}));
  run.AddCountOptions(app);
  app.add_option("--deadline", deadline_s, "seconds to consume warmup + messages in")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  ferry::bench::NoteCallgrindWindow();
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(deadline_s);

  Window window(run.warmup, run.messages);
  client::Subscriber::Builder builder;
  builder.Endpoints({ferryd})
      .Group(fmt::format("consume-profile-{}", std::random_device{}()))
      .Topics({topic})
      .ClientId("consume-profile")
      .StartAt(client::StartPosition::Earliest());
  if (form == "callback") {
    const std::map<std::string, client::Ordering> orderings = {
        {"none", client::Ordering::kNone},
        {"key", client::Ordering::kKey},
        {"partition", client::Ordering::kPartition}};
    builder.Ordering(orderings.at(ordering));
    builder.OnMessage(
        [&window](const client::ReceivedMessage& message, client::AckHandle handle) {
          window.Seen(message.value);
          handle.Ack();
        });
  }
  std::string error;
  std::unique_ptr<client::Subscriber> subscriber = builder.Build(&error);
  if (subscriber == nullptr) {
    fmt::print(stderr, "subscriber: {}\n", error);
    return 1;
  }
  if (form == "callback") {
    window.WaitUntil(deadline);
  } else {
    const bool one_at_a_time = form == "next";
    const bool ack_all = form == "view-all";
    constexpr std::chrono::milliseconds kPoll(100);
    while (!window.done() && std::chrono::steady_clock::now() < deadline) {
      if (one_at_a_time) {
        std::optional<client::PulledMessage> message = subscriber->Next(kPoll);
        if (!message.has_value()) continue;
        window.Seen(message->message().value);
        message->Ack();
        continue;
      }
      std::optional<client::MessageBatch> batch = subscriber->NextBatch(kPoll);
      if (!batch.has_value()) continue;
      for (std::size_t i = 0; i < batch->size(); ++i) {
        window.Seen((*batch)[i].value);
        if (!ack_all) batch->Ack(i);
      }
      if (ack_all) batch->AckAll();
    }
  }
  if (!window.done()) {
    fmt::print(stderr,
               "only {} of {} messages within {} s: is the backlog long enough?\n",
               window.seen(), run.warmup + run.messages, deadline_s);
    subscriber->Close(std::chrono::seconds(10));
    return 1;
  }
  std::string name = form == "callback" ? fmt::format("callback/{}", ordering) : form;
  fmt::print("{} {:.3f} us/msg over {} messages\n", name,
             window.cpu_seconds() / static_cast<double>(run.messages) * 1e6,
             run.messages);
  subscriber->Close(std::chrono::seconds(10));
  return 0;
}
