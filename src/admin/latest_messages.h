#pragma once

// The newest messages of a topic, for a look at what it holds (the web
// console's topic page, Admin.ListLatestMessages): the last `limit` offsets
// of each partition are read by a standalone reader (it joins no group and
// commits nothing, so no consumer is disturbed), and the `limit` newest by
// timestamp are kept.
//
// Cost: one DescribeTopic, then one reader on the cluster for at most
// `timeout`, reading at most `limit` records per partition. Blocking: not for
// a gRPC callback thread.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/cluster.h"
#include "backend/group_member.h"

namespace ferry::admin {

inline constexpr int kDefaultLatestMessages = 20;
inline constexpr int kMaxLatestMessages = 100;

struct LatestMessagesOptions {
  int limit = kDefaultLatestMessages;
  // The whole read; what arrived by then is returned.
  absl::Duration timeout = absl::Seconds(5);
  // A partition that got nothing for this long since its assignment or last
  // record counts as read: its last offsets may hold no records
  // (transaction markers, compaction).
  absl::Duration quiet = absl::Seconds(1);
};

// Newest first (by timestamp, then partition and offset). Errors of
// DescribeTopic and JoinGroup are returned as they are; INVALID_ARGUMENT for
// a limit outside 1..kMaxLatestMessages.
absl::StatusOr<std::vector<backend::ConsumedRecord>> LatestMessages(
    backend::Cluster& cluster, const std::string& topic,
    const LatestMessagesOptions& options = {});

}  // namespace ferry::admin
