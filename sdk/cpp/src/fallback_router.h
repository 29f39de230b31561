// FallbackRouter: which path (the Ferry nodes, or straight to the cluster)
// carries each message, and per-key order across a switch of paths.
#ifndef FERRY_CLIENT_SRC_FALLBACK_ROUTER_H_
#define FERRY_CLIENT_SRC_FALLBACK_ROUTER_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace ferry::client::internal {

enum class Path { kFerry, kDirect };

// Single-threaded, time passed in, no I/O: the fallback shell
// (FallbackPublisher) calls it from its router thread only.
//
// Health: new messages take the direct path once no node answered for
// `fallback_after` since the first failed probe, and the Ferry path again as
// soon as one answers.
//
// Order: each path keeps a key's order by itself (the publisher's one batch
// per key in flight; librdkafka's idempotent producer), so a key's message
// may join its key on the path the key's in-flight messages use, and
// otherwise waits until they all finished. A message is named by a token the
// caller chooses, increasing in publish order; unordered messages (empty key)
// never wait.
// Cost: O(1) per message, plus the released ones.
class FallbackRouter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit FallbackRouter(std::chrono::milliseconds fallback_after)
      : fallback_after_(fallback_after) {}

  void NodeAnswered() { unreachable_since_.reset(); }
  void NodeUnreachable(TimePoint now) {
    if (!unreachable_since_) unreachable_since_ = now;
  }
  // The path new messages want now.
  Path Current(TimePoint now) const {
    return unreachable_since_ && now - *unreachable_since_ >= fallback_after_
               ? Path::kDirect
               : Path::kFerry;
  }

  // The path to send the message on now, or nullopt: it waits, and a later
  // Finish of its key returns it.
  std::optional<Path> Admit(uint64_t token, const std::string& key, Path wanted);

  struct Released {
    Path path;
    std::vector<uint64_t> tokens;  // send in this order
  };
  // A message of `key` finished on its path. `resend`: it failed and is to go
  // again on `wanted`, ahead of the key's later waiting messages. Returns what
  // may go now, all on `wanted`, in token order.
  Released Finish(const std::string& key, std::optional<uint64_t> resend, Path wanted);

  // Keys with messages in flight or waiting (for tests and stats).
  std::size_t keys() const { return keys_.size(); }
  std::size_t waiting() const { return waiting_; }

 private:
  struct KeyState {
    Path path = Path::kFerry;
    int in_flight = 0;
    std::deque<uint64_t> waiting;
  };

  const std::chrono::milliseconds fallback_after_;
  std::optional<TimePoint> unreachable_since_;
  std::unordered_map<std::string, KeyState> keys_;
  std::size_t waiting_ = 0;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_FALLBACK_ROUTER_H_
