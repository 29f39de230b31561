// ferry::client::Subscriber: consumes a consumer group's messages from Ferry
// nodes over gRPC, at least once.
//
// Callback API: the handler runs on the subscriber's handler threads.
//
//   std::string error;
//   std::unique_ptr<ferry::client::Subscriber> subscriber =
//       ferry::client::Subscriber::Builder()
//           .Endpoints({"ferry-1:7400", "ferry-2:7400"})
//           .Group("billing")
//           .Topics({"orders"})
//           .Ordering(ferry::client::Ordering::kKey)
//           .OnMessage([](const ferry::client::ReceivedMessage& message,
//                         ferry::client::AckHandle handle) {
//             if (Process(message.value)) {
//               handle.Ack();
//             } else {
//               handle.Nack(std::chrono::seconds(10));  // Redeliver later.
//             }
//           })
//           .OnError([](const ferry::client::SubscriberError& e) { Log(e.error); })
//           .Build(&error);
//   if (subscriber == nullptr) { /* bad options: `error` says which */ }
//   ...
//   subscriber->Close(std::chrono::seconds(30));  // Or let the destructor do it.
//
// Pull API: without OnMessage, the application takes messages with Next().
//
//   for (;;) {
//     std::optional<ferry::client::PulledMessage> m =
//         subscriber->Next(std::chrono::seconds(1));
//     if (!m) {
//       if (std::optional<ferry::client::SubscriberError> e = subscriber->Failure()) {
//         /* fatal: e->code, e->error */ break;
//       }
//       continue;  // Nothing within the timeout.
//     }
//     Print(m->message().value);
//     m->Ack();
//   }
//
// Batch pull API: NextBatch hands out what one node's response delivered as
// a MessageBatch of ReceivedViews, whose fields point into the bytes the
// response arrived in: no copy and no allocation per field.
//
//   std::optional<ferry::client::MessageBatch> batch =
//       subscriber->NextBatch(std::chrono::seconds(1));
//   if (batch) {
//     for (const ferry::client::ReceivedView& m : *batch) Print(m.value);
//     batch->AckAll();
//   }  // The views end with the batch; unsettled messages are nacked then.
//
// Delivery: the subscriber opens one stream to every endpoint (each node
// serves different partitions of the group) and reopens a broken stream with
// exponential backoff. Delivery is at least once: a message is redelivered
// (to this or another subscriber of the group) after a Nack, when its ack
// deadline passes, or when the stream that delivered it breaks. A message's
// ack is valid only on the stream that delivered it: after that stream broke,
// Ack/Nack do nothing (the node redelivers the message) and are counted in
// Stats().dropped_settlements. While a message is neither acked nor nacked,
// the subscriber extends its deadline automatically (when about 2/3 of it
// has passed), for at most MaxExtension.
//
// Acks, nacks and extensions are batched per stream: sent when AckBatch's
// count is reached or its delay has passed, and on Close().
//
// This header exposes no gRPC, protobuf or abseil types.
#ifndef FERRY_CLIENT_SUBSCRIBER_H_
#define FERRY_CLIENT_SUBSCRIBER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/client/header.h"
#include "ferry/client/security.h"

namespace ferry::client {

namespace internal {
struct Receipt;
}  // namespace internal

// Which messages the node hands out one at a time, and which ones the
// callback API invokes one at a time.
enum class Ordering {
  // No ordering: messages of one partition are spread over streams and
  // handler threads.
  kNone,
  // The next message of a key is handed out only after the previous one was
  // acked; handler invocations of one key are serial. Messages without a key
  // are unordered.
  kKey,
  // Likewise per (topic, partition).
  kPartition,
};

// Where a group with no committed offsets starts reading.
struct StartPosition {
  enum class Kind { kLatest, kEarliest, kTimestamp };
  Kind kind = Kind::kLatest;
  // For kTimestamp: the first message of each partition at or after this time.
  std::chrono::system_clock::time_point timestamp{};

  static StartPosition Latest() { return {}; }
  static StartPosition Earliest() { return {.kind = Kind::kEarliest}; }
  static StartPosition At(std::chrono::system_clock::time_point time) {
    return {.kind = Kind::kTimestamp, .timestamp = time};
  }
};

struct ReceivedMessage {
  std::string topic{};
  int32_t partition = -1;
  int64_t offset = -1;
  // Empty: the record has no key.
  std::string key{};
  std::string value{};
  std::vector<Header> headers{};
  // The record's timestamp, when the node reported one.
  std::optional<std::chrono::system_clock::time_point> publish_time{};
  // 1 on first delivery.
  int delivery_attempt = 1;
  // The cluster the message was read from.
  std::string cluster{};
  // The publisher's message id (header `ferry.id`), if any: use it to drop
  // the rare duplicates at-least-once delivery causes.
  std::string id{};
};

// A stream that failed. Non-fatal errors (the node is unreachable, the stream
// broke) are followed by a reconnect; fatal ones (INVALID_ARGUMENT: bad
// subscription options or a filter that does not parse; NOT_FOUND: unknown
// topic; UNIMPLEMENTED: an option the nodes do not support;
// UNAUTHENTICATED and PERMISSION_DENIED: credentials or ACLs, which a retry
// with the same credentials would not change) stop the subscriber.
struct SubscriberError {
  // gRPC status code number: 3 INVALID_ARGUMENT, 5 NOT_FOUND, 14 UNAVAILABLE...
  int code = 0;
  std::string error{};
  // The node whose stream failed.
  std::string endpoint{};
  bool fatal = false;
};

// An ack, nack or extension the node could not apply, e.g. code 9
// FAILED_PRECONDITION "receipt expired" after a rebalance or seek: the
// message will be (or was) redelivered. Informational, not an error of the
// subscriber.
struct ReceiptFailure {
  int code = 0;
  std::string error{};
  std::string endpoint{};
};

// Counters since the subscriber was built. An ack, nack or extension counts
// as sent once gRPC reports its write done, which can be after the node acted
// on it: a nacked message may be redelivered (and handled) before its nack is
// counted. Close returns after the last write is done: read then, they are
// complete.
struct SubscriberStats {
  // Messages received from nodes.
  int64_t received = 0;
  // Receipts the node was sent in acks, nacks and extensions.
  int64_t acks_sent = 0;
  int64_t nacks_sent = 0;
  int64_t extensions_sent = 0;
  // Acks and nacks not sent because the stream that delivered the message had
  // broken or was closing (the node redelivers those messages).
  int64_t dropped_settlements = 0;
  // Receipts the node reported as failed (see ReceiptFailure).
  int64_t receipt_failures = 0;
  // Streams reopened after a break.
  int64_t reconnects = 0;
  // Streams open right now.
  int open_streams = 0;
};

// A header of a ReceivedView; valid as long as its ReceivedView.
struct HeaderView {
  std::string_view key{};
  std::string_view value{};
};

// A delivered message read in place: the same fields as ReceivedMessage, as
// views into the bytes the node's response arrived in (or, for the rare field
// split across two of gRPC's slices, into one copy of it). The MessageBatch
// that handed it out owns those bytes: every view, including `headers`, stays
// valid until that batch is destroyed or assigned to; settling a message does
// not end its view. Copy() makes an owning ReceivedMessage that outlives it.
struct ReceivedView {
  std::string_view topic{};
  int32_t partition = -1;
  int64_t offset = -1;
  std::string_view key{};
  std::string_view value{};
  std::span<const HeaderView> headers{};
  std::optional<std::chrono::system_clock::time_point> publish_time{};
  int delivery_attempt = 1;
  std::string_view cluster{};
  std::string_view id{};

  ReceivedMessage Copy() const;
};

namespace internal {
struct BatchState;
struct BatchAccess;
}  // namespace internal

// Messages that one node delivered together, taken with Subscriber::NextBatch,
// and their settlement. Move-only; used by one thread at a time.
//
// Lifetime: the batch owns the bytes its ReceivedViews point into (about the
// size of the node's response, up to FlowControl's bytes): keep a batch only
// as long as its views are needed, and Copy() a message to keep it longer.
// Destroying (or assigning to) a batch nacks its messages that were neither
// acked nor nacked (redelivery as soon as possible). A batch may outlive its
// subscriber: settling then does nothing, the views stay valid.
//
// Settlement is as with AckHandle, per message by index: of Ack and Nack only
// the first call counts. Out-of-range indexes are a programming error.
class MessageBatch {
 public:
  MessageBatch();
  // For the SDK's own use: Subscriber makes batches.
  explicit MessageBatch(std::unique_ptr<internal::BatchState> state);
  ~MessageBatch();
  MessageBatch(MessageBatch&&) noexcept;
  // Nacks the unsettled messages this batch held.
  MessageBatch& operator=(MessageBatch&&) noexcept;
  MessageBatch(const MessageBatch&) = delete;
  MessageBatch& operator=(const MessageBatch&) = delete;

  std::span<const ReceivedView> messages() const;
  std::size_t size() const { return messages().size(); }
  bool empty() const { return messages().empty(); }
  const ReceivedView& operator[](std::size_t i) const { return messages()[i]; }
  auto begin() const { return messages().begin(); }
  auto end() const { return messages().end(); }

  // Settle message i. Only the first Ack or Nack of a message counts; an i
  // past the end, or a moved-from or default-constructed batch, does nothing.
  void Ack(std::size_t i);
  void Nack(std::size_t i,
            std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  // As AckHandle::ExtendDeadline, for message i.
  void ExtendDeadline(std::size_t i, std::chrono::milliseconds deadline);
  // Acks every message not settled yet, under one lock of the stream.
  void AckAll();

 private:
  friend struct internal::BatchAccess;
  bool Holds(std::size_t i) const;

  std::unique_ptr<internal::BatchState> state_;
};

class PulledMessage;

// Acks every message of `messages`, as PulledMessage::Ack on each would, but
// takes the lock of the stream that delivered them once per stretch of
// messages from one stream rather than once per message (a pull loop that
// acks what it took in a batch). Messages already settled are skipped.
void AckAll(std::span<PulledMessage> messages);

// Settles one delivered message. Move-only; a handle is used by one thread at
// a time. Of Ack and Nack only the first call counts; later calls (and calls
// on a moved-from or default-constructed handle) do nothing. A handle
// destroyed without Ack or Nack nacks its message (redelivery as soon as
// possible). A handle may outlive its subscriber: its calls then do nothing.
class AckHandle {
 public:
  AckHandle();
  // For the SDK's own use: Subscriber creates the handles.
  explicit AckHandle(std::unique_ptr<internal::Receipt> receipt);
  ~AckHandle();
  AckHandle(AckHandle&&) noexcept;
  // Nacks the message this handle held, if not settled yet.
  AckHandle& operator=(AckHandle&&) noexcept;
  AckHandle(const AckHandle&) = delete;
  AckHandle& operator=(const AckHandle&) = delete;

  // The message was processed: the node may commit past it.
  void Ack();
  // Redeliver the message, no sooner than `delay` (0: as soon as possible).
  void Nack(std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  // The node's deadline for this message becomes now + `deadline`. Automatic
  // extension continues afterwards (until MaxExtension), so this is needed
  // only to ask for more than AckDeadline at once.
  void ExtendDeadline(std::chrono::milliseconds deadline);

 private:
  friend void AckAll(std::span<PulledMessage> messages);

  std::unique_ptr<internal::Receipt> receipt_;
};

// A message taken with Subscriber::Next, with its handle.
class PulledMessage {
 public:
  PulledMessage(ReceivedMessage message, AckHandle handle)
      : message_(std::move(message)), handle_(std::move(handle)) {}

  const ReceivedMessage& message() const { return message_; }
  void Ack() { handle_.Ack(); }
  void Nack(std::chrono::milliseconds delay = std::chrono::milliseconds(0)) {
    handle_.Nack(delay);
  }
  void ExtendDeadline(std::chrono::milliseconds deadline) {
    handle_.ExtendDeadline(deadline);
  }

 private:
  friend void AckAll(std::span<PulledMessage> messages);

  ReceivedMessage message_;
  AckHandle handle_;
};

// Thread-safe: Next, Failure, Stats and Close may be called from any number
// of threads. Callbacks (OnMessage, OnError, OnReceiptFailure) must not throw
// and must not call Close or destroy the subscriber.
//
// Threading: gRPC's threads read the streams and queue messages; one
// background thread sends timed ack batches and extensions, reopens streams
// and runs OnError and OnReceiptFailure; with OnMessage, HandlerThreads
// threads run the handler.
class Subscriber {
 public:
  using MessageHandler = std::function<void(const ReceivedMessage&, AckHandle)>;
  using ErrorHandler = std::function<void(const SubscriberError&)>;
  using ReceiptFailureHandler = std::function<void(const ReceiptFailure&)>;

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

    // Required: the Ferry nodes, each "host:port" (or any gRPC target). The
    // subscriber opens one stream to each.
    Builder& Endpoints(std::vector<std::string> endpoints);
    // TLS, client certificate and token (security.h); default: plain text.
    Builder& Security(client::Security security);
    // Required: the consumer group.
    Builder& Group(std::string group);
    // Required: one or more topics.
    Builder& Topics(std::vector<std::string> topics);
    // Default kNone.
    Builder& Ordering(client::Ordering ordering);
    // How long a delivered message may stay unsettled before the node
    // redelivers it, unless extended (1 s to 10 min; default 30 s).
    Builder& AckDeadline(std::chrono::milliseconds deadline);
    // Per stream, so per endpoint: the node sends no more while this many
    // messages or bytes are unsettled (>= 1; default 1000 and 10 MiB).
    Builder& FlowControl(int64_t max_outstanding_messages, int64_t max_outstanding_bytes);
    // Where a group with no committed offsets starts (default: latest).
    Builder& StartAt(StartPosition position);
    // Server-side filter over key, headers and JSON fields (default: none).
    Builder& Filter(std::string filter);
    // After this many deliveries a message goes to the dead-letter topic
    // (>= 0; default 0: never).
    Builder& MaxDeliveryAttempts(int attempts);
    // Default "<topic>.dlq".
    Builder& DeadLetterTopic(std::string topic);
    // Shown by DescribeGroup (default empty).
    Builder& ClientId(std::string client_id);
    // Callback API: `handler` receives every message on a handler thread.
    // Without it the subscriber is in pull mode (Next).
    Builder& OnMessage(MessageHandler handler);
    // Threads running OnMessage (1 to 1024; default 4). With Ordering::kNone
    // a received batch is split over them in runs of up to 16 messages that
    // one thread handles in turn (so a slow handler call delays the rest of
    // its run, not other threads), and the acks made during a run reach the
    // node's stream together when its last call returns (a Close that gives
    // up on a stuck handler drops the acks of that handler's run; the node
    // redelivers those messages).
    Builder& HandlerThreads(int threads);
    // Called on the background thread for each stream failure.
    Builder& OnError(ErrorHandler handler);
    // Called on the background thread for each ReceiptFailure.
    Builder& OnReceiptFailure(ReceiptFailureHandler handler);
    // Settlements of a stream are sent once `max_receipts` are pending or the
    // oldest has waited `max_delay` (max_receipts >= 1, max_delay >= 0;
    // default 500 and 5 ms).
    Builder& AckBatch(int max_receipts, std::chrono::milliseconds max_delay);
    // Automatic extension stops this long after delivery (> 0; default 1 h).
    Builder& MaxExtension(std::chrono::milliseconds max);
    // Reopening a stream waits `initial`, doubling per consecutive failure up
    // to `max` (0 < initial <= max; default 100 ms and 5 s).
    Builder& ReconnectBackoff(std::chrono::milliseconds initial,
                              std::chrono::milliseconds max);
    // How long the destructor's Close() waits for handlers (>= 0; default 30 s).
    Builder& CloseTimeout(std::chrono::milliseconds timeout);

    // On success returns the subscriber, which starts opening its streams (a
    // node that is down is no error here). On bad options returns nullptr and,
    // if `error` is not null, stores one line naming the option in *error.
    std::unique_ptr<Subscriber> Build(std::string* error) const;

   private:
    struct Options;
    std::unique_ptr<Options> options_;
  };

  // Close(CloseTimeout); then waits for handlers still running, however
  // long they take.
  ~Subscriber();

  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // Pull mode: the next message, waiting up to `timeout`. nullopt when none
  // arrived in time, after Close, after a fatal error (see Failure), or in
  // callback mode.
  std::optional<PulledMessage> Next(std::chrono::milliseconds timeout);

  // Pull mode: the messages of the oldest received response not handed out
  // yet (what Next would return next and the rest of its batch), waiting up to
  // `timeout`. nullopt as for Next. Next and NextBatch may be mixed.
  std::optional<MessageBatch> NextBatch(std::chrono::milliseconds timeout);

  // The fatal error that stopped the subscriber, if any.
  std::optional<SubscriberError> Failure() const;

  SubscriberStats Stats() const;

  // Stops delivering (no new handler invocations; Next returns nullopt;
  // messages received but not handed out are nacked), waits up to `timeout`
  // for running handlers, sends every pending ack and nack, half-closes the
  // streams and waits for the nodes to end them (cancelling streams a node has
  // not ended within 5 s). Returns false if handlers
  // were still running at the timeout (their settlements are dropped).
  // Idempotent; a concurrent second call waits for the first.
  bool Close(std::chrono::milliseconds timeout);

 private:
  class Impl;
  explicit Subscriber(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::client

#endif  // FERRY_CLIENT_SUBSCRIBER_H_
