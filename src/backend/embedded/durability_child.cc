// Helper for durability_test: publishes to an embedded cluster without end
// and prints "seq partition offset" for every acknowledged record, until it
// is killed.
//
//   embedded_durability_child DIR sync|batch
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/synchronization/mutex.h"
#include "backend/embedded/embedded_cluster.h"

namespace ferry::backend::embedded {
namespace {

constexpr int kMaxInFlight = 256;

int Run(const std::string& path, const std::string& mode) {
  auto cluster = EmbeddedCluster::Open(
      "local", {.path = path,
                .durability = mode == "batch" ? EmbeddedCluster::Durability::kBatch
                                              : EmbeddedCluster::Durability::kSync});
  if (!cluster.ok()) {
    fmt::print(stderr, "{}\n", std::string(cluster.status().message()));
    return 1;
  }
  absl::Mutex mu;
  int in_flight = 0;
  for (int64_t seq = 0;; ++seq) {
    {
      absl::MutexLock lock(&mu);
      auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return in_flight < kMaxInFlight;
      };
      mu.Await(absl::Condition(&room));
      ++in_flight;
    }
    (*cluster)->Publish({.topic = "t",
                         .key = fmt::format("k{}", seq % 7),
                         .value = fmt::format("v{}", seq)},
                        [&, seq](PublishOutcome outcome) {
                          if (outcome.status.ok()) {
                            // One write() per line: a line is either in the pipe or not.
                            const std::string line = fmt::format(
                                "{} {} {}\n", seq, outcome.partition, outcome.offset);
                            if (write(STDOUT_FILENO, line.data(), line.size()) < 0)
                              _exit(2);
                          }
                          absl::MutexLock lock(&mu);
                          --in_flight;
                        });
  }
}

}  // namespace
}  // namespace ferry::backend::embedded

int main(int argc, char** argv) {
  if (argc != 3) {
    fmt::print(stderr, "usage: {} DIR sync|batch\n", argv[0]);
    return 2;
  }
  return ferry::backend::embedded::Run(argv[1], argv[2]);
}
