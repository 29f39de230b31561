#pragma once

// The consuming side of a backend: one node's membership in a consumer group.
//
// A GroupMember is what the subscribe path (src/subscribe) sits on, for every
// backend (Kafka, embedded). The backend decides which partitions this member
// owns (Kafka: the group coordinator's assignment; embedded: all of them, one
// node), fetches their records from the committed position and stores the
// offsets the subscribe path commits. Everything Ferry promises on top
// (per-message acks, ordering modes, redelivery, dead letters) lives above
// this interface, once, for every backend.
//
// Threading: each member runs one thread of its own (the "member thread").
// Every listener callback runs on it, one at a time, never concurrently and
// never after the member's destructor returned. The member's methods are
// thread-safe and do not block on the broker (they queue work for the member
// thread), except the destructor.

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backend/cluster.h"

namespace ferry::backend {

// A record as fetched from the backend. Key, value and headers are views into
// `bytes`, which every copy of the record shares: a Kafka record keeps
// librdkafka's message alive instead of copying out of it, an embedded one its
// decoded store value. Views may also point at storage that outlives the
// record (string literals).
struct ConsumedRecord {
  std::string topic = {};
  int32_t partition = 0;
  int64_t offset = -1;
  std::string_view key = {};
  std::string_view value = {};
  std::vector<HeaderView> headers = {};
  int64_t timestamp_ms = 0;  // the record's (publish) timestamp
  std::shared_ptr<const void> bytes = nullptr;

  // Copies key, value and headers into storage of the record's own and lets
  // go of what it shared. A Kafka message points into librdkafka's whole fetch
  // response, so a record held for long owns its bytes rather than pin that.
  void OwnBytes() {
    struct Owned {
      std::string key, value;
      std::vector<Header> headers;
    };
    auto owned = std::make_shared<Owned>();
    owned->key = key;
    owned->value = value;
    owned->headers.reserve(headers.size());
    for (const HeaderView& h : headers) {
      owned->headers.push_back({std::string(h.key), std::string(h.value)});
    }
    key = owned->key;
    value = owned->value;
    for (size_t i = 0; i < headers.size(); ++i) {
      headers[i] = {owned->headers[i].key, owned->headers[i].value};
    }
    bytes = std::move(owned);
  }
};

// `record` owning its bytes: for records built from views of temporaries,
// which live until the end of the full expression that calls this.
inline ConsumedRecord Owned(ConsumedRecord record) {
  record.OwnBytes();
  return record;
}

// The headers as strings of their own (to write the record elsewhere).
inline std::vector<Header> CopyHeaders(const ConsumedRecord& record) {
  std::vector<Header> out;
  out.reserve(record.headers.size());
  for (const HeaderView& h : record.headers) {
    out.push_back({std::string(h.key), std::string(h.value)});
  }
  return out;
}

// Where a partition with no committed offset starts.
struct StartPosition {
  enum class Kind { kLatest, kEarliest, kTimestamp };
  Kind kind = Kind::kLatest;
  int64_t timestamp_ms = 0;  // kTimestamp only
};

struct AssignedPartition {
  TopicPartition partition;
  // Where fetching starts: the committed offset, or the resolved start
  // position when the group had none (the member commits that position at
  // once, so a crash before the first ack cannot move a "latest" group past
  // records published meanwhile; a standalone member always starts at its
  // start offset or start position and commits nothing).
  int64_t next_offset = 0;
};

class GroupMemberListener {
 public:
  virtual ~GroupMemberListener() = default;

  // Partitions this member owns from now on, with where fetching starts.
  virtual void OnAssigned(const std::vector<AssignedPartition>& partitions) = 0;

  // Partitions this member gives up (rebalance, or the member is closing).
  // Returns the offsets to commit for them (the position of the first record
  // not yet consumed for good, per partition; partitions left out are not
  // committed). The member commits them synchronously before releasing the
  // partitions, so the next owner starts there.
  virtual std::map<TopicPartition, int64_t> OnRevoked(
      const std::vector<TopicPartition>& partitions) = 0;

  // Records of owned partitions, in offset order per partition. A partition's
  // records after a Seek() completed start at the seek offset.
  virtual void OnRecords(std::vector<ConsumedRecord> records) = 0;

  // A Seek() took effect: records of `partition` delivered from now on start
  // at `offset` (none from the old position follow).
  virtual void OnSeekDone(const TopicPartition& partition, int64_t offset) = 0;

  // A problem the member cannot fix by itself and keeps retrying (broker
  // unreachable, authorization, unknown topic); for logs and status.
  virtual void OnError(const absl::Status& error) = 0;

  // The broker answered a commit of `offset` for `partition` (a Commit() or a
  // commit the member made itself): OK once stored, else why not. A listener
  // that tracks what is committed counts an offset as committed only after
  // this, and commits again after a failure. Results may arrive for
  // partitions no longer owned; ignore those. Default: ignored.
  virtual void OnCommitted(const TopicPartition& partition, int64_t offset,
                           const absl::Status& status) {
    (void)partition, (void)offset, (void)status;
  }
};

struct GroupMemberOptions {
  std::string group = {};
  // Shown by the broker as the member's client id (DescribeGroup).
  std::string client_id = {};
  std::vector<std::string> topics = {};
  StartPosition start = {};
  // Reads without a consumer group (Kafka's "standalone consumer"): the
  // member owns every partition of `topics` (only `partitions`, when set)
  // that exists when it starts (or
  // when SetTopics() runs; a missing topic is reported through OnError and
  // looked up again), each starting at `start` on every assignment, and
  // leaves nothing on the cluster: it joins no group, reads no committed
  // offsets and commits none (Commit() is ignored, OnRevoked's offsets are
  // dropped). `group` only names the member in logs and must still be set
  // (librdkafka needs a group.id to assign partitions; it is not sent to the
  // broker while nothing is committed). For readers that replay a topic from
  // the start at every start, such as the control plane.
  bool standalone = false;
  // Standalone only: partitions that start at these offsets (0 or more)
  // instead of at `start`, on every assignment, so that a reader of a range
  // is delivered nothing before it (a seek after the assignment leaves a
  // window in which records of the start position arrive). Other partitions
  // of `topics` start at `start`. JoinGroup refuses them (InvalidArgument)
  // for a group member, whose committed offsets decide, or below 0.
  std::map<TopicPartition, int64_t> start_offsets = {};
  // Standalone only: when not empty, the member owns just these partitions
  // of `topics` (those that exist), not every one: a reader of a few
  // partitions neither assigns nor queries the others, one of which may
  // have no leader. JoinGroup refuses them (InvalidArgument) for a group
  // member, below 0, of a topic not in `topics`, or with start_offsets
  // outside them.
  std::set<TopicPartition> partitions = {};
  // Kafka: a position outside the log (retention passed it) is reported
  // through OnError (kOutOfRange) and the partition is not read on, instead
  // of jumping to the end (librdkafka's default auto.offset.reset). For
  // readers of a range. The embedded store likewise, for a position below the
  // log start.
  bool fail_out_of_range = false;
  // What the member may fetch ahead of OnRecords per owned partition, in
  // bytes; 0: the backend's default (Kafka: 8 MiB). Kafka: librdkafka's
  // queued.max.messages.kbytes, which one fetch response may exceed by up to
  // a partition's share of it (max.partition.fetch.bytes, at most 1 MiB). The
  // embedded store reads on demand and ignores it.
  int64_t max_prefetch_bytes = 0;
};

// Whether a standalone reader whose GroupMemberOptions::partitions are
// `chosen` reads `partition` of its topics (none chosen: every one).
inline bool IsChosen(const std::set<TopicPartition>& chosen,
                     const TopicPartition& partition) {
  return chosen.empty() || chosen.contains(partition);
}

// InvalidArgument for start offsets or chosen partitions no member can
// honour (see GroupMemberOptions::start_offsets and ::partitions); every
// backend's JoinGroup checks this.
inline absl::Status CheckReaderOptions(const GroupMemberOptions& options) {
  if (!options.partitions.empty() && !options.standalone) {
    return absl::InvalidArgumentError(absl::StrCat(
        "join group ", options.group, ": chosen partitions need a standalone member"));
  }
  const auto name = [](const TopicPartition& p) {
    return absl::StrCat(p.topic, "/", p.partition);
  };
  for (const TopicPartition& p : options.partitions) {
    if (p.partition < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "join group ", options.group, ": chosen partition ", name(p), " is below 0"));
    }
    if (std::find(options.topics.begin(), options.topics.end(), p.topic) ==
        options.topics.end()) {
      return absl::InvalidArgumentError(absl::StrCat("join group ", options.group,
                                                     ": chosen partition ", name(p),
                                                     " is not of a subscribed topic"));
    }
  }
  if (options.start_offsets.empty()) return absl::OkStatus();
  if (!options.standalone) {
    return absl::InvalidArgumentError(absl::StrCat(
        "join group ", options.group, ": start offsets need a standalone member"));
  }
  for (const auto& [partition, offset] : options.start_offsets) {
    if (offset < 0) {
      return absl::InvalidArgumentError(absl::StrCat("join group ", options.group,
                                                     ": start offset ", offset, " of ",
                                                     name(partition), " is below 0"));
    }
    if (!IsChosen(options.partitions, partition)) {
      return absl::InvalidArgumentError(
          absl::StrCat("join group ", options.group, ": start offset of ",
                       name(partition), " outside the chosen partitions"));
    }
  }
  return absl::OkStatus();
}

class GroupMember {
 public:
  // Leaves the group: OnRevoked runs for the owned partitions (their offsets
  // are committed, unless the member is standalone), then the member stops.
  // Blocks until done.
  virtual ~GroupMember() = default;

  // Changes the subscribed topics (may cause a rebalance).
  virtual void SetTopics(std::vector<std::string> topics) = 0;

  // Stores these offsets as the group's committed positions (asynchronous;
  // the listener's OnCommitted reports each partition's outcome; a failed
  // commit is not retried here). Ignored by a standalone member.
  virtual void Commit(std::map<TopicPartition, int64_t> offsets) = 0;

  // Stops / restarts fetching of owned partitions. Paused partitions stay
  // assigned. Unknown or not owned partitions are ignored.
  virtual void Pause(const std::vector<TopicPartition>& partitions) = 0;
  virtual void Resume(const std::vector<TopicPartition>& partitions) = 0;

  // Moves an owned partition's fetch position; the listener's OnSeekDone
  // follows on the member thread. Not owned: ignored.
  virtual void Seek(const TopicPartition& partition, int64_t offset) = 0;

  // The partition's high watermark as last seen by fetching (no I/O); -1 when
  // not known yet. For lag metrics.
  virtual int64_t HighWatermark(const TopicPartition& partition) const = 0;
};

}  // namespace ferry::backend
