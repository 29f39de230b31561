// The client configuration the Ferry nodes hand out (Admin.GetClientConfig):
// the write cluster of each topic for fallback, and the settings the
// operator pushes. ClientConfigFetcher asks for it (shared by NodeProbe, the
// fallback's probe, and SettingsFollower, every other publisher's).
#ifndef FERRY_CLIENT_SRC_CLIENT_CONFIG_H_
#define FERRY_CLIENT_SRC_CLIENT_CONFIG_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "direct_publisher.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "options.h"

namespace ferry::client::internal {

struct TopicTarget {
  DirectTarget target;
  bool fallback = false;  // the route allows it and the cluster is Kafka
  int32_t partitions = 0;
};

struct ClientConfigSnapshot {
  std::map<std::string, TopicTarget> topics;
  PushedSettings settings;
};

// Converts a node's answer.
ClientConfigSnapshot FromProto(const ferry::v1::GetClientConfigResponse& response);

// The seam to the nodes' Admin service, so tests substitute a fake.
class ConfigSource {
 public:
  using Done = std::function<void(grpc::Status, ferry::v1::GetClientConfigResponse)>;
  virtual ~ConfigSource() = default;
  virtual std::size_t endpoints() const = 0;
  // Asks node `endpoint`. `done` runs exactly once, on a gRPC thread or
  // inline before this returns: callers hold no lock of theirs across it.
  virtual void GetClientConfig(std::size_t endpoint,
                               const ferry::v1::GetClientConfigRequest& request,
                               std::chrono::milliseconds timeout, Done done) = 0;
};

// Admin stubs on the given channels (gRPC's callback API).
std::unique_ptr<ConfigSource> GrpcConfigSource(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels);

// Fetches the configuration and remembers the refresh interval the nodes
// name. Not thread-safe: one thread (a probe or follower thread) owns it.
class ClientConfigFetcher {
 public:
  explicit ClientConfigFetcher(std::unique_ptr<ConfigSource> source)
      : source_(std::move(source)) {}

  std::size_t endpoints() const { return source_->endpoints(); }

  // Asks node `endpoint` and waits for its answer (at most 5 s). Holds no
  // lock while asking. Logs a node's failure (UNIMPLEMENTED: an older
  // ferryd; PERMISSION_DENIED, ...) once until a fetch succeeds; "no
  // answer" (UNAVAILABLE, DEADLINE_EXCEEDED: NoAnswer) is not logged.
  absl::StatusOr<ClientConfigSnapshot> Fetch(std::size_t endpoint,
                                             ferry::v1::GetClientConfigRequest request);

  // When to ask again after an answer: what the last answer named (at least
  // `min_refresh`), else 30 s.
  std::chrono::milliseconds refresh() const { return refresh_; }
  void set_min_refresh(std::chrono::milliseconds min) { min_refresh_ = min; }

 private:
  std::unique_ptr<ConfigSource> source_;
  std::chrono::milliseconds refresh_{30'000};
  std::chrono::milliseconds min_refresh_{1'000};
  absl::Status last_logged_;
};

// Only these say that no node answered; any other status is a node's answer.
bool NoAnswer(const absl::Status& status);

class NodeProbe {
 public:
  struct Listener {
    virtual ~Listener() = default;
    // After each probe round (and its fetch): did any node answer?
    virtual void OnProbe(bool answered) = 0;
    // A configuration a node handed out.
    virtual void OnConfig(ClientConfigSnapshot config) = 0;
    // Messages published directly since the last call, reported to the node
    // with the next configuration request.
    virtual int64_t TakeFallbackCount() = 0;
    // A failed report's count is handed back.
    virtual void ReturnFallbackCount(int64_t count) = 0;
  };

  // Probes every `interval` (each node's answer bounded by `interval`, at
  // least 200 ms); fetches the configuration at start, every refresh interval
  // the node names, and when a node answers again after none did. `listener`
  // must outlive this; it is called on the probe thread.
  NodeProbe(const std::vector<std::string>& endpoints,
            const std::shared_ptr<grpc::ChannelCredentials>& credentials,
            std::string client_id, std::chrono::milliseconds interval,
            Listener* listener);
  ~NodeProbe();

  // Topics to ask about; a new one is fetched at the next round.
  void WantTopic(const std::string& topic);

 private:
  void Run();
  // The index of a node that answered, or -1.
  int ProbeRound();
  void Fetch(std::size_t endpoint);

  std::vector<std::unique_ptr<ferry::v1::Admin::Stub>> stubs_;
  std::unique_ptr<ClientConfigFetcher> fetcher_;
  const std::string client_id_;
  const std::chrono::milliseconds interval_;
  Listener* const listener_;

  absl::Mutex mu_;
  std::set<std::string> topics_ ABSL_GUARDED_BY(mu_);
  bool topics_changed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Probe thread only.
  bool reachable_ = true;
  std::chrono::steady_clock::time_point next_fetch_{};

  std::thread thread_;  // Last: started once everything above exists.
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_CLIENT_CONFIG_H_
