#pragma once

// One consumer group on one node: the node's broker group member on each
// cluster the group reads, the state of every partition those members own,
// and the open streams of the group on this node. Fetched records are
// buffered per partition and handed to streams with credit under the group's
// ordering mode; acks, nacks, deadline expiry and stream loss feed back into
// the per-partition state (PartitionState), and the contiguous acked prefix
// is committed.
//
// Dual consume: a group whose route reads several clusters joins the same
// group id on each of them, and one dispatcher holds all those members, with
// partitions keyed by (cluster, topic, partition). One dispatcher rather than
// one per cluster fanned into a stream, because then a stream's credit is
// one budget across clusters by construction, ordering stays per partition
// (so per key within each cluster; there is no order across clusters), and
// pause, seek and shutdown stay one lock and one Stop(). A cluster that is
// down only has no partitions assigned: the others deliver meanwhile, and
// its member (which retries by itself) brings them when it comes back.
//
// Filters (docs/filters.md): a fetched record that no attached stream's
// filter (or the group filter) wants is skipped as acked when it arrives,
// before it is buffered or counted against any credit; one that some streams
// want goes only to those. A filter change (a stream leaving, the group
// filter) looks again at the records waiting in the buffers.
//
// The clusters follow the route (SetClusters): a cluster added to the read
// list is joined while the streams stay open, one removed is left (its acked
// prefixes committed, its in-flight receipts then expire).
//
// The dispatcher is the locked shell around single-threaded pieces, each with
// its own test: PartitionSlot (per partition: PartitionState, records,
// in-flight deliveries, commits, seeks), StreamCredit, DeliveryBatchWriter,
// DeadLetterer, GroupFilters and GroupMetrics.
//
// Threading: every method is thread-safe (one mutex per group). Listener
// callbacks arrive on the member's thread; stream methods on gRPC threads;
// Tick() on the registry's ticker thread. Nothing that may call back is
// called under the mutex: responses for streams and dead-letter writes are
// queued under it and sent after it was released, in the order they were
// queued, by one thread at a time (the first that finds work queued). So a
// sink or a cluster may complete inline, on the calling thread.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/cluster.h"
#include "backend/group_member.h"
#include "backend/member_leave.h"
#include "config/config.h"
#include "control/seek_ledger.h"
#include "ferry/v1/subscriber.pb.h"
#include "filter/filter.h"
#include "metrics/registry.h"
#include "subscribe/dead_letterer.h"
#include "subscribe/delivery_encoder.h"
#include "subscribe/group_filters.h"
#include "subscribe/partition_slot.h"
#include "subscribe/stream_credit.h"
#include "subscribe/subscribe_metrics.h"

namespace ferry::subscribe {

// Where a stream's messages and receipt results go: the gRPC stream.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // Queues a serialized v1::SubscribeResponse for sending; never blocks.
  // Dropped once the stream is gone (its in-flight messages are released by
  // Detach()). Called without the dispatcher's lock; may call back into the
  // dispatcher.
  virtual void Send(SerializedResponse response) = 0;
};

// A partition of one of the clusters a group reads.
struct ClusterPartition {
  std::string cluster;
  backend::TopicPartition partition;

  auto operator<=>(const ClusterPartition&) const = default;
};

// Settings fixed per group on a node by its first stream.
struct GroupOptions {
  std::string group = {};
  // The node's broker client id ("ferryd/<node id>"), shown by DescribeGroup.
  std::string client_id = {};
  OrderingMode ordering = OrderingMode::kNone;
  backend::StartPosition start = {};
  int32_t max_delivery_attempts = 0;   // 0: no dead-lettering
  std::string dead_letter_topic = {};  // empty: "<topic>.dlq"
};

struct StreamOptions {
  std::vector<std::string> topics = {};
  absl::Duration ack_deadline = absl::Seconds(30);
  int64_t max_outstanding_messages = 1000;
  int64_t max_outstanding_bytes = 10 << 20;
  std::string client_id = {};
  // The client's address as gRPC names it ("ipv4:10.0.0.7:51234").
  std::string peer = {};
  // Open.filter, parsed; `filter_text` empty: every message.
  filter::Filter filter = {};
  std::string filter_text = {};
};

// What DescribeGroup shows of this node's part of a group.
struct GroupSnapshot {
  struct Stream {
    StreamId id = 0;
    std::string client_id = {};
    std::string peer = {};
    int64_t outstanding_messages = 0;
    std::string filter = {};
  };
  struct Partition {
    std::string cluster = {};
    backend::TopicPartition partition = {};
    int64_t committed = -1;      // the last commit the broker confirmed
    int64_t commit_offset = -1;  // what the next commit will store
    int64_t next_fetch = -1;     // after the last record fetched
    int64_t in_flight = 0;
    int64_t buffered = 0;
    bool fetch_paused = false;
  };
  std::vector<std::string> topics = {};
  std::vector<Stream> streams = {};
  std::vector<Partition> partitions = {};
  bool paused = false;
  std::string group_filter = {};
  std::string last_error = {};
};

class GroupDispatcher final : public std::enable_shared_from_this<GroupDispatcher> {
 public:
  using Clock = std::function<absl::Time()>;

  // `clusters`: the clusters the group reads (at least one, distinct names;
  // they must outlive the dispatcher). `seeks` (may be null) tells which
  // newly assigned partitions must still apply a seek that passed while they
  // changed owners. `clock` is read for every event that arrives without a
  // time (tests pass a fake one).
  GroupDispatcher(GroupOptions options, std::vector<backend::Cluster*> clusters,
                  const config::SubscribeConfig& config, metrics::Registry* metrics,
                  control::SeekLedger* seeks, Clock clock = absl::Now);
  ~GroupDispatcher();

  // Joins the broker group with `topics` on every cluster (a cluster that is
  // unreachable is joined by its member's retries). Call once, before
  // Attach().
  absl::Status Start(const std::vector<std::string>& topics);
  // Leaves the broker group on every cluster (commits the acked prefixes).
  // Blocks, at most subscribe.leave_timeout (see Leave).
  void Stop();

  // Reads `clusters` from now on, without touching the streams. A cluster
  // not read before is joined with the group's topics; where the group has
  // no committed offset there it starts at the earliest record (a cluster is
  // added to a read list during a failover or a migration: whatever was
  // written to it before must not be skipped). A cluster no longer listed
  // stops delivering at once and is left: its acked prefixes are committed,
  // then its in-flight receipts answer "receipt expired". Blocks (leaving
  // waits for the broker; clusters leave in parallel, each for at most
  // subscribe.leave_timeout). Not on a member's
  // thread nor a gRPC callback thread. No-op after Stop().
  void SetClusters(std::vector<backend::Cluster*> clusters);

  const GroupOptions& options() const { return options_; }
  std::vector<backend::Cluster*> clusters() const;
  // Every topic the group's members subscribe to on this node.
  std::vector<std::string> topics() const;

  // A stream opened; messages start flowing to `sink`. False when the
  // dispatcher was stopped meanwhile (the caller creates a new one).
  bool Attach(StreamId stream, StreamOptions options, std::shared_ptr<StreamSink> sink);
  // The stream closed or broke: its in-flight messages are delivered again.
  void Detach(StreamId stream);

  // Settle receipts sent by `stream`; returns the ones that could not be
  // applied, with the reason (INVALID_ARGUMENT malformed, FAILED_PRECONDITION
  // expired / other stream). Acks also settle spans of receipt runs (see
  // v1::ReceiptSpan): a span that cannot be read fails as a whole; one that
  // can fails message by message, each with the receipt of that message.
  std::vector<v1::ReceiptResult> Ack(
      StreamId stream, const google::protobuf::RepeatedPtrField<std::string>& receipts,
      const google::protobuf::RepeatedPtrField<v1::ReceiptSpan>& spans = {});
  std::vector<v1::ReceiptResult> Nack(
      StreamId stream, const google::protobuf::RepeatedPtrField<std::string>& receipts,
      absl::Duration delay);
  std::vector<v1::ReceiptResult> Extend(
      StreamId stream, const google::protobuf::RepeatedPtrField<std::string>& receipts,
      absl::Duration deadline);
  void UpdateFlow(StreamId stream, int64_t max_messages, int64_t max_bytes);

  // Expires ack deadlines, delivers delayed messages, commits every commit
  // interval (again after a failed commit) and resumes fetching where
  // buffers drained; then asks for the next Tick() (SetTickRequest).
  void Tick(absl::Time now);

  // How the dispatcher asks for its next Tick(): `request(at)` means "tick
  // me no later than `at`" (an ack deadline, a delayed redelivery, the next
  // commit round, the idle timeout). Called with the dispatcher's lock held:
  // it must only record the time (TickSchedule::Wake), never call back.
  // Requests stop at Stop(). Unset (tests): whoever drives the dispatcher
  // calls Tick().
  using TickRequest = std::function<void(absl::Time)>;
  void SetTickRequest(TickRequest request);

  // How long a buffered record may keep sharing the backend's bytes (a Kafka
  // record pins librdkafka's whole fetch response) before it copies its own:
  // far longer than a record waits in a buffer while the group keeps up, so
  // only the slow ones pay the copy.
  static constexpr absl::Duration kBorrowedBytesHold = absl::Seconds(1);

  // Replaces the seek ledger (null: none); once this returns the old one is
  // no longer used.
  void SetSeekLedger(control::SeekLedger* seeks);

  // Stops / restarts delivery and fetching of the whole group on this node.
  void SetPaused(bool paused);
  // Replaces the group filter (`text` empty: none). Waiting records it no
  // longer wants are skipped; deliveries in flight stay valid.
  void SetGroupFilter(filter::Filter filter, std::string text);
  // Moves owned partitions of `cluster` (empty: of every cluster) to these
  // offsets; returns the partitions this node owns there (and moves).
  // In-flight receipts of moved partitions expire. A moved partition revoked
  // before the move completed is committed at its target, so the next owner
  // starts there.
  std::set<backend::TopicPartition> Seek(
      const std::string& cluster,
      const std::map<backend::TopicPartition, int64_t>& offsets);

  size_t stream_count() const;
  // When the last stream detached; InfiniteFuture() while streams are open.
  absl::Time idle_since() const;
  GroupSnapshot Snapshot() const;

 private:
  // Tells the dispatcher which cluster a member's event is about. Reached
  // through a backend::CuttableListener (listeners_), cut when its member
  // was abandoned while leaving (see Leave): the member may call back
  // whenever it gets unstuck, after the dispatcher is gone. After the cut
  // (CuttableListener::Cut states what then holds) no event of that member
  // reaches the dispatcher, and its revoke commits nothing (the next owner
  // redelivers from the last commit); a later join of the cluster gets a
  // fresh CuttableListener in front of the same ClusterListener.
  class ClusterListener final : public backend::GroupMemberListener {
   public:
    ClusterListener(GroupDispatcher* dispatcher, backend::Cluster* cluster)
        : dispatcher_(dispatcher), cluster_(cluster) {}

    backend::Cluster* cluster() const { return cluster_; }

    void OnAssigned(const std::vector<backend::AssignedPartition>& partitions) override;
    std::map<backend::TopicPartition, int64_t> OnRevoked(
        const std::vector<backend::TopicPartition>& partitions) override;
    void OnRecords(std::vector<backend::ConsumedRecord> records) override;
    void OnSeekDone(const backend::TopicPartition& partition, int64_t offset) override;
    void OnError(const absl::Status& error) override;
    void OnCommitted(const backend::TopicPartition& partition, int64_t offset,
                     const absl::Status& status) override;

   private:
    GroupDispatcher* const dispatcher_;
    backend::Cluster* const cluster_;
  };

  struct Stream {
    Stream(StreamOptions options, std::shared_ptr<StreamSink> sink);
    StreamOptions options;
    std::set<std::string> topics;
    std::shared_ptr<StreamSink> sink;
    StreamCredit credit;
  };
  // A dead letter to write once the lock is released, to the cluster the
  // message was read from.
  struct DeadLetterWrite {
    backend::Cluster* cluster = nullptr;
    ClusterPartition partition;
    uint64_t epoch = 0;
    Delivery delivery;
    backend::Record record;
  };
  // Work queued under mu_ for after it: see the class comment.
  struct Outbox {
    std::vector<std::pair<std::shared_ptr<StreamSink>, SerializedResponse>> sends;
    std::vector<DeadLetterWrite> dead_letters;
    bool empty() const { return sends.empty() && dead_letters.empty(); }
  };
  using Receipts = google::protobuf::RepeatedPtrField<std::string>;
  using Spans = google::protobuf::RepeatedPtrField<v1::ReceiptSpan>;

  // Member events, per cluster (see ClusterListener).
  void OnAssigned(backend::Cluster& cluster,
                  const std::vector<backend::AssignedPartition>& partitions);
  std::map<backend::TopicPartition, int64_t> OnRevoked(
      backend::Cluster& cluster, const std::vector<backend::TopicPartition>& partitions);
  void OnRecords(backend::Cluster& cluster, std::vector<backend::ConsumedRecord> records);
  void OnSeekDone(backend::Cluster& cluster, const backend::TopicPartition& partition,
                  int64_t offset);
  void OnError(backend::Cluster& cluster, const absl::Status& error);
  void OnCommitted(backend::Cluster& cluster, const backend::TopicPartition& partition,
                   int64_t offset, const absl::Status& status);

  // The member on `cluster`; null before Start(), after Stop() and while a
  // cluster removed from the read list is being left.
  backend::GroupMember* Member(const std::string& cluster) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Joins the group on `cluster` (the listener is made on first use).
  absl::StatusOr<std::unique_ptr<backend::GroupMember>> Join(
      backend::Cluster* cluster, const std::vector<std::string>& topics,
      const backend::StartPosition& start) ABSL_EXCLUSIVE_LOCKS_REQUIRED(membership_mu_);
  // Makes a joined member the cluster's; pauses what it already owns when the
  // group is paused (its first assignment may have come before this).
  void AddMember(const std::string& cluster, std::unique_ptr<backend::GroupMember> member)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Destroys members without mu_ held (each runs OnRevoked, which commits the
  // acked prefix), in parallel so a cluster that is down (whose leave waits
  // for timeouts) does not hold up committing what was acked on the others,
  // and waits at most subscribe.leave_timeout (LeaveWithin): a member still
  // leaving then is abandoned (logged, counted, its listener cut and
  // replaced for a later join of that cluster).
  void Leave(std::map<std::string, std::unique_ptr<backend::GroupMember>> members)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(membership_mu_) ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets a partition: its in-flight deliveries give their credit back
  // and their receipts expire.
  void DropSlot(std::map<ClusterPartition, std::unique_ptr<PartitionSlot>>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Applies `fn` to each receipt's in-flight delivery of this stream.
  template <typename Fn>
  std::vector<v1::ReceiptResult> ForEachReceipt(StreamId stream, const Receipts& receipts,
                                                Fn fn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The same for each message of each span, adding to `failures`: one run
  // decode and one partition lookup per span.
  template <typename Fn>
  void ForEachSpanned(StreamId stream, const Spans& spans, Fn fn,
                      std::vector<v1::ReceiptResult>& failures)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Hands deliverable messages to streams with credit (into the outbox).
  void Pump(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the outbox into `out` unless another thread is sending already
  // (then that thread sends it). Call last before releasing mu_.
  void ClaimOutbox(Outbox& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends what ClaimOutbox gave, then whatever was queued meanwhile, without
  // mu_ held.
  void Flush(Outbox out) ABSL_LOCKS_EXCLUDED(mu_);
  // Queues the dead letter of a delivery past max_delivery_attempts; the
  // node holds the message in flight until the write is confirmed.
  void DeadLetter(const ClusterPartition& cp, PartitionSlot& slot,
                  const Delivery& delivery, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnDeadLettered(const ClusterPartition& cp, uint64_t epoch,
                      const Delivery& delivery, const absl::Status& status);
  // A delivery left flight (settled, nacked, expired, released): the stream
  // gets its credit back.
  void ReturnCredit(const InFlight& in_flight) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReturnCredit(PartitionSlot& slot, int64_t offset)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CommitAll(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeResumeFetch(const ClusterPartition& cp, PartitionSlot& slot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Skips the waiting records that the filters no longer want (after a
  // filter change).
  void SkipUnwanted() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateTopics() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts moving an owned partition (Seek, or a seek it missed).
  void StartSeek(const ClusterPartition& cp, PartitionSlot& slot, int64_t offset)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Asks for a Tick() no later than `at` (see SetTickRequest).
  void RequestTick(absl::Time at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The earliest time a Tick() has work: the next commit round (while
  // partitions are owned), ack deadlines, delayed redeliveries, borrowed
  // bytes to copy, and the idle timeout (while no stream is attached).
  absl::Time NextTickDue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const GroupOptions options_;
  const config::SubscribeConfig config_;
  const Clock clock_;
  const DeadLetterer dead_letterer_;

  // Serializes Start, SetClusters and Stop, which block on members joining
  // and leaving; never taken by member callbacks, so it may be held across
  // those calls (mu_ may not).
  absl::Mutex membership_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // By cluster name; kept while the dispatcher lives (a cluster may be
  // removed and added again).
  std::map<std::string, ClusterListener> cluster_listeners_
      ABSL_GUARDED_BY(membership_mu_);
  // What each cluster's member calls: its cluster listener until cut. Shared
  // with the thread of a member abandoned while leaving, which may outlive
  // the dispatcher.
  std::map<std::string, std::shared_ptr<backend::CuttableListener>> listeners_
      ABSL_GUARDED_BY(membership_mu_);

  mutable absl::Mutex mu_;
  // The read list, in route order.
  std::vector<backend::Cluster*> clusters_ ABSL_GUARDED_BY(mu_);
  GroupMetrics metrics_ ABSL_GUARDED_BY(mu_);
  GroupFilters filters_ ABSL_GUARDED_BY(mu_);
  // By cluster name. Set by Start(); Stop() takes them out and destroys them
  // outside mu_ (their callbacks take mu_). Empty before Start() and after
  // Stop().
  std::map<std::string, std::unique_ptr<backend::GroupMember>> members_
      ABSL_GUARDED_BY(mu_);
  control::SeekLedger* seeks_ ABSL_GUARDED_BY(mu_);
  // Calls into seeks_ running outside mu_; SetSeekLedger waits for them.
  int ledger_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<ClusterPartition, std::unique_ptr<PartitionSlot>> slots_ ABSL_GUARDED_BY(mu_);
  std::map<StreamId, Stream> streams_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> topics_ ABSL_GUARDED_BY(mu_);
  Outbox outbox_ ABSL_GUARDED_BY(mu_);
  // A thread is sending the outbox (see Flush).
  bool flushing_ ABSL_GUARDED_BY(mu_) = false;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time idle_since_ ABSL_GUARDED_BY(mu_);
  absl::Time next_commit_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  TickRequest tick_request_ ABSL_GUARDED_BY(mu_);
  // The earliest Tick() asked for since the last one (InfiniteFuture: none):
  // later requests need not be passed on.
  absl::Time tick_requested_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // Rotates where Pump() starts so streams and partitions share fairly.
  uint64_t pump_round_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ferry::subscribe
