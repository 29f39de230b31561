#pragma once

// How many batch calls a C++ SDK publisher sent to the nodes for a burst of
// messages: what tests of pushed batch settings observe on the node path.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <future>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ferry/client/publisher.h"

namespace ferry::testing {

// Publishes `count` keyless messages to `topic` at once, waits for all of
// them (each must be acknowledged through a node, not directly) and returns
// the node batch calls that took.
inline uint64_t NodeBatchesFor(client::Publisher& publisher, const std::string& topic,
                               int count) {
  const uint64_t before = publisher.Stats().node_batches;
  std::vector<std::future<client::PublishResult>> futures;
  for (int i = 0; i < count; ++i) {
    futures.push_back(publisher.Publish(topic, {.value = absl::StrCat("m-", i)}));
  }
  EXPECT_TRUE(publisher.Flush(std::chrono::seconds(30)));
  for (auto& future : futures) {
    const client::PublishResult result = future.get();
    EXPECT_TRUE(result.ok() && !result.direct) << result.error;
  }
  return publisher.Stats().node_batches - before;
}

}  // namespace ferry::testing
