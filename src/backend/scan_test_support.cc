#include "backend/scan_test_support.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace ferry::backend {

void AbandonThreeReaders(Cluster& cluster, const std::string& topic) {
  NeverDoneSink sink;
  std::vector<std::thread> stuck;
  for (int i = 0; i < 3; ++i) {
    stuck.emplace_back([&] {
      EXPECT_EQ(
          ScanPartitions(cluster, "stuck", {{{topic, 0}, {.end = 1, .sink = &sink}}},
                         absl::Now() + absl::Milliseconds(100), absl::Milliseconds(50))
              .code(),
          absl::StatusCode::kDeadlineExceeded);
    });
  }
  for (std::thread& thread : stuck) thread.join();
}

}  // namespace ferry::backend
