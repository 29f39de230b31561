#include "testing/steady_traffic.h"

#include <chrono>
#include <iostream>

#include "absl/strings/str_cat.h"

namespace ferry::testing {

SteadyTraffic::SteadyTraffic(const std::vector<std::string>& nodes,
                             const std::string& topic, absl::Duration interval, int keys)
    : topic_(topic), interval_(interval), keys_(keys) {
  std::string error;
  publisher_ = client::Publisher::Builder()
                   .Endpoints(nodes)
                   // Longer than a failover takes: a batch waiting on the dead
                   // cluster is answered by the node, not abandoned.
                   .RequestTimeout(std::chrono::seconds(15))
                   .DeliveryTimeout(std::chrono::seconds(60))
                   .Build(&error);
  if (publisher_ == nullptr) {
    std::cerr << "SteadyTraffic: " << error << "\n";
    std::abort();
  }
  sender_ = std::thread([this] { Send(); });
  collector_ = std::thread([this] { Collect(); });
}

SteadyTraffic::~SteadyTraffic() { Finish(); }

const std::vector<SentMessage>& SteadyTraffic::Finish() {
  if (!finished_) {
    finished_ = true;
    stop_ = true;
    sender_.join();
    publisher_->Flush(std::chrono::seconds(60));
    collecting_ = false;
    collector_.join();
  }
  return sent_;
}

std::optional<absl::Time> SteadyTraffic::FirstAckOn(const std::string& cluster,
                                                    absl::Time since,
                                                    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    {
      absl::MutexLock lock(&mu_);
      std::optional<absl::Time> first;
      for (const SentMessage& s : sent_) {
        if (s.done && s.result.ok() && s.result.cluster == cluster &&
            s.completed >= since && (!first || s.completed < *first)) {
          first = s.completed;
        }
      }
      if (first) return first;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return std::nullopt;
}

void SteadyTraffic::Send() {
  int n = 0;
  while (!stop_) {
    const int key = n % keys_;
    client::Message m;
    m.key = absl::StrCat("key-", key);
    m.value = absl::StrCat(key, ":", n / keys_);
    const absl::Time published = absl::Now();
    auto future = publisher_->Publish(topic_, std::move(m));
    {
      absl::MutexLock lock(&mu_);
      sent_.push_back({.key = key,
                       .seq = n / keys_,
                       .future = std::move(future),
                       .published = published});
    }
    ++n;
    absl::SleepFor(interval_);
  }
}

void SteadyTraffic::Collect() {
  size_t first_pending = 0;
  while (true) {
    const bool last_round = !collecting_;
    {
      absl::MutexLock lock(&mu_);
      for (size_t i = first_pending; i < sent_.size(); ++i) {
        SentMessage& s = sent_[i];
        if (s.done ||
            s.future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
          continue;
        }
        s.result = s.future.get();
        s.completed = absl::Now();
        s.done = true;
      }
      while (first_pending < sent_.size() && sent_[first_pending].done) ++first_pending;
    }
    if (last_round) return;
    absl::SleepFor(absl::Milliseconds(2));
  }
}

}  // namespace ferry::testing
