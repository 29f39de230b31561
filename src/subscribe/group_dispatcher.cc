#include "subscribe/group_dispatcher.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>

#include "api/convert.h"
#include "subscribe/wire_receipt.h"

namespace ferry::subscribe {
namespace {

// Node-unique ids of partition states; receipts carry them so a receipt from
// an earlier assignment of the same partition never matches.
std::atomic<uint64_t> next_epoch{1};

// Dead-letter publishes are in flight with no stream; their deadline only
// guards against a publish that never answers.
constexpr StreamId kDeadLetterStream = 0;
constexpr absl::Duration kDeadLetterDeadline = absl::Minutes(5);
constexpr absl::Duration kDeadLetterRetryDelay = absl::Seconds(1);
constexpr int kMaxMessagesPerResponse = 100;

// What buffering one record costs beyond its payload: the record struct, the
// map nodes of the buffer and of PartitionState. Counted against
// subscribe.partition_buffer_bytes so that tiny messages cannot pile up
// unbounded (measured: about 400-500 bytes per buffered record).
constexpr int64_t kBufferedRecordOverhead = 512;

int64_t RecordBytes(const backend::ConsumedRecord& record) {
  int64_t bytes = static_cast<int64_t>(record.key.size() + record.value.size());
  for (const auto& h : record.headers) bytes += h.key.size() + h.value.size();
  return bytes;
}

v1::ReceiptResult Failure(const std::string& receipt, absl::Status status) {
  v1::ReceiptResult result;
  result.set_receipt(receipt);
  api::ToProtoStatus(status, /*retryable=*/false, result.mutable_status());
  return result;
}

}  // namespace

struct GroupDispatcher::TopicMetrics {
  metrics::Counter* delivered;
  metrics::Counter* redelivered;
  metrics::Counter* acked;
  metrics::Counter* nacked;
  metrics::Counter* expired;
  metrics::Counter* dead_lettered;
  metrics::Histogram* processing;
  metrics::Histogram* end_to_end;
};

struct GroupDispatcher::Metrics {
  metrics::Gauge& Lag(const backend::TopicPartition& tp) {
    return registry->GetGauge(
        "ferry_subscribe_lag_messages",
        "Messages of a partition owned by this node not yet committed by the group "
        "(high watermark - commit offset); 0 once the partition moved elsewhere.",
        {{"group", group},
         {"topic", tp.topic},
         {"partition", std::to_string(tp.partition)}});
  }

  Metrics(metrics::Registry* registry, std::string group)
      : registry(registry), group(std::move(group)) {}

  TopicMetrics& For(const std::string& topic) {
    auto it = topics.find(topic);
    if (it != topics.end()) return it->second;
    metrics::Labels labels = {{"group", group}, {"topic", topic}};
    auto counter = [&](std::string_view name, std::string_view help) {
      return &registry->GetCounter(name, help, labels);
    };
    TopicMetrics t{
        .delivered = counter("ferry_subscribe_delivered_total",
                             "Messages handed to subscriber streams (first deliveries)."),
        .redelivered = counter("ferry_subscribe_redelivered_total",
                               "Messages handed out again after a nack, an expired "
                               "deadline or a lost stream."),
        .acked = counter("ferry_subscribe_acked_total", "Messages acked by subscribers."),
        .nacked =
            counter("ferry_subscribe_nacked_total", "Messages nacked by subscribers."),
        .expired = counter("ferry_subscribe_deadline_expired_total",
                           "Deliveries whose ack deadline passed."),
        .dead_lettered = counter("ferry_subscribe_dead_lettered_total",
                                 "Messages written to the dead-letter topic after "
                                 "max_delivery_attempts."),
        .processing = &registry->GetHistogram(
            "ferry_subscribe_processing_seconds",
            "Delivery to ack, per message (client processing time).",
            metrics::LatencyBuckets(), labels),
        .end_to_end = &registry->GetHistogram(
            "ferry_subscribe_end_to_end_seconds",
            "Record timestamp (publish time) to ack, per message.",
            metrics::LatencyBuckets(), labels),
    };
    return topics.emplace(topic, t).first->second;
  }

  metrics::Registry* const registry;
  const std::string group;
  std::map<std::string, TopicMetrics> topics;  // guarded by the dispatcher's mu_
};

bool GroupDispatcher::Stream::has_credit() const {
  return outstanding_messages < options.max_outstanding_messages &&
         outstanding_bytes < options.max_outstanding_bytes;
}

GroupDispatcher::GroupDispatcher(GroupOptions options, backend::Cluster* cluster,
                                 const config::SubscribeConfig& config,
                                 metrics::Registry* metrics, control::SeekLedger* seeks)
    : options_(std::move(options)),
      cluster_(cluster),
      config_(config),
      metrics_(std::make_unique<Metrics>(metrics, options_.group)),
      seeks_(seeks) {}

GroupDispatcher::~GroupDispatcher() { Stop(); }

absl::Status GroupDispatcher::Start(const std::vector<std::string>& topics) {
  {
    absl::MutexLock lock(&mu_);
    topics_ = topics;
  }
  auto member = cluster_->JoinGroup({.group = options_.group,
                                     .client_id = options_.client_id,
                                     .topics = topics,
                                     .start = options_.start},
                                    this);
  if (!member.ok()) return member.status();
  absl::MutexLock lock(&mu_);
  member_ = *std::move(member);
  return absl::OkStatus();
}

void GroupDispatcher::Stop() {
  std::unique_ptr<backend::GroupMember> member;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    member = std::move(member_);
  }
  member.reset();  // outside mu_: runs OnRevoked, which commits the acked prefix
}

bool GroupDispatcher::Attach(StreamId id, StreamOptions options,
                             std::shared_ptr<StreamSink> sink) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return false;
  Stream& stream = streams_[id];
  stream.topics = {options.topics.begin(), options.topics.end()};
  stream.options = std::move(options);
  stream.sink = std::move(sink);
  idle_since_ = absl::InfiniteFuture();
  UpdateTopics();
  Pump(absl::Now());
  return true;
}

void GroupDispatcher::Detach(StreamId id) {
  absl::MutexLock lock(&mu_);
  if (streams_.erase(id) == 0) return;
  for (auto& [tp, slot] : slots_) {
    for (int64_t offset : slot->state.ReleaseStream(id)) slot->in_flight.erase(offset);
  }
  if (streams_.empty()) idle_since_ = absl::Now();
  Pump(absl::Now());
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
  if (member_) member_->SetTopics(topics_);
}

template <typename Fn>
std::vector<v1::ReceiptResult> GroupDispatcher::ForEachReceipt(StreamId stream,
                                                               const Receipts& receipts,
                                                               Fn fn) {
  std::vector<v1::ReceiptResult> failures;
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
    auto it = slots_.find({receipt->topic, receipt->partition});
    const Receipt r{receipt->offset, receipt->attempt, receipt->generation};
    if (it == slots_.end() || it->second->epoch != receipt->partition_epoch ||
        !fn(it->first, *it->second, r)) {
      failures.push_back(
          Failure(bytes, absl::FailedPreconditionError("receipt expired")));
    }
  }
  return failures;
}

std::vector<v1::ReceiptResult> GroupDispatcher::Ack(StreamId stream,
                                                    const Receipts& receipts) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  auto failures = ForEachReceipt(
      stream, receipts,
      [&](const backend::TopicPartition& tp, Slot& slot, const Receipt& r) {
        auto in_flight = slot.in_flight.find(r.offset);
        const absl::Time delivered =
            in_flight != slot.in_flight.end() ? in_flight->second.delivered : now;
        if (slot.state.Ack(r) != ReceiptCheck::kOk) return false;
        TopicMetrics& m = *slot.metrics;
        m.acked->Inc();
        m.processing->Observe(absl::ToDoubleSeconds(now - delivered));
        auto record = slot.records.find(r.offset);
        if (record != slot.records.end()) {
          m.end_to_end->Observe(absl::ToDoubleSeconds(
              now - absl::FromUnixMillis(record->second.timestamp_ms)));
        }
        ReturnCredit(slot, r.offset);
        Forget(slot, r.offset);
        MaybeResumeFetch(tp, slot);
        return true;
      });
  Pump(now);
  return failures;
}

std::vector<v1::ReceiptResult> GroupDispatcher::Nack(StreamId stream,
                                                     const Receipts& receipts,
                                                     absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  auto failures =
      ForEachReceipt(stream, receipts,
                     [&](const backend::TopicPartition&, Slot& slot, const Receipt& r) {
                       if (slot.state.Nack(r, now, delay) != ReceiptCheck::kOk)
                         return false;
                       slot.metrics->nacked->Inc();
                       ReturnCredit(slot, r.offset);
                       return true;
                     });
  Pump(now);
  return failures;
}

std::vector<v1::ReceiptResult> GroupDispatcher::Extend(StreamId stream,
                                                       const Receipts& receipts,
                                                       absl::Duration deadline) {
  absl::MutexLock lock(&mu_);
  const absl::Time until = absl::Now() + deadline;
  return ForEachReceipt(
      stream, receipts,
      [&](const backend::TopicPartition&, Slot& slot, const Receipt& r) {
        return slot.state.Extend(r, until) == ReceiptCheck::kOk;
      });
}

void GroupDispatcher::UpdateFlow(StreamId id, int64_t max_messages, int64_t max_bytes) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  if (max_messages > 0) it->second.options.max_outstanding_messages = max_messages;
  if (max_bytes > 0) it->second.options.max_outstanding_bytes = max_bytes;
  Pump(absl::Now());
}

void GroupDispatcher::ReturnCredit(Slot& slot, int64_t offset) {
  auto it = slot.in_flight.find(offset);
  if (it == slot.in_flight.end()) return;
  auto stream = streams_.find(it->second.stream);
  if (stream != streams_.end()) {
    stream->second.outstanding_messages -= 1;
    stream->second.outstanding_bytes -= it->second.bytes;
  }
  slot.in_flight.erase(it);
}

void GroupDispatcher::Forget(Slot& slot, int64_t offset) { slot.records.erase(offset); }

void GroupDispatcher::MaybeResumeFetch(const backend::TopicPartition& tp, Slot& slot) {
  if (!slot.fetch_paused || paused_) return;
  if (slot.state.buffered_bytes() > config_.partition_buffer_bytes / 2) return;
  slot.fetch_paused = false;
  if (member_) member_->Resume({tp});
}

void GroupDispatcher::Pump(absl::Time now) {
  if (paused_ || streams_.empty() || slots_.empty()) return;
  const uint64_t round = pump_round_++;
  // Start at a rotating stream and partition so no stream or partition is
  // always served first.
  auto first_stream = streams_.begin();
  std::advance(first_stream, round % streams_.size());
  for (size_t s = 0; s < streams_.size(); ++s, ++first_stream) {
    if (first_stream == streams_.end()) first_stream = streams_.begin();
    auto& [stream_id, stream] = *first_stream;
    if (!stream.has_credit()) continue;
    v1::SubscribeResponse response;
    v1::MessageBatch* batch = response.mutable_messages();
    auto slot_it = slots_.begin();
    std::advance(slot_it, round % slots_.size());
    for (size_t p = 0; p < slots_.size() && stream.has_credit(); ++p, ++slot_it) {
      if (slot_it == slots_.end()) slot_it = slots_.begin();
      const backend::TopicPartition& tp = slot_it->first;
      Slot& slot = *slot_it->second;
      if (slot.seeking || !stream.topics.contains(tp.topic)) continue;
      while (stream.has_credit()) {
        std::optional<Delivery> delivery =
            slot.state.Deliver(stream_id, now, stream.options.ack_deadline);
        if (!delivery.has_value()) break;
        if (options_.max_delivery_attempts > 0 &&
            delivery->attempt > options_.max_delivery_attempts) {
          DeadLetter(tp, slot, *delivery);
          continue;
        }
        AddMessage(*batch, tp, slot, *delivery, stream_id, now);
        // Moderate responses let the client start on the first messages
        // while later ones are still being sent.
        if (batch->messages_size() >= kMaxMessagesPerResponse) {
          stream.sink->Send(std::move(response));
          response = v1::SubscribeResponse();
          batch = response.mutable_messages();
        }
      }
    }
    if (batch->messages_size() > 0) stream.sink->Send(std::move(response));
  }
}

void GroupDispatcher::AddMessage(v1::MessageBatch& batch,
                                 const backend::TopicPartition& tp, Slot& slot,
                                 const Delivery& delivery, StreamId stream_id,
                                 absl::Time now) {
  const backend::ConsumedRecord& record = slot.records.at(delivery.offset);
  const int64_t bytes = RecordBytes(record);
  slot.in_flight[delivery.offset] = {
      .stream = stream_id, .bytes = bytes, .delivered = now};
  Stream& stream = streams_.at(stream_id);
  stream.outstanding_messages += 1;
  stream.outstanding_bytes += bytes;
  (delivery.attempt == 1 ? slot.metrics->delivered : slot.metrics->redelivered)->Inc();

  v1::ReceivedMessage& out = *batch.add_messages();
  out.set_receipt(EncodeReceipt({.stream = stream_id,
                                 .partition_epoch = slot.epoch,
                                 .generation = delivery.generation,
                                 .partition = tp.partition,
                                 .attempt = delivery.attempt,
                                 .offset = delivery.offset,
                                 .topic = tp.topic}));
  out.set_topic(tp.topic);
  out.set_partition(tp.partition);
  out.set_offset(delivery.offset);
  out.set_key(record.key);
  out.set_value(record.value);
  for (const auto& h : record.headers) {
    v1::Header& header = *out.add_headers();
    header.set_key(h.key);
    header.set_value(h.value);
    if (h.key == "ferry.id") out.set_id(h.value);
  }
  api::FromUnixMillis(record.timestamp_ms, out.mutable_publish_time());
  out.set_delivery_attempt(delivery.attempt);
  out.set_cluster(cluster_->name());
}

void GroupDispatcher::DeadLetter(const backend::TopicPartition& tp, Slot& slot,
                                 const Delivery& first_try) {
  // The node takes the delivery over from the stream it was meant for, with a
  // long deadline: the message stays in flight (its key / partition blocked)
  // until the write is acked, whatever happens to that stream meanwhile.
  slot.state.Reassign(first_try.receipt(), kDeadLetterStream,
                      absl::Now() + kDeadLetterDeadline);
  const backend::ConsumedRecord& record = slot.records.at(first_try.offset);
  backend::Record out{.topic = options_.dead_letter_topic.empty()
                                   ? tp.topic + ".dlq"
                                   : options_.dead_letter_topic,
                      .key = record.key,
                      .value = record.value,
                      .headers = record.headers,
                      .timestamp_ms = record.timestamp_ms};
  out.headers.push_back({"ferry.dlq.topic", tp.topic});
  out.headers.push_back({"ferry.dlq.partition", std::to_string(tp.partition)});
  out.headers.push_back({"ferry.dlq.offset", std::to_string(first_try.offset)});
  out.headers.push_back({"ferry.dlq.group", options_.group});
  out.headers.push_back({"ferry.dlq.attempts", std::to_string(first_try.attempt - 1)});
  std::weak_ptr<GroupDispatcher> self = weak_from_this();
  const uint64_t epoch = slot.epoch;
  Delivery delivery = first_try;
  delivery.stream = kDeadLetterStream;
  cluster_->Publish(std::move(out),
                    [self, tp, epoch, delivery](backend::PublishOutcome outcome) {
                      if (auto dispatcher = self.lock()) {
                        dispatcher->OnDeadLettered(tp, epoch, delivery, outcome.status);
                      }
                    });
}

void GroupDispatcher::OnDeadLettered(const backend::TopicPartition& tp, uint64_t epoch,
                                     const Delivery& delivery,
                                     const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(tp);
  if (it == slots_.end() || it->second->epoch != epoch) return;
  Slot& slot = *it->second;
  if (!status.ok()) {
    spdlog::warn("group={} dead-letter of {}/{}@{} failed, retrying: {}", options_.group,
                 tp.topic, tp.partition, delivery.offset, std::string(status.message()));
    slot.state.Nack(delivery.receipt(), absl::Now(), kDeadLetterRetryDelay);
    return;
  }
  if (slot.state.Ack(delivery.receipt()) != ReceiptCheck::kOk) return;
  slot.metrics->dead_lettered->Inc();
  Forget(slot, delivery.offset);
  MaybeResumeFetch(tp, slot);
  Pump(absl::Now());
}

void GroupDispatcher::Tick(absl::Time now) {
  absl::MutexLock lock(&mu_);
  for (auto& [tp, slot] : slots_) {
    std::vector<int64_t> expired = slot->state.ExpireDeadlines(now);
    for (int64_t offset : expired) ReturnCredit(*slot, offset);
    if (!expired.empty()) slot->metrics->expired->Inc(expired.size());
  }
  if (now >= next_commit_) {
    CommitAll();
    next_commit_ = now + config_.commit_interval;
    if (member_) {
      for (auto& [tp, slot] : slots_) {
        const int64_t high = member_->HighWatermark(tp);
        if (high >= 0) {
          metrics_->Lag(tp).Set(static_cast<double>(
              std::max<int64_t>(0, high - slot->state.CommitOffset())));
        }
      }
    }
  }
  Pump(now);
}

void GroupDispatcher::CommitAll() {
  std::map<backend::TopicPartition, int64_t> offsets;
  for (auto& [tp, slot] : slots_) {
    if (slot->seeking) continue;
    const int64_t offset = slot->state.CommitOffset();
    if (offset != slot->committed) {
      offsets[tp] = offset;
      slot->committed = offset;
    }
  }
  if (!offsets.empty() && member_) member_->Commit(std::move(offsets));
}

void GroupDispatcher::SetPaused(bool paused) {
  absl::MutexLock lock(&mu_);
  if (paused_ == paused) return;
  paused_ = paused;
  std::vector<backend::TopicPartition> partitions;
  for (auto& [tp, slot] : slots_) {
    partitions.push_back(tp);
    slot->fetch_paused = paused;
  }
  if (member_ && !partitions.empty()) {
    paused ? member_->Pause(partitions) : member_->Resume(partitions);
  }
  Pump(absl::Now());
}

void GroupDispatcher::SetSeekLedger(control::SeekLedger* seeks) {
  absl::MutexLock lock(&mu_);
  seeks_ = seeks;
}

std::set<backend::TopicPartition> GroupDispatcher::Seek(
    const std::map<backend::TopicPartition, int64_t>& offsets) {
  absl::MutexLock lock(&mu_);
  std::set<backend::TopicPartition> owned;
  for (const auto& [tp, offset] : offsets) {
    auto it = slots_.find(tp);
    if (it == slots_.end()) continue;
    StartSeek(tp, *it->second, offset);
    owned.insert(tp);
  }
  return owned;
}

void GroupDispatcher::StartSeek(const backend::TopicPartition& tp, Slot& slot,
                                int64_t offset) {
  // Nothing is delivered or committed for the partition until the member
  // confirms the seek (OnSeekDone); records still arriving from the old
  // position are dropped.
  slot.seeking = true;
  slot.seek_target = offset;
  if (member_) member_->Seek(tp, offset);
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
  GroupSnapshot snapshot{.topics = topics_, .paused = paused_, .last_error = last_error_};
  for (const auto& [id, stream] : streams_) {
    snapshot.streams.push_back({.id = id,
                                .client_id = stream.options.client_id,
                                .outstanding_messages = stream.outstanding_messages});
  }
  for (const auto& [tp, slot] : slots_) {
    snapshot.partitions.push_back(
        {.partition = tp,
         .committed = slot->committed,
         .commit_offset = slot->state.CommitOffset(),
         .next_fetch = slot->next_fetch,
         .in_flight = static_cast<int64_t>(slot->state.in_flight()),
         .buffered = static_cast<int64_t>(slot->records.size()),
         .fetch_paused = slot->fetch_paused});
  }
  return snapshot;
}

void GroupDispatcher::OnAssigned(
    const std::vector<backend::AssignedPartition>& assigned) {
  absl::MutexLock lock(&mu_);
  std::vector<backend::TopicPartition> partitions;
  std::map<std::string, std::set<backend::TopicPartition>> missed_seeks;  // by seek id
  for (const auto& a : assigned) {
    auto slot = std::make_unique<Slot>(a.next_offset, options_.ordering, next_epoch++,
                                       &metrics_->For(a.partition.topic));
    slot->next_fetch = a.next_offset;
    slot->fetch_paused = paused_;
    // A seek issued while the partition changed owners reached no owner.
    auto missed = seeks_ && member_ ? seeks_->UnappliedSeek(options_.group, a.partition)
                                    : std::nullopt;
    if (missed) {
      StartSeek(a.partition, *slot, missed->offset);
      missed_seeks[missed->seek_id].insert(a.partition);
    }
    slots_[a.partition] = std::move(slot);
    partitions.push_back(a.partition);
  }
  if (paused_ && member_ && !partitions.empty()) member_->Pause(partitions);
  for (auto& [seek_id, moved] : missed_seeks) {
    spdlog::info("group={} seek {}: moving {} newly assigned partitions", options_.group,
                 seek_id, moved.size());
    seeks_->ConfirmSeek(options_.group, seek_id, std::move(moved));
  }
  Pump(absl::Now());
}

std::map<backend::TopicPartition, int64_t> GroupDispatcher::OnRevoked(
    const std::vector<backend::TopicPartition>& partitions) {
  absl::MutexLock lock(&mu_);
  std::map<backend::TopicPartition, int64_t> offsets;
  for (const auto& tp : partitions) {
    auto it = slots_.find(tp);
    if (it == slots_.end()) continue;
    Slot& slot = *it->second;
    offsets[tp] = slot.seeking ? slot.seek_target : slot.state.CommitOffset();
    metrics_->Lag(tp).Set(0);
    while (!slot.in_flight.empty()) ReturnCredit(slot, slot.in_flight.begin()->first);
    slots_.erase(it);
  }
  Pump(absl::Now());
  return offsets;
}

void GroupDispatcher::OnRecords(std::vector<backend::ConsumedRecord> records) {
  absl::MutexLock lock(&mu_);
  for (backend::ConsumedRecord& record : records) {
    auto it = slots_.find({record.topic, record.partition});
    if (it == slots_.end() || it->second->seeking) continue;
    Slot& slot = *it->second;
    const int64_t offset = record.offset;
    const int64_t bytes = RecordBytes(record);
    FetchedMessage fetched{
        .offset = offset,
        .key = options_.ordering == OrderingMode::kKey ? record.key : "",
        .bytes =
            bytes + kBufferedRecordOverhead + static_cast<int64_t>(record.topic.size())};
    if (!slot.state.Append(std::move(fetched))) continue;
    slot.next_fetch = offset + 1;
    slot.records.emplace_hint(slot.records.end(), offset, std::move(record));
    if (!slot.fetch_paused &&
        slot.state.buffered_bytes() > config_.partition_buffer_bytes) {
      slot.fetch_paused = true;
      if (member_) member_->Pause({it->first});
    }
  }
  Pump(absl::Now());
}

void GroupDispatcher::OnSeekDone(const backend::TopicPartition& tp, int64_t offset) {
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(tp);
  if (it == slots_.end()) return;
  Slot& slot = *it->second;
  while (!slot.in_flight.empty()) ReturnCredit(slot, slot.in_flight.begin()->first);
  slot.records.clear();
  slot.state.Reset(offset);
  slot.seeking = false;
  slot.next_fetch = offset;
  slot.committed = offset;
  if (member_) member_->Commit({{tp, offset}});
  if (slot.fetch_paused && !paused_) {
    slot.fetch_paused = false;
    if (member_) member_->Resume({tp});
  }
  spdlog::info("group={} {}/{} moved to offset {}", options_.group, tp.topic,
               tp.partition, offset);
  Pump(absl::Now());
}

void GroupDispatcher::OnError(const absl::Status& error) {
  spdlog::warn("group={} {}", options_.group, std::string(error.message()));
  absl::MutexLock lock(&mu_);
  last_error_ = std::string(error.message());
}

}  // namespace ferry::subscribe
