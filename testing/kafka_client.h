#pragma once

// Minimal synchronous librdkafka helpers for tests: enough to put a record
// into a topic and read it back without going through Ferry. Each call
// creates and destroys its own client, so calls are independent and safe
// from any thread.

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::testing {

// Maps a librdkafka error to a status whose message reads
// "<context>: <ERR_NAME>: <detail or librdkafka's description>".
// TOPIC_ALREADY_EXISTS -> ALREADY_EXISTS, timeouts (including
// _MSG_TIMED_OUT) -> DEADLINE_EXCEEDED, invalid topic/partition/replication/
// config -> INVALID_ARGUMENT, unknown topic -> NOT_FOUND, transport and
// broker-availability errors -> UNAVAILABLE, anything else -> INTERNAL.
absl::Status KafkaErrorStatus(rd_kafka_resp_err_t err, std::string_view context,
                              std::string_view detail = {});

// Produces one record and waits for its delivery report. `config` entries
// override the defaults (bootstrap.servers, message.timeout.ms=30000).
// Returns the delivery error mapped by KafkaErrorStatus.
absl::Status ProduceOne(const std::string& bootstrap, const std::string& topic,
                        std::string_view value,
                        const std::map<std::string, std::string>& config = {});

// Produces one record with `headers` to exactly `partition` and waits for
// its delivery report (as ProduceOne).
absl::Status ProduceToPartition(
    const std::string& bootstrap, const std::string& topic, int32_t partition,
    std::string_view value,
    const std::vector<std::pair<std::string, std::string>>& headers = {});

// Produces `values` to exactly `partition` in one committed transaction, so
// the partition holds them followed by a commit marker: an offset that is
// no record. Waits for the commit.
absl::Status ProduceInTransaction(const std::string& bootstrap, const std::string& topic,
                                  int32_t partition,
                                  const std::vector<std::string>& values);

// Produces (key, value) records (empty key: none) with an idempotent
// producer and waits until every one is acknowledged.
absl::Status ProduceMany(const std::string& bootstrap, const std::string& topic,
                         const std::vector<std::pair<std::string, std::string>>& records);

// The committed offsets of `group` for partitions 0..partitions-1 of `topic`
// (negative: none committed).
absl::StatusOr<std::map<int32_t, int64_t>> CommittedOffsets(const std::string& bootstrap,
                                                            const std::string& group,
                                                            const std::string& topic,
                                                            int32_t partitions);

// A record as a plain librdkafka consumer sees it.
struct ConsumedRecord {
  int32_t partition = -1;
  int64_t offset = -1;
  bool has_key = false;
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  int64_t timestamp_ms = 0;
};

// Reads `count` records from the given partitions of `topic`, each from its
// earliest offset (assign, no group membership, no commits), in arrival
// order. DEADLINE_EXCEEDED if fewer arrive within `timeout`.
absl::StatusOr<std::vector<ConsumedRecord>> ConsumeRecords(
    const std::string& bootstrap, const std::string& topic,
    const std::vector<int32_t>& partitions, size_t count,
    std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Reads every record the partitions hold right now (from the earliest offset
// up to each partition's high watermark, read first).
absl::StatusOr<std::vector<ConsumedRecord>> ConsumeToEnd(
    const std::string& bootstrap, const std::string& topic,
    const std::vector<int32_t>& partitions,
    std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Reads `count` records of `topic`/`partition` from the earliest offset
// (assign, no group membership, no commits) and returns their values.
// DEADLINE_EXCEEDED if fewer arrive within `timeout`; the message says how
// many did and the last consumer error seen.
absl::StatusOr<std::vector<std::string>> ConsumeFromBeginning(
    const std::string& bootstrap, const std::string& topic, int32_t partition,
    size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace ferry::testing
