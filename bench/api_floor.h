// What the C++ SDK's per-message Publish API forces per message, without the
// SDK: the floor under `Publish`'s CPU (bench/RESULTS.md, branch sdkpub2).
//
// Three threads play the SDK's parts: the caller publishes, a sender thread
// resolves, a waiter gets the futures in publish order (as publish_bench's
// and publish_profile's collectors do). The caller hands its messages'
// completions to the sender once per `batch` (one lock per batch, less than
// the SDK's one per message), and the sender resolves each with a
// PublishResult carrying a 32-digit id (a heap string: the type says
// std::string) and a cluster name. No wire, no ordering, no gRPC.
//
// - result: only the PublishResult, built and dropped on the sender;
// - future: a std::promise made on the caller, set_value on the sender, get()
//   on the waiter (what `std::future<PublishResult> Publish(...)` forces);
// - callback: a std::function made on the caller (publish_bench's capture),
//   run with the result on the sender and dropped there (the callback form).
//
// CPU is the sum of the three threads' own CPU time (CLOCK_THREAD_CPUTIME_ID),
// so other threads of the process do not count.
#ifndef FERRY_BENCH_API_FLOOR_H_
#define FERRY_BENCH_API_FLOOR_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/thread_cpu.h"
#include "ferry/client/publisher.h"

namespace ferry::bench {

struct FloorResult {
  double result_us = 0;    // CPU µs per message: the result alone
  double future_us = 0;    // ... with a promise/future per message
  double callback_us = 0;  // ... with a std::function per message
};

namespace floor_internal {

// A batch of T handed from one thread to another under one lock.
template <typename T>
class Handoff {
 public:
  void Put(std::vector<T> batch) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      batches_.push_back(std::move(batch));
    }
    ready_.notify_one();
  }
  // An empty batch: the end.
  std::vector<T> Take() {
    std::unique_lock<std::mutex> lock(mu_);
    ready_.wait(lock, [&] { return !batches_.empty(); });
    std::vector<T> batch = std::move(batches_.front());
    batches_.pop_front();
    return batch;
  }

 private:
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::vector<T>> batches_;
};

inline client::PublishResult MakeResult(int64_t i) {
  client::PublishResult result;
  result.cluster = "local";
  result.partition = static_cast<int32_t>(i % 12);
  result.offset = i;
  result.id.assign(32, static_cast<char>('0' + i % 10));
  return result;
}

// Runs `n` messages: `publish(i)` on the caller makes the completion,
// `resolve(completion, i)` on the sender completes it, `wait(i)` (if any) on
// a third thread waits for message i. Returns the three threads' CPU ns.
template <typename T, typename Publish, typename Resolve, typename Wait>
int64_t Run(int64_t n, int batch, Publish publish, Resolve resolve, Wait* wait) {
  Handoff<T> handoff;
  std::atomic<int64_t> cpu_ns{0};
  std::atomic<int64_t> published{0};
  std::thread sender([&] {
    const int64_t start = ThreadCpuNs();
    int64_t i = 0;
    for (std::vector<T> items = handoff.Take(); !items.empty(); items = handoff.Take()) {
      for (T& item : items) resolve(item, i++);
    }
    cpu_ns += ThreadCpuNs() - start;
  });
  std::thread waiter;
  if (wait != nullptr) {
    waiter = std::thread([&] {
      const int64_t start = ThreadCpuNs();
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t seen = published.load(); seen <= i; seen = published.load()) {
          published.wait(seen);
        }
        (*wait)(i);
      }
      cpu_ns += ThreadCpuNs() - start;
    });
  }
  const int64_t start = ThreadCpuNs();
  std::vector<T> items;
  items.reserve(batch);
  for (int64_t i = 0; i < n; ++i) {
    items.push_back(publish(i));
    published.store(i + 1, std::memory_order_release);
    published.notify_one();
    if (static_cast<int>(items.size()) == batch || i + 1 == n) {
      handoff.Put(std::move(items));
      items = std::vector<T>();
      items.reserve(batch);
    }
  }
  handoff.Put(std::vector<T>());
  cpu_ns += ThreadCpuNs() - start;
  sender.join();
  if (waiter.joinable()) waiter.join();
  return cpu_ns.load();
}

}  // namespace floor_internal

// `n` messages per form, handed over `batch` at a time.
inline FloorResult MeasureApiFloor(int64_t n, int batch) {
  using floor_internal::MakeResult;
  using floor_internal::Run;
  FloorResult floor;
  const double per = 1e3 * static_cast<double>(n);  // ns → µs per message

  {
    // The result alone; the caller hands over only its index.
    std::function<void(int64_t)>* none = nullptr;
    const int64_t ns = Run<int64_t>(
        n, batch, [](int64_t i) { return i; },
        [](int64_t, int64_t i) {
          client::PublishResult result = MakeResult(i);
          asm volatile("" : : "r"(&result) : "memory");
        },
        none);
    floor.result_us = static_cast<double>(ns) / per;
  }
  {
    std::vector<std::future<client::PublishResult>> futures(n);
    int64_t failed = 0;
    std::function<void(int64_t)> wait = [&](int64_t i) {
      if (!futures[i].get().ok()) ++failed;
      futures[i] = {};  // the shared state is freed here, as a waiter drops it
    };
    const int64_t ns = Run<std::promise<client::PublishResult>>(
        n, batch,
        [&](int64_t i) {
          std::promise<client::PublishResult> promise;
          futures[i] = promise.get_future();
          return promise;
        },
        [](std::promise<client::PublishResult>& promise, int64_t i) {
          promise.set_value(MakeResult(i));
          promise = {};
        },
        &wait);
    floor.future_us = static_cast<double>(ns) / per;
    if (failed != 0) std::abort();
  }
  {
    // publish_bench's callback captures a few references and its index.
    std::atomic<int64_t> done{0};
    std::vector<int64_t> stamp(n);
    using Callback = std::function<void(client::PublishResult)>;
    std::function<void(int64_t)>* none = nullptr;
    const int64_t ns = Run<Callback>(
        n, batch,
        [&](int64_t i) -> Callback {
          return [&done, &stamp, i](client::PublishResult r) {
            if (r.ok()) stamp[i] = r.offset;
            done.fetch_add(1, std::memory_order_acq_rel);
          };
        },
        [](Callback& callback, int64_t i) {
          callback(MakeResult(i));
          callback = nullptr;
        },
        none);
    floor.callback_us = static_cast<double>(ns) / per;
    if (done.load() != n) std::abort();
  }
  return floor;
}

}  // namespace ferry::bench

#endif  // FERRY_BENCH_API_FLOOR_H_
