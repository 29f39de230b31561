#pragma once

// What dead-lettering writes and when it tries again: a message delivered
// more than max_delivery_attempts times is written to the subscription's
// dead-letter topic (default "<topic>.dlq") with `ferry.dlq.*` headers that
// say where it came from, and acked once the write was confirmed. A failed
// write is tried again after a delay that doubles per consecutive failure of
// the message (1 s, 2 s, ... at most 60 s), so a missing topic costs one
// write per message per minute, not a spinning loop.
//
// The write itself is the dispatcher's job (outside its lock: a backend may
// complete a publish before Publish returns).
//
// Threading: immutable after construction; thread-safe. Cost: one copy of the
// record per write.

#include <string>

#include "absl/time/time.h"
#include "backend/cluster.h"
#include "backend/group_member.h"

namespace ferry::subscribe {

class DeadLetterer {
 public:
  // `topic`: the subscription's dead_letter_topic; empty: "<topic>.dlq".
  DeadLetterer(std::string group, std::string topic);

  // Where messages of `source_topic` go.
  std::string TopicFor(const std::string& source_topic) const;

  // The dead letter of `record` after `attempts` deliveries.
  backend::Record Build(const backend::ConsumedRecord& record, int32_t attempts) const;

  // How long to wait before the next write of a message whose last
  // `failures` (>= 1) writes failed.
  static absl::Duration RetryDelay(int failures);

 private:
  const std::string group_;
  const std::string topic_;
};

}  // namespace ferry::subscribe
