#pragma once

// Reads SteadyTraffic's messages (value "<key>:<seq>", a ferry.id header)
// from one subscriber stream and acks each batch as soon as it arrived: a
// key-ordered stream gets a key's next message only after the previous one
// was acked, so waiting to fill a batch would cap the group below the publish
// rate. Records the ids seen, duplicates, and the sequence numbers of first
// deliveries per key and per (cluster, key), for failover and migration tests.
//
// Threading: one thread at a time.

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "ferry/v1/subscriber.pb.h"
#include "testing/subscriber_stream.h"

namespace ferry::testing {

class TrafficConsumer {
 public:
  // `from_earliest`: where the group starts when it has no committed offsets.
  TrafficConsumer(const std::string& node, const std::string& group,
                  const std::string& topic, v1::Ordering ordering,
                  bool from_earliest = true);

  // Takes and acks what arrives for `period`.
  void Drain(absl::Duration period);
  // Drains until every id of `wanted` arrived or `timeout` passed.
  void DrainUntil(const std::set<std::string>& wanted, absl::Duration timeout);

  bool Has(const std::string& id) const { return ids_.contains(id); }
  // Deliveries of an id seen before (redeliveries and duplicates).
  int duplicates() const { return duplicates_; }
  // First deliveries of a key, in arrival order: per key across clusters,
  // and per (cluster, key).
  const std::map<std::string, std::vector<int>>& sequences() const { return sequences_; }
  const std::map<std::pair<std::string, std::string>, std::vector<int>>&
  sequences_by_cluster() const {
    return by_cluster_and_key_;
  }
  // First deliveries of a key that came after a later message of the key.
  int OrderViolations() const;
  // "<group>: N distinct, D duplicates, V order violations; first deliveries
  // by cluster: a=.. b=..", then how the node ended the stream if it did.
  std::string Summary() const;

 private:
  void Record(const v1::ReceivedMessage& m);

  const std::string group_;
  SubscriberStream stream_;
  std::set<std::string> ids_;
  int duplicates_ = 0;
  std::map<std::string, int> first_by_cluster_;
  std::map<std::string, std::vector<int>> sequences_;
  std::map<std::pair<std::string, std::string>, std::vector<int>> by_cluster_and_key_;
};

}  // namespace ferry::testing
