#include "subscribe/group_dispatcher.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>

#include "api/convert.h"
#include "api/retry.h"
#include "subscribe/ack_metrics.h"
#include "subscribe/delivery_encoder.h"
#include "subscribe/wire_receipt.h"

namespace ferry::subscribe {
namespace {

// Node-unique ids of partition states; receipts carry them so a receipt from
// an earlier assignment of the same partition never matches.
std::atomic<uint64_t> next_epoch{1};

// Dead-letter writes are in flight with no stream; their deadline only
// guards against a write that never answers.
constexpr StreamId kDeadLetterStream = 0;
constexpr absl::Duration kDeadLetterDeadline = absl::Minutes(5);
// A response is cut once it holds this many bytes: below the 4 MiB that
// gRPC clients accept by default even with one more large message (Kafka's
// default limit is 1 MB), and large enough that a backlog goes out in few
// writes (each one a write callback and a wake-up on both sides: with 100
// messages per response, ferryd spent about 10 % more CPU per message).
constexpr size_t kMaxResponseBytes = size_t{1} << 20;

// What buffering one record costs beyond its payload: the record struct, its
// slots in the buffer's and PartitionState's rings, and a ready-set node.
// Counted against subscribe.partition_buffer_bytes so that tiny messages
// cannot pile up unbounded (measured: about 400-500 bytes per buffered record).
constexpr int64_t kBufferedRecordOverhead = 512;

// Finds slots by the parts of their key without building a key per message:
// a fetched batch and an ack batch are mostly of one partition in a row.
// Valid while no slot is added or removed.
class SlotFinder {
 public:
  using Slots = std::map<ClusterPartition, std::unique_ptr<PartitionSlot>>;

  explicit SlotFinder(Slots& slots) : slots_(slots), last_(slots.end()) {}

  Slots::iterator Find(std::string_view cluster, std::string_view topic,
                       int32_t partition) {
    if (last_ != slots_.end() && last_->first.partition.partition == partition &&
        last_->first.partition.topic == topic && last_->first.cluster == cluster) {
      return last_;
    }
    last_ = slots_.find({std::string(cluster), {std::string(topic), partition}});
    return last_;
  }

 private:
  Slots& slots_;
  Slots::iterator last_;
};

v1::ReceiptResult Failure(const std::string& receipt, absl::Status status) {
  v1::ReceiptResult result;
  result.set_receipt(receipt);
  api::ToProtoStatus(status, api::IsRetryable(status.code()), result.mutable_status());
  return result;
}

v1::ReceiptResult SpanFailure(const v1::ReceiptSpan& span, absl::Status status) {
  v1::ReceiptResult result;
  *result.mutable_span() = span;
  api::ToProtoStatus(status, api::IsRetryable(status.code()), result.mutable_status());
  return result;
}

}  // namespace

GroupDispatcher::Stream::Stream(StreamOptions options, std::shared_ptr<StreamSink> sink)
    : options(std::move(options)),
      topics(this->options.topics.begin(), this->options.topics.end()),
      sink(std::move(sink)),
      credit(this->options.max_outstanding_messages,
             this->options.max_outstanding_bytes) {}

void GroupDispatcher::ClusterListener::OnAssigned(
    const std::vector<backend::AssignedPartition>& partitions) {
  dispatcher_->OnAssigned(*cluster_, partitions);
}
std::map<backend::TopicPartition, int64_t> GroupDispatcher::ClusterListener::OnRevoked(
    const std::vector<backend::TopicPartition>& partitions) {
  return dispatcher_->OnRevoked(*cluster_, partitions);
}
void GroupDispatcher::ClusterListener::OnRecords(
    std::vector<backend::ConsumedRecord> records) {
  dispatcher_->OnRecords(*cluster_, std::move(records));
}
void GroupDispatcher::ClusterListener::OnSeekDone(const backend::TopicPartition& tp,
                                                  int64_t offset) {
  dispatcher_->OnSeekDone(*cluster_, tp, offset);
}
void GroupDispatcher::ClusterListener::OnError(const absl::Status& error) {
  dispatcher_->OnError(*cluster_, error);
}
void GroupDispatcher::ClusterListener::OnCommitted(const backend::TopicPartition& tp,
                                                   int64_t offset,
                                                   const absl::Status& status) {
  dispatcher_->OnCommitted(*cluster_, tp, offset, status);
}

GroupDispatcher::GroupDispatcher(GroupOptions options,
                                 std::vector<backend::Cluster*> clusters,
                                 const config::SubscribeConfig& config,
                                 metrics::Registry* metrics, control::SeekLedger* seeks,
                                 Clock clock)
    : options_(std::move(options)),
      config_(config),
      clock_(std::move(clock)),
      dead_letterer_(options_.group, options_.dead_letter_topic),
      clusters_(std::move(clusters)),
      metrics_(metrics, options_.group),
      filters_(&metrics_),
      seeks_(seeks),
      idle_since_(clock_()) {}

GroupDispatcher::~GroupDispatcher() { Stop(); }

absl::Status GroupDispatcher::Start(const std::vector<std::string>& topics) {
  absl::MutexLock membership(&membership_mu_);
  std::vector<backend::Cluster*> clusters;
  {
    absl::MutexLock lock(&mu_);
    topics_ = topics;
    clusters = clusters_;
  }
  for (backend::Cluster* cluster : clusters) {
    auto member = Join(cluster, topics, options_.start);
    if (!member.ok()) return member.status();
    AddMember(cluster->name(), *std::move(member));
  }
  return absl::OkStatus();
}

void GroupDispatcher::Stop() {
  absl::MutexLock membership(&membership_mu_);
  std::map<std::string, std::unique_ptr<backend::GroupMember>> members;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    tick_request_ = nullptr;
    members.swap(members_);
  }
  Leave(std::move(members));
}

void GroupDispatcher::SetClusters(std::vector<backend::Cluster*> clusters) {
  absl::MutexLock membership(&membership_mu_);
  std::vector<backend::Cluster*> added;
  std::map<std::string, std::unique_ptr<backend::GroupMember>> removed;
  std::vector<std::string> topics;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    const auto listed = [](const std::vector<backend::Cluster*>& list,
                           backend::Cluster* cluster) {
      return std::find(list.begin(), list.end(), cluster) != list.end();
    };
    for (backend::Cluster* cluster : clusters) {
      if (!listed(clusters_, cluster)) added.push_back(cluster);
    }
    for (backend::Cluster* cluster : clusters_) {
      if (listed(clusters, cluster)) continue;
      // Out of members_ first: Pump stops delivering the cluster's partitions
      // and CommitAll leaves them to the leave's OnRevoked.
      auto it = members_.find(cluster->name());
      if (it != members_.end()) removed.insert(members_.extract(it));
    }
    clusters_ = clusters;
    topics = topics_;
  }
  for (backend::Cluster* cluster : added) {
    auto member =
        Join(cluster, topics, {.kind = backend::StartPosition::Kind::kEarliest});
    if (member.ok()) {
      AddMember(cluster->name(), *std::move(member));
      continue;
    }
    // Left out of the read list, so the next route change tries again.
    spdlog::error("group={} cannot join cluster {}: {}", options_.group, cluster->name(),
                  std::string(member.status().message()));
    absl::MutexLock lock(&mu_);
    last_error_ = fmt::format("cluster {}: {}", cluster->name(),
                              std::string(member.status().message()));
    std::erase(clusters_, cluster);
  }
  std::set<std::string> left;
  for (const auto& [cluster, member] : removed) left.insert(cluster);
  Leave(std::move(removed));
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    // A member revokes what it owns when it leaves; this catches partitions
    // it never reported (assigned while it was leaving).
    for (auto it = slots_.begin(); it != slots_.end();) {
      auto next = std::next(it);
      if (left.contains(it->first.cluster)) DropSlot(it);
      it = next;
    }
    Pump(clock_());
    ClaimOutbox(out);
  }
  Flush(std::move(out));
}

absl::StatusOr<std::unique_ptr<backend::GroupMember>> GroupDispatcher::Join(
    backend::Cluster* cluster, const std::vector<std::string>& topics,
    const backend::StartPosition& start) {
  auto [adapter, unused] = cluster_listeners_.try_emplace(cluster->name(), this, cluster);
  // Clusters live as long as the node, so a name stands for one cluster; a
  // second one of the same name would get the first one's listener (events,
  // leaves counted against it), and that one may still be in use.
  if (adapter->second.cluster() != cluster) {
    return absl::InternalError(
        fmt::format("group {}: cluster {} is not the one of that name it joined before",
                    options_.group, cluster->name()));
  }
  std::shared_ptr<backend::CuttableListener>& listener = listeners_[cluster->name()];
  if (!listener) listener = std::make_shared<backend::CuttableListener>(&adapter->second);
  return cluster->JoinGroup({.group = options_.group,
                             .client_id = options_.client_id,
                             .topics = topics,
                             .start = start},
                            listener.get());
}

void GroupDispatcher::AddMember(const std::string& cluster,
                                std::unique_ptr<backend::GroupMember> member) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (paused_) {
      std::vector<backend::TopicPartition> owned;
      for (const auto& [cp, slot] : slots_) {
        if (cp.cluster == cluster) owned.push_back(cp.partition);
      }
      if (!owned.empty()) member->Pause(owned);
    }
    members_[cluster] = std::move(member);
    // Records that came before the member was known were held back.
    Pump(clock_());
    ClaimOutbox(out);
  }
  Flush(std::move(out));
}

void GroupDispatcher::Leave(
    std::map<std::string, std::unique_ptr<backend::GroupMember>> members) {
  std::map<std::string, backend::LeavingMember> leaving;
  for (auto& [cluster, member] : members) {
    leaving[cluster] = {.member = std::move(member),
                        .keep_alive = listeners_[cluster],
                        .cluster = cluster_listeners_.at(cluster).cluster()};
  }
  const absl::Time start = absl::Now();
  for (const std::string& cluster :
       backend::LeaveWithin(std::move(leaving), config_.leave_timeout)) {
    const absl::Duration waited = absl::Now() - start;
    listeners_[cluster]->Cut();
    listeners_.erase(cluster);  // a later join of the cluster gets a fresh one
    spdlog::error(
        "group={} cluster={} member still leaving after {} (subscribe.leave_timeout {}, "
        "or less in a shutdown): abandoned; its broker client stays allocated until it "
        "finishes, the group's acked prefix since the last commit is delivered again",
        options_.group, cluster, absl::FormatDuration(waited),
        absl::FormatDuration(config_.leave_timeout));
  }
}

void GroupDispatcher::DropSlot(
    std::map<ClusterPartition, std::unique_ptr<PartitionSlot>>::iterator it) {
  metrics_.Lag(it->first.cluster, it->first.partition).Set(0);
  for (const InFlight& in_flight : it->second->ReleaseAll()) ReturnCredit(in_flight);
  slots_.erase(it);
}

std::vector<backend::Cluster*> GroupDispatcher::clusters() const {
  absl::MutexLock lock(&mu_);
  return clusters_;
}

std::vector<std::string> GroupDispatcher::topics() const {
  absl::MutexLock lock(&mu_);
  return topics_;
}

backend::GroupMember* GroupDispatcher::Member(const std::string& cluster) const {
  auto it = members_.find(cluster);
  return it == members_.end() ? nullptr : it->second.get();
}

void GroupDispatcher::ClaimOutbox(Outbox& out) {
  if (flushing_ || outbox_.empty()) return;
  flushing_ = true;
  std::swap(out, outbox_);
}

void GroupDispatcher::Flush(Outbox out) {
  while (!out.empty()) {
    for (auto& [sink, response] : out.sends) sink->Send(std::move(response));
    out.sends.clear();
    for (DeadLetterWrite& write : out.dead_letters) {
      std::weak_ptr<GroupDispatcher> self = weak_from_this();
      // May complete inline: OnDeadLettered takes mu_, which is not held here,
      // and queues what it produces for this loop.
      write.cluster->Publish(
          std::move(write.record),
          [self, cp = write.partition, epoch = write.epoch,
           delivery = write.delivery](backend::PublishOutcome outcome) {
            if (auto dispatcher = self.lock()) {
              dispatcher->OnDeadLettered(cp, epoch, delivery, outcome.status);
            }
          });
    }
    out.dead_letters.clear();
    absl::MutexLock lock(&mu_);
    std::swap(out, outbox_);
    if (out.empty()) flushing_ = false;
  }
}

bool GroupDispatcher::Attach(StreamId id, StreamOptions options,
                             std::shared_ptr<StreamSink> sink) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return false;
    const bool first = streams_.empty();
    streams_.erase(id);
    filters_.AddStream(id, options.filter, options.filter_text);
    streams_.try_emplace(id, std::move(options), std::move(sink));
    idle_since_ = absl::InfiniteFuture();
    UpdateTopics();
    // Records buffered while no stream was attached passed the group filter
    // only.
    if (first) SkipUnwanted();
    Pump(clock_());
    ClaimOutbox(out);
  }
  Flush(std::move(out));
  return true;
}

void GroupDispatcher::Detach(StreamId id) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (streams_.erase(id) == 0) return;
    filters_.RemoveStream(id);
    for (auto& [tp, slot] : slots_) {
      for (int64_t offset : slot->state().ReleaseStream(id)) slot->Release(offset);
    }
    const absl::Time now = clock_();
    if (streams_.empty()) {
      idle_since_ = now;
      RequestTick(now + config_.group_idle_timeout);
    }
    // What only this stream wanted is skipped now (see docs/filters.md);
    // with no stream left, the next one to attach decides.
    if (!streams_.empty()) SkipUnwanted();
    Pump(now);
    ClaimOutbox(out);
  }
  Flush(std::move(out));
}

void GroupDispatcher::UpdateTopics() {
  std::set<std::string> wanted;
  for (const auto& [id, stream] : streams_) {
    wanted.insert(stream.topics.begin(), stream.topics.end());
  }
  // Topics are only added while the member lives: a topic whose streams all
  // closed keeps being fetched (and paused by full buffers) rather than
  // rebalancing the group on every reconnect.
  std::set<std::string> current(topics_.begin(), topics_.end());
  bool grew = false;
  for (const auto& topic : wanted) grew |= current.insert(topic).second;
  if (!grew) return;
  topics_.assign(current.begin(), current.end());
  for (auto& [cluster, member] : members_) member->SetTopics(topics_);
}

template <typename Fn>
std::vector<v1::ReceiptResult> GroupDispatcher::ForEachReceipt(StreamId stream,
                                                               const Receipts& receipts,
                                                               Fn fn) {
  std::vector<v1::ReceiptResult> failures;
  SlotFinder finder(slots_);
  for (const std::string& bytes : receipts) {
    std::optional<WireReceipt> receipt = DecodeReceipt(bytes);
    if (!receipt.has_value()) {
      failures.push_back(Failure(bytes, absl::InvalidArgumentError("malformed receipt")));
      continue;
    }
    if (receipt->stream != stream) {
      failures.push_back(Failure(
          bytes, absl::FailedPreconditionError("receipt was issued on another stream")));
      continue;
    }
    auto it = finder.Find(receipt->cluster, receipt->topic, receipt->partition);
    const Receipt r{receipt->offset, receipt->attempt, receipt->generation};
    if (it == slots_.end() || it->second->epoch() != receipt->partition_epoch ||
        !fn(it->first, *it->second, r)) {
      failures.push_back(
          Failure(bytes, absl::FailedPreconditionError("receipt expired")));
    }
  }
  return failures;
}

template <typename Fn>
void GroupDispatcher::ForEachSpanned(StreamId stream, const Spans& spans, Fn fn,
                                     std::vector<v1::ReceiptResult>& failures) {
  SlotFinder finder(slots_);
  for (const v1::ReceiptSpan& span : spans) {
    const std::optional<WireRun> run = DecodeRun(span.run());
    if (!run.has_value()) {
      failures.push_back(
          SpanFailure(span, absl::InvalidArgumentError("malformed receipt run")));
      continue;
    }
    if (span.count() == 0 || span.first() >= run->count ||
        span.count() > run->count - span.first()) {
      failures.push_back(SpanFailure(
          span, absl::InvalidArgumentError(fmt::format(
                    "span of {} messages from {} is outside its run of {} messages",
                    span.count(), span.first(), run->count))));
      continue;
    }
    if (run->first.stream != stream) {
      failures.push_back(SpanFailure(
          span,
          absl::FailedPreconditionError("receipt run was issued on another stream")));
      continue;
    }
    const WireReceipt& first = run->first;
    auto it = finder.Find(first.cluster, first.topic, first.partition);
    const bool live = it != slots_.end() && it->second->epoch() == first.partition_epoch;
    for (uint32_t i = span.first(); i < span.first() + span.count(); ++i) {
      const Receipt r{first.offset + i, first.attempt, first.generation};
      if (!live || !fn(it->first, *it->second, r)) {
        failures.push_back(Failure(EncodeReceipt(run->At(i)),
                                   absl::FailedPreconditionError("receipt expired")));
      }
    }
  }
}

std::vector<v1::ReceiptResult> GroupDispatcher::Ack(StreamId stream,
                                                    const Receipts& receipts,
                                                    const Spans& spans) {
  Outbox out;
  std::vector<v1::ReceiptResult> failures;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_();
    AckMetrics observed(now);
    const auto ack = [&](const ClusterPartition& cp, PartitionSlot& slot,
                         const Receipt& r) {
      if (slot.state().Ack(r) != ReceiptCheck::kOk) return false;
      const std::optional<InFlight> in_flight = slot.Release(r.offset);
      if (in_flight.has_value()) ReturnCredit(*in_flight);
      const backend::ConsumedRecord* record = slot.Find(r.offset);
      observed.Add(
          slot.metrics(), in_flight.has_value() ? in_flight->delivered : now,
          record != nullptr ? std::optional(record->timestamp_ms) : std::nullopt);
      slot.Forget(r.offset);
      MaybeResumeFetch(cp, slot);
      return true;
    };
    failures = ForEachReceipt(stream, receipts, ack);
    ForEachSpanned(stream, spans, ack, failures);
    observed.Flush();
    Pump(now);
    ClaimOutbox(out);
  }
  Flush(std::move(out));
  return failures;
}

std::vector<v1::ReceiptResult> GroupDispatcher::Nack(StreamId stream,
                                                     const Receipts& receipts,
                                                     absl::Duration delay) {
  Outbox out;
  std::vector<v1::ReceiptResult> failures;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_();
    failures = ForEachReceipt(
        stream, receipts,
        [&](const ClusterPartition&, PartitionSlot& slot, const Receipt& r) {
          if (slot.state().Nack(r, now, delay) != ReceiptCheck::kOk) return false;
          if (delay > absl::ZeroDuration()) RequestTick(now + delay);
          slot.metrics().nacked->Inc();
          ReturnCredit(slot, r.offset);
          return true;
        });
    Pump(now);
    ClaimOutbox(out);
  }
  Flush(std::move(out));
  return failures;
}

std::vector<v1::ReceiptResult> GroupDispatcher::Extend(StreamId stream,
                                                       const Receipts& receipts,
                                                       absl::Duration deadline) {
  absl::MutexLock lock(&mu_);
  const absl::Time until = clock_() + deadline;
  return ForEachReceipt(
      stream, receipts,
      [&](const ClusterPartition&, PartitionSlot& slot, const Receipt& r) {
        if (slot.state().Extend(r, until) != ReceiptCheck::kOk) return false;
        RequestTick(until);
        return true;
      });
}

void GroupDispatcher::UpdateFlow(StreamId id, int64_t max_messages, int64_t max_bytes) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(id);
    if (it == streams_.end()) return;
    it->second.credit.SetLimits(max_messages, max_bytes);
    Pump(clock_());
    ClaimOutbox(out);
  }
  Flush(std::move(out));
}

void GroupDispatcher::ReturnCredit(const InFlight& in_flight) {
  auto stream = streams_.find(in_flight.stream);
  if (stream != streams_.end()) stream->second.credit.Give(in_flight.bytes);
}

void GroupDispatcher::ReturnCredit(PartitionSlot& slot, int64_t offset) {
  if (std::optional<InFlight> in_flight = slot.Release(offset)) ReturnCredit(*in_flight);
}

void GroupDispatcher::MaybeResumeFetch(const ClusterPartition& cp, PartitionSlot& slot) {
  if (paused_ || !slot.ShouldResumeFetch(config_.partition_buffer_bytes)) return;
  if (backend::GroupMember* member = Member(cp.cluster)) member->Resume({cp.partition});
}

void GroupDispatcher::SkipUnwanted() {
  for (auto& [cp, slot] : slots_) {
    if (slot->seeking()) continue;
    int64_t skipped = 0;
    for (int64_t offset : slot->state().WaitingOffsets()) {
      if (filters_.Wanted(*slot->Find(offset))) continue;
      slot->SkipWaiting(offset);
      ++skipped;
    }
    if (skipped == 0) continue;
    slot->metrics().filtered->Inc(static_cast<double>(skipped));
    MaybeResumeFetch(cp, *slot);
  }
}

void GroupDispatcher::Pump(absl::Time now) {
  if (paused_ || streams_.empty() || slots_.empty()) return;
  const uint64_t round = pump_round_++;
  // Start at a rotating stream and partition so no stream or partition is
  // always served first.
  auto stream_it = streams_.begin();
  std::advance(stream_it, round % streams_.size());
  // Records stay in their slots until each stream's responses are written:
  // nothing below forgets or buffers one (a slot's ring moves its records
  // when it grows or is trimmed).
  DeliveryBatchWriter batch;
  for (size_t s = 0; s < streams_.size(); ++s, ++stream_it) {
    if (stream_it == streams_.end()) stream_it = streams_.begin();
    auto& [stream_id, stream] = *stream_it;
    if (!stream.credit.available()) continue;
    auto slot_it = slots_.begin();
    std::advance(slot_it, round % slots_.size());
    for (size_t p = 0; p < slots_.size() && stream.credit.available(); ++p, ++slot_it) {
      if (slot_it == slots_.end()) slot_it = slots_.begin();
      const ClusterPartition& cp = slot_it->first;
      PartitionSlot& slot = *slot_it->second;
      // No member: the cluster is being left (out of the read list), or its
      // member is not added yet (AddMember pumps).
      if (slot.seeking() || !stream.topics.contains(cp.partition.topic) ||
          !members_.contains(cp.cluster)) {
        continue;
      }
      const DeliveryContext context{
          .stream = stream_id, .partition_epoch = slot.epoch(), .cluster = &cp.cluster};
      // Streams with different filters: each takes only what it wants.
      const bool filtered = !filters_.streams_agree();
      auto wanted = [&](int64_t offset) {
        return filters_.WantedBy(stream_id, *slot.Find(offset));
      };
      int64_t from = 0;
      while (stream.credit.available()) {
        const absl::Duration deadline = stream.options.ack_deadline;
        std::optional<Delivery> delivery =
            filtered ? slot.state().Deliver(stream_id, now, deadline, from, wanted)
                     : slot.state().Deliver(stream_id, now, deadline);
        if (!delivery.has_value()) break;
        from = delivery->offset + 1;
        if (options_.max_delivery_attempts > 0 &&
            delivery->attempt > options_.max_delivery_attempts) {
          DeadLetter(cp, slot, *delivery, now);
          continue;
        }
        const backend::ConsumedRecord& record = *slot.Find(delivery->offset);
        const int64_t bytes = RecordBytes(record);
        slot.Hand(delivery->offset,
                  {.stream = stream_id, .bytes = bytes, .delivered = now});
        RequestTick(delivery->deadline);
        stream.credit.Take(bytes);
        (delivery->attempt == 1 ? slot.metrics().delivered : slot.metrics().redelivered)
            ->Inc();
        batch.Add(record, *delivery, context);
        if (batch.bytes() >= kMaxResponseBytes) {
          outbox_.sends.emplace_back(stream.sink, batch.Finish());
        }
      }
    }
    if (batch.size() > 0) outbox_.sends.emplace_back(stream.sink, batch.Finish());
  }
}

void GroupDispatcher::DeadLetter(const ClusterPartition& cp, PartitionSlot& slot,
                                 const Delivery& first_try, absl::Time now) {
  // The node takes the delivery over from the stream it was meant for, with a
  // long deadline: the message stays in flight (its key / partition blocked)
  // until the write is acked, whatever happens to that stream meanwhile.
  slot.state().Reassign(first_try.receipt(), kDeadLetterStream,
                        now + kDeadLetterDeadline);
  RequestTick(now + kDeadLetterDeadline);
  Delivery delivery = first_try;
  delivery.stream = kDeadLetterStream;
  auto cluster =
      std::find_if(clusters_.begin(), clusters_.end(),
                   [&](backend::Cluster* c) { return c->name() == cp.cluster; });
  outbox_.dead_letters.push_back(
      {.cluster = *cluster,
       .partition = cp,
       .epoch = slot.epoch(),
       .delivery = delivery,
       .record =
           dead_letterer_.Build(*slot.Find(first_try.offset), first_try.attempt - 1)});
}

void GroupDispatcher::OnDeadLettered(const ClusterPartition& cp, uint64_t epoch,
                                     const Delivery& delivery,
                                     const absl::Status& status) {
  const backend::TopicPartition& tp = cp.partition;
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    auto it = slots_.find(cp);
    if (it == slots_.end() || it->second->epoch() != epoch) return;
    PartitionSlot& slot = *it->second;
    const absl::Time now = clock_();
    if (!status.ok()) {
      const int failures = slot.DeadLetterFailed(delivery.offset);
      const absl::Duration delay = DeadLetterer::RetryDelay(failures);
      slot.metrics().dead_letter_failures->Inc();
      last_error_ = fmt::format("dead-letter write to {} on cluster {} failed: {}",
                                dead_letterer_.TopicFor(tp.topic), cp.cluster,
                                std::string(status.message()));
      spdlog::warn(
          "group={} dead-letter of {}/{}@{} to topic {} on cluster {} failed ({} in a "
          "row), retrying in {}: {}. The message stays unacked (and its key or "
          "partition blocked) until the write succeeds: create the topic, or fix what "
          "the error names.",
          options_.group, tp.topic, tp.partition, delivery.offset,
          dead_letterer_.TopicFor(tp.topic), cp.cluster, failures,
          absl::FormatDuration(delay), std::string(status.message()));
      slot.state().Nack(delivery.receipt(), now, delay);
      RequestTick(now + delay);
    } else if (slot.state().Ack(delivery.receipt()) == ReceiptCheck::kOk) {
      slot.metrics().dead_lettered->Inc();
      slot.Forget(delivery.offset);
      MaybeResumeFetch(cp, slot);
    }
    Pump(now);
    ClaimOutbox(out);
  }
  Flush(std::move(out));
}

void GroupDispatcher::CommitAll(absl::Time now) {
  std::map<std::string, std::map<backend::TopicPartition, int64_t>> by_cluster;
  for (auto& [cp, slot] : slots_) {
    if (!members_.contains(cp.cluster)) continue;
    if (std::optional<int64_t> offset = slot->TakeCommit(now)) {
      by_cluster[cp.cluster][cp.partition] = *offset;
    }
  }
  // Commit() only queues work for the member thread; results come back
  // through OnCommitted.
  for (auto& [cluster, offsets] : by_cluster) {
    members_.at(cluster)->Commit(std::move(offsets));
  }
}

void GroupDispatcher::OnCommitted(backend::Cluster& cluster,
                                  const backend::TopicPartition& tp, int64_t offset,
                                  const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  auto it = slots_.find({cluster.name(), tp});
  if (it == slots_.end()) return;
  it->second->OnCommitted(offset, status.ok());
  if (!status.ok()) {
    last_error_ =
        fmt::format("cluster {}: {}", cluster.name(), std::string(status.message()));
    spdlog::warn("group={} cluster={} {} (committed again at the next commit interval)",
                 options_.group, cluster.name(), std::string(status.message()));
  }
}

void GroupDispatcher::SetPaused(bool paused) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (paused_ == paused) return;
    paused_ = paused;
    std::map<std::string, std::vector<backend::TopicPartition>> by_cluster;
    for (auto& [cp, slot] : slots_) {
      by_cluster[cp.cluster].push_back(cp.partition);
      slot->SetFetchPaused(paused);
    }
    for (auto& [cluster, partitions] : by_cluster) {
      backend::GroupMember* member = Member(cluster);
      if (member == nullptr) continue;
      paused ? member->Pause(partitions) : member->Resume(partitions);
    }
    Pump(clock_());
    ClaimOutbox(out);
  }
  Flush(std::move(out));
}

void GroupDispatcher::SetGroupFilter(filter::Filter filter, std::string text) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (text == filters_.group_filter_text()) return;
    filters_.SetGroupFilter(std::move(filter), std::move(text));
    SkipUnwanted();
    Pump(clock_());
    ClaimOutbox(out);
  }
  Flush(std::move(out));
}

void GroupDispatcher::SetSeekLedger(control::SeekLedger* seeks) {
  absl::MutexLock lock(&mu_);
  seeks_ = seeks;
  mu_.Await(absl::Condition(
      +[](int* calls) { return *calls == 0; }, &ledger_calls_));
}

std::set<backend::TopicPartition> GroupDispatcher::Seek(
    const std::string& cluster,
    const std::map<backend::TopicPartition, int64_t>& offsets) {
  absl::MutexLock lock(&mu_);
  std::set<backend::TopicPartition> owned;
  for (backend::Cluster* c : clusters_) {
    if (!cluster.empty() && c->name() != cluster) continue;
    for (const auto& [tp, offset] : offsets) {
      auto it = slots_.find({c->name(), tp});
      if (it == slots_.end()) continue;
      StartSeek(it->first, *it->second, offset);
      owned.insert(tp);
    }
  }
  return owned;
}

void GroupDispatcher::StartSeek(const ClusterPartition& cp, PartitionSlot& slot,
                                int64_t offset) {
  // Nothing is delivered or committed for the partition until the member
  // confirms the seek (OnSeekDone); records still arriving from the old
  // position are dropped.
  slot.StartSeek(offset);
  if (backend::GroupMember* member = Member(cp.cluster))
    member->Seek(cp.partition, offset);
}

size_t GroupDispatcher::stream_count() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

absl::Time GroupDispatcher::idle_since() const {
  absl::MutexLock lock(&mu_);
  return idle_since_;
}

GroupSnapshot GroupDispatcher::Snapshot() const {
  absl::MutexLock lock(&mu_);
  GroupSnapshot snapshot{.topics = topics_,
                         .paused = paused_,
                         .group_filter = filters_.group_filter_text(),
                         .last_error = last_error_};
  for (const auto& [id, stream] : streams_) {
    snapshot.streams.push_back({.id = id,
                                .client_id = stream.options.client_id,
                                .peer = stream.options.peer,
                                .outstanding_messages = stream.credit.messages(),
                                .filter = stream.options.filter_text});
  }
  for (const auto& [cp, slot] : slots_) {
    snapshot.partitions.push_back(
        {.cluster = cp.cluster,
         .partition = cp.partition,
         .committed = slot->committed(),
         .commit_offset = slot->state().CommitOffset(),
         .next_fetch = slot->next_fetch(),
         .in_flight = static_cast<int64_t>(slot->state().in_flight()),
         .buffered = static_cast<int64_t>(slot->buffered_records()),
         .fetch_paused = slot->fetch_paused()});
  }
  return snapshot;
}

void GroupDispatcher::OnAssigned(
    backend::Cluster& cluster, const std::vector<backend::AssignedPartition>& assigned) {
  Outbox out;
  std::map<std::string, std::set<backend::TopicPartition>> missed_seeks;  // by seek id
  control::SeekLedger* seeks = nullptr;
  {
    absl::MutexLock lock(&mu_);
    backend::GroupMember* member = Member(cluster.name());
    std::vector<backend::TopicPartition> partitions;
    for (const auto& a : assigned) {
      const ClusterPartition cp{cluster.name(), a.partition};
      auto slot =
          std::make_unique<PartitionSlot>(a.next_offset, options_.ordering, next_epoch++,
                                          &metrics_.For(a.partition.topic));
      slot->SetFetchPaused(paused_);
      // A seek issued while the partition changed owners reached no owner.
      auto missed = seeks_ && member ? seeks_->UnappliedSeek(options_.group,
                                                             cluster.name(), a.partition)
                                     : std::nullopt;
      if (missed) {
        StartSeek(cp, *slot, missed->offset);
        missed_seeks[missed->seek_id].insert(a.partition);
      }
      slots_[cp] = std::move(slot);
      partitions.push_back(a.partition);
    }
    if (paused_ && member && !partitions.empty()) member->Pause(partitions);
    // Commit rounds (and lag) from now on.
    RequestTick(next_commit_);
    seeks = seeks_;
    if (!missed_seeks.empty()) ++ledger_calls_;
    Pump(clock_());
    ClaimOutbox(out);
  }
  // The ledger writes to the control topic (a publish, which may complete
  // inline): outside mu_.
  if (!missed_seeks.empty()) {
    for (auto& [seek_id, moved] : missed_seeks) {
      spdlog::info("group={} seek {}: moving {} newly assigned partitions",
                   options_.group, seek_id, moved.size());
      seeks->ConfirmSeek(options_.group, seek_id, std::move(moved));
    }
    absl::MutexLock lock(&mu_);
    --ledger_calls_;
  }
  Flush(std::move(out));
}

std::map<backend::TopicPartition, int64_t> GroupDispatcher::OnRevoked(
    backend::Cluster& cluster, const std::vector<backend::TopicPartition>& partitions) {
  Outbox out;
  std::map<backend::TopicPartition, int64_t> offsets;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& tp : partitions) {
      auto it = slots_.find({cluster.name(), tp});
      if (it == slots_.end()) continue;
      PartitionSlot& slot = *it->second;
      offsets[tp] = slot.seeking() ? slot.seek_target() : slot.state().CommitOffset();
      DropSlot(it);
    }
    Pump(clock_());
    ClaimOutbox(out);
  }
  Flush(std::move(out));
  return offsets;
}

void GroupDispatcher::OnRecords(backend::Cluster& cluster,
                                std::vector<backend::ConsumedRecord> records) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    backend::GroupMember* member = Member(cluster.name());
    const absl::Time now = clock_();
    SlotFinder finder(slots_);
    for (backend::ConsumedRecord& record : records) {
      auto it = finder.Find(cluster.name(), record.topic, record.partition);
      if (it == slots_.end()) continue;
      PartitionSlot& slot = *it->second;
      // Filtered before buffering: skipped records take no buffer space and
      // no credit, so a sparse filter reads a deep backlog at full speed.
      if (!filters_.Wanted(record)) {
        if (slot.SkipFetched(record.offset)) slot.metrics().filtered->Inc();
        continue;
      }
      if (!slot.Buffer(std::move(record), kBufferedRecordOverhead, now)) continue;
      RequestTick(now + kBorrowedBytesHold);
      if (slot.ShouldPauseFetch(config_.partition_buffer_bytes) && member) {
        member->Pause({it->first.partition});
      }
    }
    Pump(now);
    ClaimOutbox(out);
  }
  Flush(std::move(out));
}

void GroupDispatcher::OnSeekDone(backend::Cluster& cluster,
                                 const backend::TopicPartition& tp, int64_t offset) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    auto it = slots_.find({cluster.name(), tp});
    if (it == slots_.end()) return;
    PartitionSlot& slot = *it->second;
    // The confirmation of an earlier seek, overtaken by a later one (or by
    // a new assignment): records may still come from before the later
    // move, which its own confirmation ends.
    if (!slot.seeking() || offset != slot.seek_target()) return;
    backend::GroupMember* member = Member(cluster.name());
    const absl::Time now = clock_();
    for (const InFlight& in_flight : slot.FinishSeek(offset)) ReturnCredit(in_flight);
    slot.CommitSent(offset, now);
    if (member) member->Commit({{tp, offset}});
    if (!paused_ && slot.fetch_paused()) {
      slot.SetFetchPaused(false);
      if (member) member->Resume({tp});
    }
    spdlog::info("group={} cluster={} {}/{} moved to offset {}", options_.group,
                 cluster.name(), tp.topic, tp.partition, offset);
    Pump(now);
    ClaimOutbox(out);
  }
  Flush(std::move(out));
}

void GroupDispatcher::OnError(backend::Cluster& cluster, const absl::Status& error) {
  spdlog::warn("group={} cluster={} {}", options_.group, cluster.name(),
               std::string(error.message()));
  absl::MutexLock lock(&mu_);
  last_error_ =
      fmt::format("cluster {}: {}", cluster.name(), std::string(error.message()));
}

}  // namespace ferry::subscribe
