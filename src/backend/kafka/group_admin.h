#pragma once

#include <librdkafka/rdkafka.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/cluster.h"
#include "backend/kafka/client_factory.h"

namespace ferry::backend::kafka {

// Consumer-group offset administration (Cluster::CommittedOffsets & co).
// Each call blocks for at most about `timeout`.
class GroupAdmin {
 public:
  // `properties`: the cluster's raw properties; `handle`: the cluster's
  // existing handle, used for metadata, list-offsets and group listing.
  GroupAdmin(Properties properties, rd_kafka_t* handle, ClientFactory& factory,
             absl::Duration timeout)
      : properties_(std::move(properties)),
        handle_(handle),
        factory_(factory),
        timeout_(timeout) {}

  // Within `timeout` in all (its metadata requests and the offset request).
  absl::StatusOr<std::map<TopicPartition, int64_t>> CommittedOffsets(
      const std::string& group, const std::vector<std::string>& topics,
      absl::Duration timeout);
  // Commits as a "simple" (non-member) consumer, which Kafka accepts only
  // for a group without active members.
  absl::Status AlterCommittedOffsets(const std::string& group,
                                     const std::map<TopicPartition, int64_t>& offsets);
  absl::StatusOr<std::map<TopicPartition, int64_t>> OffsetsForTime(
      const std::string& topic, int64_t timestamp_ms);
  absl::StatusOr<std::vector<std::string>> ListGroups();
  absl::StatusOr<GroupDescription> DescribeGroup(const std::string& group);

 private:
  // Destroys a consumer handle without rd_kafka_consumer_close: that leaves
  // the group and commits the final offsets (with their rebalance and
  // commit callbacks), none of which a handle that never joined has to do,
  // and it waits on the group coordinator, which may not answer.
  struct NoConsumerCloseDeleter {
    void operator()(rd_kafka_t* handle) const {
      rd_kafka_destroy_flags(handle, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
  };
  using GroupClientPtr = std::unique_ptr<rd_kafka_t, NoConsumerCloseDeleter>;
  // A consumer handle with group.id = `group` that never joins the group;
  // what it asks (committed offsets, a commit) it waits for (synchronous
  // calls), so nothing is pending when it is destroyed.
  absl::StatusOr<GroupClientPtr> GroupClient(const std::string& group);
  int timeout_ms() const { return static_cast<int>(absl::ToInt64Milliseconds(timeout_)); }

  const Properties properties_;
  rd_kafka_t* const handle_;
  ClientFactory& factory_;
  const absl::Duration timeout_;
};

}  // namespace ferry::backend::kafka
