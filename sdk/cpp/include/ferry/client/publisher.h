// ferry::client::Publisher: publishes messages to Ferry nodes over gRPC.
//
//   std::string error;
//   std::unique_ptr<ferry::client::Publisher> publisher =
//       ferry::client::Publisher::Builder()
//           .Endpoints({"ferry-1:7400", "ferry-2:7400"})
//           .Build(&error);
//   if (publisher == nullptr) { /* bad options: `error` says which */ }
//
//   ferry::client::Message message;
//   message.key = "customer-42";
//   message.value = R"({"total": 12})";
//   std::future<ferry::client::PublishResult> done =
//       publisher->Publish("orders", std::move(message));
//   ferry::client::PublishResult result = done.get();
//   if (!result.ok()) { /* result.code, result.error; nothing was acknowledged */ }
//
// Messages are batched per topic and sent to one of the endpoints (round-robin
// over the healthy ones). A message is answered OK only after the broker
// acknowledged it (Kafka: acks=all). Failed messages are retried when the node
// says a retry may succeed, on another node when one is unreachable, until
// DeliveryTimeout. Messages with the same ordering key (`ordering_key`, else
// `key`) keep their publish order across retries and failover: at most one
// batch per key is in flight at a time.
//
// This header is the SDK's whole public API: it exposes no gRPC, protobuf or
// abseil types, so applications need only this header and the library.
#ifndef FERRY_CLIENT_PUBLISHER_H_
#define FERRY_CLIENT_PUBLISHER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/client/header.h"
#include "ferry/client/security.h"

namespace ferry::client {

// Plain values. Every member has a default, so designated initializers
// ({.key = "k", .value = "v"}) compile cleanly with -Wextra.

struct Message {
  // Partitioning key (murmur2, as the Java Kafka client). Empty: no key.
  std::string key{};
  std::string value{};
  std::vector<Header> headers{};
  // When set, partitions and orders by this instead of `key` (the key is still
  // stored as the record key).
  std::string ordering_key{};
  // Stored by the node as header `ferry.id`, so consumers can drop the rare
  // duplicates a retry after a node failure causes. Empty: the publisher
  // generates a random 128-bit id (32 lowercase hex digits).
  std::string id{};
  // Record timestamp; the node's clock when absent.
  std::optional<std::chrono::system_clock::time_point> timestamp{};
};

// The final outcome of one message.
struct PublishResult {
  // gRPC status code number: 0 OK (the broker acknowledged the message),
  // 3 INVALID_ARGUMENT, 4 DEADLINE_EXCEEDED, 5 NOT_FOUND, 8 RESOURCE_EXHAUSTED,
  // 14 UNAVAILABLE, ...
  int code = 0;
  // Why the message failed; empty when ok().
  std::string error{};
  // True when publishing the same message again later may succeed (the
  // publisher already retried it until DeliveryTimeout).
  bool retryable = false;
  // Where the message was written; set when ok().
  std::string cluster{};
  int32_t partition = -1;
  int64_t offset = -1;
  // The message's id (given or generated), also when it failed.
  std::string id{};
  // True when the fallback producer wrote the message straight to the cluster
  // (no node answered); false when a Ferry node carried it.
  bool direct = false;
  // When failed: the endpoint (as given to Endpoints) of the node the failing
  // request went to, so an operator knows which node refused or failed it.
  // Empty when ok() and when no node was tried (refused before sending,
  // failed because of Close, written by the fallback producer).
  std::string endpoint{};

  bool ok() const { return code == 0; }
};

// One message of a PublishMany call, viewing the application's bytes: they
// need to stay valid only until PublishMany returns (it encodes them).
// Fields mean what they mean in Message.
struct MessageView {
  std::string_view key{};
  std::string_view value{};
  std::span<const Header> headers{};
  std::string_view ordering_key{};
  // Empty: the publisher generates a random 128-bit id (32 hex digits).
  std::string_view id{};
  std::optional<std::chrono::system_clock::time_point> timestamp{};
};

// The outcome of one message of a PublishMany call, without strings: its
// cluster and error are indexes into PublishManyResult's lists.
struct MessageOutcome {
  // As PublishResult::code: 0 OK (the broker acknowledged the message).
  int code = 0;
  bool retryable = false;
  // True when the fallback producer wrote it straight to the cluster.
  bool direct = false;
  // Set when ok: PublishManyResult::clusters[cluster], partition, offset.
  uint32_t cluster = 0;
  int32_t partition = -1;
  int64_t offset = -1;
  // Set when failed: PublishManyResult::errors[error] and
  // PublishManyResult::endpoints[endpoint] (as PublishResult::endpoint).
  uint32_t error = 0;
  uint32_t endpoint = 0;

  bool ok() const { return code == 0; }
};

// The final outcome of a PublishMany call: one MessageOutcome per message, in
// call order.
struct PublishManyResult {
  std::vector<MessageOutcome> messages{};
  // The distinct cluster names, error texts and endpoints the outcomes point
  // to (an empty endpoint: no node was tried).
  std::vector<std::string> clusters{};
  std::vector<std::string> errors{};
  std::vector<std::string> endpoints{};
  // Messages that failed (0: every message was acknowledged).
  std::size_t failed = 0;
  // The messages' ids (given or generated) back to back: message i's is
  // ids.substr(id_ends[i - 1], id_ends[i] - id_ends[i - 1]) (from 0 for i = 0).
  std::string ids{};
  std::vector<uint32_t> id_ends{};

  bool ok() const { return failed == 0; }
  std::size_t size() const { return messages.size(); }
  std::string_view id(std::size_t i) const {
    const uint32_t begin = i == 0 ? 0 : id_ends[i - 1];
    return std::string_view(ids).substr(begin, id_ends[i] - begin);
  }
  // Message i's outcome in the per-message form (allocates its strings).
  PublishResult Get(std::size_t i) const;
};

// Counters of a publisher's two paths (direct ones only with Fallback).
struct PublisherStats {
  // Messages acknowledged through a Ferry node / straight from the cluster.
  uint64_t ferry_messages = 0;
  uint64_t direct_messages = 0;
  // New messages go straight to the cluster now.
  bool fallback_active = false;
  // The client configuration was fetched from a node at least once.
  bool config_fetched = false;
  // Settings in effect for the node path (and new direct producers): the
  // application's, else the nodes' pushed ones (followed while running),
  // else the defaults.
  std::chrono::milliseconds linger{0};
  std::chrono::milliseconds delivery_timeout{0};
  int max_batch_messages = 0;
  // Batch calls sent to the nodes (retries included).
  uint64_t node_batches = 0;
};

// Thread-safe: Publish and Flush may be called from any number of threads.
//
// Threading: each publisher runs one background sender thread that forms
// batches, starts the gRPC calls (callback API, many calls in flight over one
// channel per endpoint), handles their answers, retries and completes the
// futures. gRPC's own threads only hand finished calls over to it. Publish
// itself returns an already completed future only when it fails at once
// (RESOURCE_EXHAUSTED without BlockWhenFull, INVALID_ARGUMENT, closed). When
// a future is complete, its message's bytes are already free again.
class Publisher {
 public:
  // Collects options; Build() checks them. Setters return *this for chaining.
  class Builder {
   public:
    Builder();
    ~Builder();
    // A moved-from Builder may only be destroyed or assigned to.
    Builder(Builder&&) noexcept;
    Builder& operator=(Builder&&) noexcept;
    Builder(const Builder&) = delete;
    Builder& operator=(const Builder&) = delete;

    // Required: the Ferry nodes, each "host:port" (any gRPC target such as
    // "dns:///ferry.internal:7400" or "unix:/run/ferry.sock" works too).
    Builder& Endpoints(std::vector<std::string> endpoints);
    // TLS, client certificate and token (security.h); default: plain text.
    Builder& Security(client::Security security);
    // A batch holds at most this many messages (>= 1; default 500) ...
    Builder& MaxBatchMessages(int messages);
    // ... and at most this many serialized bytes (>= 1; default 1 MiB). A
    // single larger message is sent alone; the node decides if it is too big.
    Builder& MaxBatchBytes(std::size_t bytes);
    // How long a message may wait for companions before a partial batch is
    // sent while an earlier batch of its topic is still in flight (>= 0;
    // default 5 ms). With nothing in flight a message is sent at once, so an
    // idle publisher adds no delay and a busy one sends bigger batches.
    Builder& Linger(std::chrono::milliseconds linger);
    // Cap on the key, ordering key, value and header bytes of messages whose
    // futures are not yet complete (>= 1; default 64 MiB). A single message
    // larger than this fails at once with INVALID_ARGUMENT.
    Builder& MaxOutstandingBytes(std::size_t bytes);
    // At the cap, Publish blocks until earlier messages complete (true,
    // default) or returns an already completed RESOURCE_EXHAUSTED result
    // (false).
    Builder& BlockWhenFull(bool block);
    // Deadline of each batch call (> 0; default 30 s). An expired call counts
    // as a node failure: its messages are retried on another node.
    Builder& RequestTimeout(std::chrono::milliseconds timeout);
    // Bound on a message's life (> 0; default 120 s): no attempt starts later
    // than this after Publish. When the next retry would, the message fails
    // at once with the last error; a message that could not be sent at all
    // by then (queued behind its key) fails with DEADLINE_EXCEEDED. An
    // attempt already in flight is still awaited (up to RequestTimeout).
    Builder& DeliveryTimeout(std::chrono::milliseconds timeout);
    // Retries wait `initial`, doubling per attempt up to `max` (0 < initial
    // <= max; default 50 ms and 2 s). An endpoint that failed is avoided for
    // the same kind of period.
    Builder& RetryBackoff(std::chrono::milliseconds initial,
                          std::chrono::milliseconds max);
    // How long the destructor waits for outstanding messages (>= 0; default
    // 30 s).
    Builder& CloseTimeout(std::chrono::milliseconds timeout);
    // On by default: the publisher asks the nodes for the settings the
    // operator pushes (Linger, MaxBatchMessages, MaxBatchBytes,
    // RequestTimeout, DeliveryTimeout; ferry client-settings set) at start,
    // every refresh interval the nodes name (client.refresh_interval, 30 s by
    // default), within a second after no node answered, and when it
    // reconnects to a node. A pushed setting replaces the SDK default of an
    // option not set on this Builder, from the next batch (and, for
    // DeliveryTimeout, the next message) on; an option set here always wins.
    // A node without GetClientConfig (older ferryd) leaves the defaults.
    // false: the defaults and this Builder's options only.
    Builder& PushedSettings(bool follow);
    // Off by default. When on, the publisher fetches its client configuration
    // from the nodes (at start, periodically, on reconnect; it probes them
    // every 0.5 s), pushed settings included (see PushedSettings). When no
    // node has answered for FallbackAfter and the topic's route allows it,
    // messages go straight to the route's write cluster (librdkafka: acks=all,
    // idempotent, the Java partitioner, header ferry.id); a key's messages wait
    // while an earlier one is in flight on the other path. When a node answers
    // again, new messages go through Ferry. Without a fetched configuration
    // for the topic, messages fail as without fallback. Consuming always
    // waits for the nodes.
    Builder& Fallback(bool enabled);
    // How long no node must answer before fallback starts (> 0; default 10 s).
    Builder& FallbackAfter(std::chrono::milliseconds after);
    // Names this client in the nodes' logs (fallback reports).
    Builder& ClientId(std::string id);

    // On success returns the publisher (channels connect lazily, so a node
    // that is down is no error here). On bad options returns nullptr and, if
    // `error` is not null, stores one line naming the option in *error.
    std::unique_ptr<Publisher> Build(std::string* error) const;

   private:
    struct Options;
    std::unique_ptr<Options> options_;
  };

  // Flush(CloseTimeout), then completes every remaining future with code 14
  // (UNAVAILABLE) "publisher closed" (in-flight calls are cancelled; a message
  // the node had already written may still be stored). Every Publish and
  // Flush call must have returned before the destructor starts.
  ~Publisher();

  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Queues `message` for `topic`. The future completes exactly once, with the
  // message's final result. Does not wait for the network; waits only when
  // the outstanding-bytes cap is reached and BlockWhenFull is set. Never
  // throws on publishing failures: they are reported through the result.
  std::future<PublishResult> Publish(std::string topic, Message message);

  // Receives a message's final result (the callback form of Publish).
  using Callback = std::function<void(PublishResult)>;

  // Like Publish above, but `done` receives the result instead of a future,
  // which saves a future's shared state and its synchronization per message
  // (the cheaper form for high rates). `done` runs exactly once: on the
  // calling thread before Publish returns when the message fails at once
  // (the cases where the other form returns a completed future), otherwise
  // on a thread of the publisher, one result at a time, in no particular
  // order across keys. It must not block, call Flush or destroy the
  // publisher; it may Publish again if BlockWhenFull is off (with it on,
  // Publish could wait for results only this thread delivers).
  void Publish(std::string topic, Message message, Callback done);

  // Receives the outcome of a PublishMany call.
  using ManyCallback = std::function<void(PublishManyResult)>;

  // The batch form of Publish, for high rates: queues `messages` for `topic`
  // and completes once, when every one of them has its final result. Same
  // contract per message as Publish (acknowledged only after the broker,
  // retries of the retryable failures with the same id until
  // DeliveryTimeout, per-key order also against messages of Publish and of
  // other PublishMany calls, MaxOutstandingBytes with BlockWhenFull), at a
  // fraction of its CPU per message: the views are encoded straight into
  // request bytes, with no Message, record or completion per message.
  //
  // The messages go out in requests of at most MaxBatchMessages /
  // MaxBatchBytes, built from the call alone (not mixed with other calls'
  // messages) and sent at once, without Linger. A part holds its messages'
  // keys from when it may be sent until all its messages have their results,
  // so a later message of one of those keys (from any call) waits until then;
  // calls of a few hundred messages keep enough in flight. Messages of the
  // call whose payload exceeds MaxOutstandingBytes fail with
  // INVALID_ARGUMENT, the rest are still published. With Fallback enabled,
  // the messages take the per-message path one by one (same results, not
  // the lower CPU). An empty call completes at once with no outcomes.
  std::future<PublishManyResult> PublishMany(std::string_view topic,
                                             std::span<const MessageView> messages);
  // The callback form; `done` runs exactly once, as Publish's callback does
  // (inline when every message failed at once).
  void PublishMany(std::string_view topic, std::span<const MessageView> messages,
                   ManyCallback done);

  // Sends queued messages without waiting for Linger and waits until every
  // message published before this call has its final result. Returns false
  // if `timeout` passed first (nothing is cancelled).
  bool Flush(std::chrono::milliseconds timeout);

  PublisherStats Stats() const;

 private:
  class Impl;
  class WithFallback;
  explicit Publisher(std::unique_ptr<Impl> impl);
  explicit Publisher(std::unique_ptr<WithFallback> fallback);

  // Exactly one is set: WithFallback wraps its own Impl.
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<WithFallback> fallback_;
};

}  // namespace ferry::client

#endif  // FERRY_CLIENT_PUBLISHER_H_
