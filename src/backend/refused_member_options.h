#pragma once

#include <vector>

#include "backend/group_member.h"

namespace ferry::backend {

// For backends' tests: options of a member of topic "t" (1 partition or
// more) that every JoinGroup refuses with InvalidArgument (CheckReaderOptions),
// each named by its `group`. Start offsets and chosen partitions bind only a
// standalone reader, start offsets only at 0 or more; chosen partitions of an
// unsubscribed topic or below 0, and start offsets outside chosen partitions,
// would be silently not read.
inline std::vector<GroupMemberOptions> RefusedMemberOptions() {
  return {
      {.group = "start-offsets-of-a-group-member",
       .topics = {"t"},
       .start_offsets = {{{"t", 0}, 3}}},
      {.group = "start-offset-below-0",
       .topics = {"t"},
       .standalone = true,
       .start_offsets = {{{"t", 0}, -1}}},
      {.group = "chosen-partitions-of-a-group-member",
       .topics = {"t"},
       .partitions = {{"t", 0}}},
      {.group = "chosen-partition-of-another-topic",
       .topics = {"t"},
       .standalone = true,
       .partitions = {{"u", 0}}},
      {.group = "chosen-partition-below-0",
       .topics = {"t"},
       .standalone = true,
       .partitions = {{"t", -1}}},
      {.group = "start-offset-outside-the-chosen-partitions",
       .topics = {"t"},
       .standalone = true,
       .start_offsets = {{{"t", 1}, 0}},
       .partitions = {{"t", 0}}},
  };
}

}  // namespace ferry::backend
