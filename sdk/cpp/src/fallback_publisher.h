// Publisher::WithFallback: a Publisher::Impl (the Ferry path) plus the fallback
// straight to the cluster when no node answers (Builder::Fallback).
#ifndef FERRY_CLIENT_SRC_FALLBACK_PUBLISHER_H_
#define FERRY_CLIENT_SRC_FALLBACK_PUBLISHER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "client_config.h"
#include "completion.h"
#include "convert.h"
#include "direct_publisher.h"
#include "fallback_router.h"
#include "ferry/client/publisher.h"
#include "many_part.h"
#include "options.h"
#include "publisher_impl.h"
#include "seq_window.h"

namespace ferry::client {

// Threading: Publish, Flush and Stats run on application threads and only
// queue work under mu_. One router thread owns the FallbackRouter, the
// messages and the direct producers: it sends each message on its path and
// completes its future. The Impl's sender thread (on_result), the direct
// producers' poll threads and the probe thread only queue their news under
// mu_. mu_ is never held while calling Impl::Publish (it may block when
// full), a direct producer, or set_value.
//
// Costs over a plain Impl: a copy of each message (kept to resend it
// directly if its node path fails during an outage) and one thread hop.
class Publisher::WithFallback final : private internal::NodeProbe::Listener {
 public:
  explicit WithFallback(internal::PublisherOptions options);
  ~WithFallback() override;

  void Publish(std::string topic, Message message, internal::Completion done);
  // Message by message through Publish (the per-message cost): the router
  // decides each message's path and order as for Publish.
  void PublishMany(std::string_view topic, std::span<const MessageView> messages,
                   internal::ManyCompletion done);
  bool Flush(std::chrono::milliseconds timeout);
  PublisherStats Stats() const;

 private:
  using Path = internal::Path;

  struct Entry {
    uint64_t seq = 0;
    std::string topic;
    std::string order_key;  // topic + '\0' + (ordering key or key); empty: none
    Message message;        // id set
    Path path = Path::kFerry;
    internal::Completion done;
  };
  struct Outcome {
    uint64_t token = 0;  // 0: a Ferry result, matched by its id
    PublishResult result;
  };

  // NodeProbe::Listener (probe thread).
  void OnProbe(bool answered) override;
  void OnConfig(internal::ClientConfigSnapshot config) override;
  int64_t TakeFallbackCount() override { return fallback_unreported_.exchange(0); }
  void ReturnFallbackCount(int64_t count) override { fallback_unreported_ += count; }

  // Router thread.
  void Run();
  // Handles what was queued (waiting up to 50 ms for news when `wait`);
  // returns true once closing.
  bool Step(bool wait);
  // Completes the message's future and forgets it.
  void Complete(uint64_t token, PublishResult result);
  Path Wanted(const std::string& topic, std::chrono::steady_clock::time_point now);
  void Send(uint64_t token, Path path);
  void SendReleased(const internal::FallbackRouter::Released& released);
  void OnOutcome(Outcome outcome, std::chrono::steady_clock::time_point now);
  internal::DirectPublisher* DirectFor(const internal::TopicTarget& target,
                                       std::string* error);
  // The node path's settings under `config` (may be null).
  internal::NodePathSettings SettingsUnder(
      const internal::ClientConfigSnapshot* config) const;

  internal::PublisherOptions options_;
  internal::IdGenerator ids_;

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Entry>> incoming_ ABSL_GUARDED_BY(mu_);
  std::vector<Outcome> outcomes_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> probes_ ABSL_GUARDED_BY(mu_);
  internal::SeqWindow seqs_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const internal::ClientConfigSnapshot> config_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::atomic<uint64_t> ferry_messages_{0};
  std::atomic<uint64_t> direct_messages_{0};
  std::atomic<int64_t> fallback_unreported_{0};
  std::atomic<bool> fallback_active_{false};

  // Router thread only.
  internal::FallbackRouter router_;
  uint64_t next_token_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Entry>> entries_;
  std::unordered_map<std::string, std::deque<uint64_t>> ferry_ids_;
  std::map<std::string, std::unique_ptr<internal::DirectPublisher>> direct_;
  std::size_t direct_in_flight_ = 0;
  std::set<std::string> warned_topics_;
  std::set<std::string> known_topics_;
  bool closing_ = false;
  // The configuration whose settings the node path (impl_) uses.
  std::shared_ptr<const internal::ClientConfigSnapshot> applied_config_;

  std::unique_ptr<Publisher::Impl> impl_;
  std::unique_ptr<internal::NodeProbe> probe_;
  std::thread router_thread_;
};

}  // namespace ferry::client

#endif  // FERRY_CLIENT_SRC_FALLBACK_PUBLISHER_H_
