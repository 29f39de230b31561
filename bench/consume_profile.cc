// consume_profile: a small driver for counting the C++ SDK's work per
// consumed message under `valgrind --tool=callgrind` or `perf stat`. It
// consumes a backlog that is already in a topic through a running ferryd,
// fresh group from the earliest offset, in one of three forms:
//   callback  the OnMessage handler reads the value and acks each message
//   view      one thread takes MessageBatches (NextBatch), reads each view's
//             value and acks it by index (Ack(i))
//   view-all  the same, one AckAll per batch
// First --warmup messages, then --messages counted: under callgrind the
// counters are zeroed when the warm-up is done and dumped when the last
// counted message was handled, so the dump holds those messages (and what
// the SDK's threads did meanwhile). It prints the window's CPU time of the
// process per message.
//
//   consume_profile --ferryd 127.0.0.1:7400 --topic backlog --form view --messages 20000

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "bench/profile_workload.h"
#include "ferry/client/subscriber.h"

namespace {

namespace client = ferry::client;

// The process's CPU time, all threads (CLOCK_PROCESS_CPUTIME_ID on Linux).
double CpuSeconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

// Counts handled messages; opens the window after the warm-up and closes it
// after the last counted message. Called by one thread at a time per message
// but from any handler thread.
class Window {
 public:
  Window(int64_t warmup, int64_t messages) : warmup_(warmup), total_(warmup + messages) {}

  void Seen(const std::string_view value) {
    sink_.fetch_add(value.empty() ? 0 : static_cast<unsigned char>(value[0]),
                    std::memory_order_relaxed);
    const int64_t n = count_.fetch_add(1) + 1;
    if (n == warmup_) {
      cpu_start_ = CpuSeconds();
      CALLGRIND_ZERO_STATS;
    }
    if (n == total_) {
      CALLGRIND_DUMP_STATS;
      cpu_ = CpuSeconds() - cpu_start_;
      done_.store(true);
      done_.notify_all();
    }
  }
  void Wait() {
    while (!done_.load()) done_.wait(false);
  }
  bool done() const { return done_.load(); }
  double cpu_seconds() const { return cpu_; }

 private:
  const int64_t warmup_;
  const int64_t total_;
  std::atomic<int64_t> count_{0};
  std::atomic<uint64_t> sink_{0};
  std::atomic<bool> done_{false};
  double cpu_start_ = 0;
  double cpu_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string ferryd, topic, form = "callback";
  int64_t warmup = 3000, messages = 20000;
  CLI::App app{"C++ SDK consume driver for callgrind/perf stat"};
  app.add_option("--ferryd", ferryd, "host:port of a running ferryd")->required();
  app.add_option("--topic", topic, "topic holding at least warmup + messages")
      ->required();
  app.add_option("--form", form, "callback, view or view-all")
      ->check(CLI::IsMember({"callback", "view", "view-all"}));
  app.add_option("--warmup", warmup, "messages consumed before counting");
  app.add_option("--messages", messages, "messages counted");
  CLI11_PARSE(app, argc, argv);

  Window window(warmup, messages);
  client::Subscriber::Builder builder;
  builder.Endpoints({ferryd})
      .Group(fmt::format("consume-profile-{}", std::random_device{}()))
      .Topics({topic})
      .ClientId("consume-profile")
      .StartAt(client::StartPosition::Earliest());
  if (form == "callback") {
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
    window.Wait();
  } else {
    const bool ack_all = form == "view-all";
    while (!window.done()) {
      std::optional<client::MessageBatch> batch =
          subscriber->NextBatch(std::chrono::milliseconds(100));
      if (!batch.has_value()) continue;
      for (std::size_t i = 0; i < batch->size(); ++i) {
        window.Seen((*batch)[i].value);
        if (!ack_all) batch->Ack(i);
      }
      if (ack_all) batch->AckAll();
    }
  }
  fmt::print("{} {:.3f} us/msg over {} messages\n", form,
             window.cpu_seconds() / static_cast<double>(messages) * 1e6, messages);
  subscriber->Close(std::chrono::seconds(10));
  return 0;
}
