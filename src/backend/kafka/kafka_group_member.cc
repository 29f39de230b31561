#include "backend/kafka/kafka_group_member.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>

#include "backend/kafka/errors.h"
#include "backend/kafka/fetch_arena.h"
#include "backend/kafka/message_headers.h"

namespace ferry::backend::kafka {
namespace {

// What librdkafka writes to the wake-up eventfd (8 bytes, as eventfd wants).
constexpr uint64_t kWakeUp = 1;
// Records read from one partition's queue per call.
constexpr size_t kReadBatch = 256;
// How many messages ahead Take() prefetches the bytes after a message's
// value (see Take).
constexpr size_t kPrefetchAhead = 8;
// How soon a refused seek is tried again: the fetcher is about to start, or
// something failed (logged).
constexpr absl::Duration kSeekRetryStarting = absl::Milliseconds(10);
constexpr absl::Duration kSeekRetryFailed = absl::Milliseconds(500);
// How often partitions read in full batches get their leader woken up: a
// twentieth of librdkafka's own one-second re-check, for one small request per
// leader and interval. Measured (consume_bench, 10^6 x 1 KiB, 4 partitions):
// 158k msgs/s without, 275k with.
constexpr absl::Duration kNudgeInterval = absl::Milliseconds(50);
// How soon a standalone member looks up its topics again after a failure
// (a topic missing, the cluster unreachable).
constexpr absl::Duration kStandaloneRetry = absl::Seconds(1);
// librdkafka's fetch.wait.max.ms unless the cluster's properties set it: how
// long the broker may hold a fetch that found no data. A partition whose
// queue is full is left out of a fetch, so while the member catches up on
// some partitions and the others have nothing new, a fetch of only those
// others is held this long, with the connection, and the full partitions
// wait for it however soon they have room (a nudge queues behind it).
// librdkafka's 500 ms stalled the end of uneven backlog drains by up to
// half a second (bench/RESULTS.md, branch dcons6); 100 ms bounds that stall
// at a fifth for ten idle fetches a second per broker instead of two.
constexpr char kFetchWaitMaxMs[] = "100";

PartitionListPtr ToList(const std::map<TopicPartition, int64_t>& offsets) {
  PartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& [tp, offset] : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)
        ->offset = offset;
  }
  return list;
}

std::vector<TopicPartition> FromList(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition});
  }
  return out;
}

// Messages read in one call, destroyed together once no record refers to
// any of them: the records share this through aliasing pointers, so taking a
// record costs no allocation of its own.
struct MessageBatch {
  // Destroyed after the messages (members go after the destructor's body).
  std::shared_ptr<rd_kafka_t> handle;
  std::vector<rd_kafka_message_t*> messages = {};

  ~MessageBatch() {
    for (rd_kafka_message_t* message : messages) rd_kafka_message_destroy(message);
  }
};

std::string_view View(const void* data, size_t size) {
  return data == nullptr ? std::string_view()
                         : std::string_view(static_cast<const char*>(data), size);
}

// A record whose key, value and headers are views into `message`, which
// `bytes` keeps alive.
ConsumedRecord ToRecord(rd_kafka_message_t* message, std::shared_ptr<const void> bytes) {
  ConsumedRecord record{.topic = rd_kafka_topic_name(message->rkt),
                        .partition = message->partition,
                        .offset = message->offset,
                        .key = View(message->key, message->key_len),
                        .value = View(message->payload, message->len),
                        .timestamp_ms = rd_kafka_message_timestamp(message, nullptr),
                        .bytes = std::move(bytes)};
  // The message owns the parsed headers: their names and values live as long
  // as it does. Most records have none; asking costs two allocations anyway.
  static const int kLibraryVersion = rd_kafka_version();
  rd_kafka_headers_t* headers = nullptr;
  if (MayHaveHeaders(*message, kLibraryVersion) &&
      rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      record.headers.push_back({name, View(value, size)});
    }
  }
  return record;
}

void OnLog(const rd_kafka_t*, int level, const char* facility, const char* buf) {
  spdlog::debug("librdkafka consumer level={} facility={} {}", level, facility, buf);
}

}  // namespace

KafkaGroupMember::KafkaGroupMember(const GroupMemberOptions& member_options,
                                   const Options& options, GroupMemberListener* listener)
    : member_options_(member_options), options_(options), listener_(listener) {}

absl::StatusOr<std::unique_ptr<KafkaGroupMember>> KafkaGroupMember::Join(
    const Properties& properties, std::string_view key_prefix,
    const GroupMemberOptions& member_options, const Options& options,
    GroupMemberListener* listener, ClientFactory& factory) {
  Properties with_defaults = properties;
  with_defaults.try_emplace("fetch.wait.max.ms", kFetchWaitMaxMs);
  auto conf = BuildConf(with_defaults, key_prefix);
  if (!conf.ok()) return conf.status();
  const int64_t prefetch_bytes =
      member_options.max_prefetch_bytes > 0
          ? std::max<int64_t>(member_options.max_prefetch_bytes, 1024)
          : int64_t{8} << 20;
  Properties fixed = {
      {"group.id", member_options.group},
      {"client.id",
       member_options.client_id.empty() ? "ferryd" : member_options.client_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "false"},
      {"partition.assignment.strategy", "roundrobin"},
      {"session.timeout.ms",
       std::to_string(absl::ToInt64Milliseconds(options.session_timeout))},
      {"heartbeat.interval.ms",
       std::to_string(absl::ToInt64Milliseconds(options.session_timeout) / 5)},
      // What librdkafka prefetches per partition (each partition's queue is
      // read separately, so the limit applies per partition); the subscribe
      // path bounds what it buffers above this. With fetch nudges (see the
      // header) 8 MiB drained as fast as 16 MiB did (consume_bench: 4 MiB
      // 228-251k msgs/s, 8 MiB 251-258k) at 150 MiB instead of 200 MiB.
      {"queued.max.messages.kbytes", std::to_string(prefetch_bytes / 1024)},
      {"fetch.message.max.bytes",
       std::to_string(std::min<int64_t>(prefetch_bytes, 1 << 20))},
  };
  if (member_options.fail_out_of_range) fixed["auto.offset.reset"] = "error";
  if (member_options.max_prefetch_bytes > 0) {
    // One fetch response holds every partition's share and stays allocated
    // while any record of it is queued: at most one partition's prefetch
    // (librdkafka raises it to message.max.bytes, 1 MB by default).
    fixed["fetch.max.bytes"] = std::to_string(std::max<int64_t>(prefetch_bytes, 1 << 20));
  }
  for (const auto& [key, value] : fixed) {
    char error[512];
    if (rd_kafka_conf_set(conf->get(), key.c_str(), value.c_str(), error,
                          sizeof(error)) != RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(fmt::format("consumer {}: {}", key, error));
    }
  }
  std::unique_ptr<KafkaGroupMember> member(
      new KafkaGroupMember(member_options, options, listener));
  member->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (member->wake_fd_ < 0) {
    return absl::InternalError(fmt::format("consumer: eventfd: {}", strerror(errno)));
  }
  rd_kafka_conf_set_opaque(conf->get(), member.get());
  rd_kafka_conf_set_rebalance_cb(conf->get(), &KafkaGroupMember::OnRebalance);
  rd_kafka_conf_set_error_cb(conf->get(), &KafkaGroupMember::OnError);
  rd_kafka_conf_set_offset_commit_cb(conf->get(), &KafkaGroupMember::OnCommitted);
  rd_kafka_conf_set_log_cb(conf->get(), &OnLog);
  UseFetchArena(conf->get());
  auto handle = factory.Create(RD_KAFKA_CONSUMER, *std::move(conf));
  if (!handle.ok()) return handle.status();
  member->handle_ = *std::move(handle);
  rd_kafka_poll_set_consumer(member->handle_.get());
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(member->handle_.get());
  rd_kafka_queue_io_event_enable(queue, member->wake_fd_, &kWakeUp, sizeof(kWakeUp));
  rd_kafka_queue_destroy(queue);
  if (member_options.standalone) {
    member->standalone_topics_ = member_options.topics;
  } else {
    member->Subscribe(member_options.topics);
  }
  member->thread_ = std::thread([m = member.get()] { m->RunLoop(); });
  member->nudger_ = std::thread([m = member.get()] { m->RunNudger(); });
  return member;
}

KafkaGroupMember::~KafkaGroupMember() {
  {
    absl::MutexLock lock(&nudge_mu_);
    nudger_stopping_ = true;
  }
  if (nudger_.joinable()) nudger_.join();
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
  if (handle_ != nullptr) {
    rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(handle_.get());
    rd_kafka_queue_io_event_enable(queue, -1, nullptr, 0);
    rd_kafka_queue_destroy(queue);
  }
  if (wake_fd_ >= 0) close(wake_fd_);
}

void KafkaGroupMember::Wake() {
  [[maybe_unused]] ssize_t written = write(wake_fd_, &kWakeUp, sizeof(kWakeUp));
}

void KafkaGroupMember::WaitForWork(absl::Duration timeout) {
  pollfd fd{.fd = wake_fd_, .events = POLLIN, .revents = 0};
  if (poll(&fd, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) > 0) {
    uint64_t count = 0;
    [[maybe_unused]] ssize_t got = read(wake_fd_, &count, sizeof(count));
  }
}

void KafkaGroupMember::NudgeFetch(const TopicPartition& partition) {
  absl::MutexLock lock(&nudge_mu_);
  nudge_.insert(partition);
}

void KafkaGroupMember::RunNudger() {
  const int timeout_ms =
      static_cast<int>(absl::ToInt64Milliseconds(options_.request_timeout));
  absl::MutexLock lock(&nudge_mu_);
  while (
      !nudge_mu_.AwaitWithTimeout(absl::Condition(&nudger_stopping_), kNudgeInterval)) {
    if (nudge_.empty()) continue;
    PartitionListPtr list(
        rd_kafka_topic_partition_list_new(static_cast<int>(nudge_.size())));
    for (const TopicPartition& tp : nudge_) {
      rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)
          ->offset = RD_KAFKA_OFFSET_END;
    }
    nudge_.clear();
    nudge_mu_.Unlock();
    // One ListOffsets request per leader; only sending it matters, the
    // answer (latest offsets) is not needed.
    rd_kafka_offsets_for_times(handle_.get(), list.get(), timeout_ms);
    nudge_mu_.Lock();
  }
}

bool KafkaGroupMember::stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

void KafkaGroupMember::Enqueue(Command command) {
  {
    absl::MutexLock lock(&mu_);
    commands_.push_back(std::move(command));
  }
  Wake();
}

void KafkaGroupMember::SetTopics(std::vector<std::string> topics) {
  Enqueue([this, topics = std::move(topics)] {
    if (member_options_.standalone) {
      standalone_topics_ = topics;
      next_standalone_try_ = absl::InfinitePast();
    } else {
      Subscribe(topics);
    }
  });
}

void KafkaGroupMember::Commit(std::map<TopicPartition, int64_t> offsets) {
  if (member_options_.standalone) return;
  const uint64_t revokes = revokes_.load();
  Enqueue([this, revokes, offsets = std::move(offsets)]() mutable {
    // Offsets computed before a revoke are the old owner's: they must not
    // move the position back, even if the partition came back to this member.
    if (revokes != revokes_.load()) return;
    std::erase_if(offsets,
                  [this](const auto& e) { return !assigned_.contains(e.first); });
    if (!offsets.empty()) CommitNow(offsets, /*async=*/true);
  });
}

void KafkaGroupMember::Pause(const std::vector<TopicPartition>& partitions) {
  Enqueue([this, partitions] {
    for (const auto& tp : partitions) {
      if (assigned_.contains(tp)) paused_.insert(tp);
    }
  });
}

void KafkaGroupMember::Resume(const std::vector<TopicPartition>& partitions) {
  Enqueue([this, partitions] {
    for (const auto& tp : partitions) paused_.erase(tp);
  });
}

void KafkaGroupMember::Seek(const TopicPartition& partition, int64_t offset) {
  Enqueue([this, partition, offset] {
    if (!assigned_.contains(partition)) return;
    seeks_[partition] = {.offset = offset, .next_try = absl::InfinitePast()};
  });
}

void KafkaGroupMember::RunSeeks() {
  const absl::Time now = absl::Now();
  std::map<TopicPartition, int64_t> due;
  for (const auto& [partition, seek] : seeks_) {
    if (seek.next_try <= now) due[partition] = seek.offset;
  }
  if (due.empty()) return;
  PartitionListPtr list = ToList(due);
  rd_kafka_error_t* error = rd_kafka_seek_partitions(
      handle_.get(), list.get(),
      static_cast<int>(absl::ToInt64Milliseconds(options_.request_timeout)));
  const rd_kafka_resp_err_t call_err =
      error != nullptr ? rd_kafka_error_code(error) : RD_KAFKA_RESP_ERR_NO_ERROR;
  if (error != nullptr) rd_kafka_error_destroy(error);
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& p = list->elems[i];
    auto it = seeks_.find({p.topic, p.partition});
    const auto& [partition, seek] = *it;
    const rd_kafka_resp_err_t err =
        call_err != RD_KAFKA_RESP_ERR_NO_ERROR ? call_err : p.err;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      // librdkafka drops records fetched before the seek, so every record
      // delivered after this call comes from the new position.
      listener_->OnSeekDone(partition, seek.offset);
      seeks_.erase(it);
      continue;
    }
    // A fetcher that has not started yet (librdkafka defers that while the
    // previous assignment's fetchers stop or commits are in flight) refuses
    // the seek with __STATE; that passes by itself. Anything else is retried
    // too, or the partition would stay between two positions for good.
    const bool starting =
        err == RD_KAFKA_RESP_ERR__STATE || err == RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS;
    if (!starting) {
      listener_->OnError(
          KafkaStatus(err, fmt::format("seek {}/{} to {} (retrying)", partition.topic,
                                       partition.partition, seek.offset)));
    }
    it->second.next_try = now + (starting ? kSeekRetryStarting : kSeekRetryFailed);
  }
}

absl::Duration KafkaGroupMember::IdleWait() const {
  absl::Duration wait = absl::Milliseconds(100);
  const absl::Time now = absl::Now();
  for (const auto& [partition, seek] : seeks_) {
    wait = std::min(wait, std::max(absl::ZeroDuration(), seek.next_try - now));
  }
  return wait;
}

int64_t KafkaGroupMember::HighWatermark(const TopicPartition& partition) const {
  int64_t low = -1, high = -1;
  // Cached from fetch responses: no request, safe from any thread.
  if (rd_kafka_get_watermark_offsets(handle_.get(), partition.topic.c_str(),
                                     partition.partition, &low,
                                     &high) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return -1;
  }
  return high;
}

void KafkaGroupMember::Subscribe(const std::vector<std::string>& topics) {
  PartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  for (const auto& topic : topics) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  }
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(handle_.get(), list.get());
      err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    listener_->OnError(KafkaStatus(err, "subscribe"));
  }
}

void KafkaGroupMember::AssignStandalone() {
  if (!standalone_topics_.has_value() || absl::Now() < next_standalone_try_) return;
  const int timeout_ms =
      static_cast<int>(absl::ToInt64Milliseconds(options_.request_timeout));
  PartitionListPtr wanted(rd_kafka_topic_partition_list_new(0));
  for (const std::string& topic : *standalone_topics_) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(handle_.get(), topic.c_str(), nullptr);
    if (rkt == nullptr) {
      listener_->OnError(
          KafkaStatus(rd_kafka_last_error(), fmt::format("topic {} (retrying)", topic)));
      next_standalone_try_ = absl::Now() + kStandaloneRetry;
      return;
    }
    const rd_kafka_metadata_t* metadata = nullptr;
    rd_kafka_resp_err_t err =
        rd_kafka_metadata(handle_.get(), /*all_topics=*/0, rkt, &metadata, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      err = metadata->topic_cnt == 1 ? metadata->topics[0].err
                                     : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < metadata->topics[0].partition_cnt; ++i) {
          const int32_t id = metadata->topics[0].partitions[i].id;
          // Only the chosen ones when there are: another may have no leader,
          // and resolving its start position would hold up the assignment.
          if (!IsChosen(member_options_.partitions, {topic, id})) continue;
          rd_kafka_topic_partition_list_add(wanted.get(), topic.c_str(), id);
        }
      }
      rd_kafka_metadata_destroy(metadata);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      listener_->OnError(
          KafkaStatus(err, fmt::format("partitions of {} (retrying)", topic)));
      next_standalone_try_ = absl::Now() + kStandaloneRetry;
      return;
    }
  }
  standalone_topics_.reset();
  RevokeAll();
  if (wanted->cnt > 0) Assign(wanted.get());
}

void KafkaGroupMember::RevokeAll() {
  if (assigned_.empty()) return;
  std::map<TopicPartition, int64_t> owned;
  for (const TopicPartition& tp : assigned_) owned[tp] = RD_KAFKA_OFFSET_INVALID;
  Revoke(ToList(owned).get());
}

void KafkaGroupMember::CommitNow(const std::map<TopicPartition, int64_t>& offsets,
                                 bool async) {
  PartitionListPtr list = ToList(offsets);
  rd_kafka_resp_err_t err = rd_kafka_commit(handle_.get(), list.get(), async ? 1 : 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // The offset commit callback may report the same failure again (sync
    // commits); a repeated failure only makes the listener commit again.
    for (const auto& [tp, offset] : offsets) {
      listener_->OnCommitted(tp, offset, KafkaStatus(err, "commit"));
    }
    spdlog::warn("group={} commit failed: {}", member_options_.group,
                 rd_kafka_err2str(err));
  }
}

void KafkaGroupMember::OnCommitted(rd_kafka_t*, rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t* offsets,
                                   void* opaque) {
  // Served by rd_kafka_consumer_poll (the main queue is forwarded to the
  // consumer queue), so this runs on the member thread, for asynchronous and
  // synchronous commits alike.
  auto* self = static_cast<KafkaGroupMember*>(opaque);
  if (offsets == nullptr) return;
  for (int i = 0; i < offsets->cnt; ++i) {
    const rd_kafka_topic_partition_t& p = offsets->elems[i];
    const rd_kafka_resp_err_t partition_err =
        p.err != RD_KAFKA_RESP_ERR_NO_ERROR ? p.err : err;
    self->listener_->OnCommitted(
        {p.topic, p.partition}, p.offset,
        KafkaStatus(partition_err,
                    fmt::format("commit {}/{} at {}", p.topic, p.partition, p.offset)));
  }
}

void KafkaGroupMember::OnError(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaGroupMember*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) return;
  self->listener_->OnError(absl::UnavailableError(
      fmt::format("group {}: {}", self->member_options_.group, reason)));
}

void KafkaGroupMember::OnRebalance(rd_kafka_t*, rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t* partitions,
                                   void* opaque) {
  auto* self = static_cast<KafkaGroupMember*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    self->Assign(partitions);
  } else {
    self->Revoke(partitions);
  }
}

bool KafkaGroupMember::ResolvePositions(rd_kafka_topic_partition_list_t* partitions) {
  const int timeout_ms =
      static_cast<int>(absl::ToInt64Milliseconds(options_.request_timeout));
  // A standalone member has no committed offsets (and asking would name its
  // group to the broker): every partition starts at the start position.
  while (!member_options_.standalone && !stopping()) {
    rd_kafka_resp_err_t err = rd_kafka_committed(handle_.get(), partitions, timeout_ms);
    // A partition's own error leaves its offset unset, which must not read
    // as "nothing committed": that would start it at the start position and
    // commit that, skipping what the group had not consumed.
    for (int i = 0; i < partitions->cnt && err == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      err = partitions->elems[i].err;
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
    listener_->OnError(KafkaStatus(err, "read committed offsets"));
    absl::SleepFor(absl::Milliseconds(200));
  }
  std::map<TopicPartition, int64_t> resolved;
  for (int i = 0; i < partitions->cnt && !stopping(); ++i) {
    rd_kafka_topic_partition_t& p = partitions->elems[i];
    // Standalone only (JoinGroup: CheckReaderOptions). rd_kafka_assign starts
    // the fetcher there: nothing before it is delivered (a fetched batch may
    // begin earlier; librdkafka skips those).
    auto start = member_options_.start_offsets.find({p.topic, p.partition});
    if (start != member_options_.start_offsets.end()) p.offset = start->second;
    if (p.offset >= 0) continue;
    while (!stopping()) {
      int64_t low = 0, high = 0;
      rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
          handle_.get(), p.topic, p.partition, &low, &high, timeout_ms);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR &&
          member_options_.start.kind == StartPosition::Kind::kTimestamp) {
        PartitionListPtr query(rd_kafka_topic_partition_list_new(1));
        rd_kafka_topic_partition_list_add(query.get(), p.topic, p.partition)->offset =
            member_options_.start.timestamp_ms;
        err = rd_kafka_offsets_for_times(handle_.get(), query.get(), timeout_ms);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = query->elems[0].err;
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          high = query->elems[0].offset >= 0 ? query->elems[0].offset : high;
        }
      }
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        p.offset =
            member_options_.start.kind == StartPosition::Kind::kEarliest ? low : high;
        resolved[{p.topic, p.partition}] = p.offset;
        break;
      }
      listener_->OnError(KafkaStatus(
          err, fmt::format("resolve start position of {}/{}", p.topic, p.partition)));
      absl::SleepFor(absl::Milliseconds(200));
    }
  }
  if (!resolved.empty() && !member_options_.standalone) {
    CommitNow(resolved, /*async=*/false);
  }
  return !stopping();
}

void KafkaGroupMember::Assign(rd_kafka_topic_partition_list_t* partitions) {
  if (!ResolvePositions(partitions)) {
    rd_kafka_assign(handle_.get(), nullptr);
    return;
  }
  // Before the assignment starts fetching, so no record of it reaches the
  // consumer queue (librdkafka keeps a queue forwarding set by the app).
  for (int i = 0; i < partitions->cnt; ++i) {
    OpenQueue({partitions->elems[i].topic, partitions->elems[i].partition});
  }
  // Barriers of earlier revokes that arrived since: read now, they release
  // their partitions (and leader brokers) without waiting for the close.
  for (auto& [partition, queue] : given_back_) Drain(queue);
  rd_kafka_assign(handle_.get(), partitions);
  std::vector<AssignedPartition> assigned;
  for (int i = 0; i < partitions->cnt; ++i) {
    const rd_kafka_topic_partition_t& p = partitions->elems[i];
    assigned.push_back({.partition = {p.topic, p.partition}, .next_offset = p.offset});
    assigned_.insert({p.topic, p.partition});
  }
  spdlog::info("group={} assigned {} partitions", member_options_.group, assigned.size());
  listener_->OnAssigned(assigned);
}

void KafkaGroupMember::Revoke(rd_kafka_topic_partition_list_t* partitions) {
  // Records polled before the rebalance belong to the old assignment.
  FlushRecords();
  std::vector<TopicPartition> revoked = FromList(partitions);
  std::map<TopicPartition, int64_t> offsets = listener_->OnRevoked(revoked);
  std::erase_if(offsets, [this](const auto& e) { return !assigned_.contains(e.first); });
  if (!offsets.empty() && !member_options_.standalone) {
    CommitNow(offsets, /*async=*/false);
  }
  for (const auto& tp : revoked) {
    assigned_.erase(tp);
    paused_.erase(tp);
    seeks_.erase(tp);
    CloseQueue(tp);
  }
  ++revokes_;  // after OnRevoked: commits computed from now on are current
  rd_kafka_assign(handle_.get(), nullptr);
  spdlog::info("group={} revoked {} partitions", member_options_.group, revoked.size());
}

void KafkaGroupMember::RunCommands() {
  std::deque<Command> commands;
  {
    absl::MutexLock lock(&mu_);
    commands.swap(commands_);
  }
  for (Command& command : commands) command();
}

void KafkaGroupMember::FlushRecords() {
  if (pending_.empty()) return;
  std::vector<ConsumedRecord> records;
  records.swap(pending_);
  listener_->OnRecords(std::move(records));
}

void KafkaGroupMember::OpenQueue(const TopicPartition& partition) {
  if (queues_.contains(partition)) return;
  if (auto it = given_back_.find(partition); it != given_back_.end()) {
    Drain(it->second);
    rd_kafka_queue_destroy(it->second);
    given_back_.erase(it);
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_get_partition(
      handle_.get(), partition.topic.c_str(), partition.partition);
  // Without its own queue the partition's records arrive on the consumer
  // queue, as librdkafka does by default; only Pause() would not hold them.
  if (queue == nullptr) return;
  rd_kafka_queue_forward(queue, nullptr);
  rd_kafka_queue_io_event_enable(queue, wake_fd_, &kWakeUp, sizeof(kWakeUp));
  queues_[partition] = queue;
}

void KafkaGroupMember::CloseQueue(const TopicPartition& partition) {
  auto it = queues_.find(partition);
  if (it == queues_.end()) return;
  rd_kafka_queue_t* queue = it->second;
  queues_.erase(it);
  rd_kafka_queue_io_event_enable(queue, -1, nullptr, 0);
  // Frees what was prefetched; the next owner fetches from the commit.
  Drain(queue);
  given_back_[partition] = queue;
}

void KafkaGroupMember::Drain(rd_kafka_queue_t* queue) {
  // Barriers are destroyed by the read itself.
  std::array<rd_kafka_message_t*, kReadBatch> messages;
  ssize_t n = 0;
  while ((n = rd_kafka_consume_batch_queue(queue, 0, messages.data(), messages.size())) >
         0) {
    for (ssize_t i = 0; i < n; ++i) rd_kafka_message_destroy(messages[i]);
  }
}

void KafkaGroupMember::ReclaimQueue(const rd_kafka_message_t* message) {
  auto it = queues_.find({rd_kafka_topic_name(message->rkt), message->partition});
  if (it == queues_.end()) return;
  // librdkafka forwarded a queue Ferry had taken over back to the consumer
  // queue; Pause() could not hold that partition back. Take it over again.
  spdlog::warn(
      "group={} {}/{}: records arrived on the consumer queue; reading the "
      "partition's queue separately again",
      member_options_.group, it->first.topic, it->first.partition);
  rd_kafka_queue_forward(it->second, nullptr);
}

void KafkaGroupMember::Take(rd_kafka_message_t* const* messages, size_t count) {
  auto batch = std::make_shared<MessageBatch>(MessageBatch{.handle = handle_});
  batch->messages.reserve(count);
  // FlushRecords() hands the vector over: room for a whole batch at once
  // instead of growing (and moving the records) from one.
  if (pending_.capacity() == 0) {
    pending_.reserve(static_cast<size_t>(std::max(options_.max_batch_records, 1)));
  }
  for (size_t i = 0; i < count; ++i) {
    // ToRecord reads the record's header count (MayHaveHeaders), which
    // follows the value in librdkafka's fetch buffer (v2 records; the value
    // is a view into that buffer). The fetch thread's socket read
    // wrote that line on another core, so the first read was one cache miss
    // per message (4 % of ferryd's consume CPU). A prefetch is only a hint:
    // it never faults, and where the layout differs it merely does not help.
    if (i + kPrefetchAhead < count) {
      const rd_kafka_message_t* ahead = messages[i + kPrefetchAhead];
      if (ahead->payload != nullptr) {
        __builtin_prefetch(static_cast<const char*>(ahead->payload) + ahead->len);
      }
    }
    rd_kafka_message_t* message = messages[i];
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      listener_->OnError(KafkaStatus(message->err, rd_kafka_message_errstr(message)));
      rd_kafka_message_destroy(message);
      continue;
    }
    batch->messages.push_back(message);
    pending_.push_back(ToRecord(message, std::shared_ptr<const void>(batch, message)));
  }
}

bool KafkaGroupMember::ReadPartitionQueues() {
  if (queues_.empty()) return false;
  bool read = false;
  auto it = queues_.begin();
  std::advance(it, next_queue_++ % queues_.size());
  std::array<rd_kafka_message_t*, kReadBatch> messages;
  for (size_t i = 0; i < queues_.size(); ++i, ++it) {
    if (it == queues_.end()) it = queues_.begin();
    const size_t room = static_cast<size_t>(options_.max_batch_records) - pending_.size();
    if (room == 0) return true;  // more may wait: read on without sleeping
    if (paused_.contains(it->first)) continue;
    const size_t ask = std::min(room, messages.size());
    const ssize_t n = rd_kafka_consume_batch_queue(it->second, 0, messages.data(), ask);
    if (n > 0) Take(messages.data(), static_cast<size_t>(n));
    // A full read means a deep queue, which may have been full; a partition
    // that keeps up with live traffic reads a few records and needs no nudge.
    if (n > 0 && static_cast<size_t>(n) == ask) NudgeFetch(it->first);
    read = read || n > 0;
  }
  return read;
}

bool KafkaGroupMember::PollRecords() {
  bool read = false;
  // Rebalance callbacks and errors run inside this poll. Records show up
  // here only for a partition whose queue could not be taken over.
  while (static_cast<int>(pending_.size()) < options_.max_batch_records) {
    rd_kafka_message_t* message = rd_kafka_consumer_poll(handle_.get(), 0);
    if (message == nullptr) break;
    read = true;
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR && message->rkt != nullptr) {
      ReclaimQueue(message);
    }
    Take(&message, 1);
  }
  read = ReadPartitionQueues() || read;
  FlushRecords();
  return read;
}

void KafkaGroupMember::RunLoop() {
  while (!stopping()) {
    RunCommands();
    if (member_options_.standalone) AssignStandalone();
    RunSeeks();
    // librdkafka writes the eventfd when a queue turns non-empty, so the wait
    // ends as soon as records or events arrive.
    if (!PollRecords()) WaitForWork(IdleWait());
  }
  RunCommands();
  // No rebalance callback revokes a manual assignment on close.
  if (member_options_.standalone) RevokeAll();
  // Runs the revoke callback (commit of the acked prefix) and leaves the
  // group so the partitions move to other members at once.
  rd_kafka_consumer_close(handle_.get());
  while (!queues_.empty()) CloseQueue(queues_.begin()->first);
  // The close stopped and resumed every partition it revoked, each putting a
  // barrier in the partition's queue; read now, they release the partition.
  for (auto& [partition, queue] : given_back_) {
    Drain(queue);
    rd_kafka_queue_destroy(queue);
  }
  given_back_.clear();
  assigned_.clear();
  seeks_.clear();
}

}  // namespace ferry::backend::kafka
