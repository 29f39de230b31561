// NodeProbe: asks the Ferry nodes whether any answers, and fetches the client
// configuration they hand out (Admin.GetClientConfig): the write cluster of
// each topic for fallback, and the settings the operator pushes.
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
#include "absl/synchronization/mutex.h"
#include "direct_publisher.h"
#include "ferry/v1/admin.grpc.pb.h"

namespace ferry::client::internal {

// Settings the operator pushes; unset: the SDK keeps its own.
struct PushedSettings {
  std::optional<std::chrono::milliseconds> linger;
  std::optional<int> max_batch_messages;
  std::optional<std::size_t> max_batch_bytes;
  std::optional<std::chrono::milliseconds> request_timeout;
  std::optional<std::chrono::milliseconds> delivery_timeout;
  bool operator==(const PushedSettings&) const = default;
};

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
  const std::string client_id_;
  const std::chrono::milliseconds interval_;
  Listener* const listener_;

  absl::Mutex mu_;
  std::set<std::string> topics_ ABSL_GUARDED_BY(mu_);
  bool topics_changed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Probe thread only.
  bool reachable_ = true;
  bool unimplemented_logged_ = false;
  std::chrono::steady_clock::time_point next_fetch_{};
  std::chrono::milliseconds refresh_{30'000};

  std::thread thread_;  // Last: started once everything above exists.
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_CLIENT_CONFIG_H_
