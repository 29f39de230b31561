// Kills a publishing process with SIGKILL and checks that the store kept
// every acknowledged record, with dense offsets and nothing corrupt.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <sstream>

#include "backend/embedded/store.h"
#include "testing/test_dir.h"

#ifndef DURABILITY_CHILD_PATH
#error "DURABILITY_CHILD_PATH must name the embedded_durability_child binary"
#endif

namespace ferry::backend::embedded {
namespace {

using ::ferry::testing::TestDir;

struct Acked {
  int64_t seq = 0;
  int32_t partition = 0;
  int64_t offset = 0;
};

// Runs the child until it acknowledged `enough` records, SIGKILLs it and
// returns every acknowledgement it printed.
std::vector<Acked> PublishUntilKilled(const std::string& path, const std::string& mode,
                                      size_t enough) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(DURABILITY_CHILD_PATH, DURABILITY_CHILD_PATH, path.c_str(), mode.c_str(),
          nullptr);
    _exit(127);
  }
  close(fds[1]);
  std::string output;
  size_t lines = 0;
  bool killed = false;
  char buffer[65536];
  while (true) {
    const ssize_t n = read(fds[0], buffer, sizeof(buffer));
    if (n <= 0) break;  // EOF once the child is gone
    output.append(buffer, n);
    lines += std::count(buffer, buffer + n, '\n');
    if (!killed && lines >= enough) {
      kill(pid, SIGKILL);  // mid-stream: hundreds of records are in flight
      killed = true;
    }
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(killed) << "the child exited by itself, status " << status;

  std::vector<Acked> acked;
  std::istringstream in(output);
  Acked a;
  while (in >> a.seq >> a.partition >> a.offset) acked.push_back(a);
  return acked;
}

class DurabilityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DurabilityTest, EveryAcknowledgedRecordSurvivesSigkill) {
  TestDir dir;
  {
    auto store = Store::Open({.path = dir.path()});
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->CreateTopic("t", 3, 1, {}).ok());
  }
  std::vector<Acked> acked = PublishUntilKilled(dir.path(), GetParam(), 3000);
  ASSERT_GE(acked.size(), 3000u);

  auto store = Store::Open({.path = dir.path()});
  ASSERT_TRUE(store.ok()) << "reopening after the kill: " << store.status();
  const uint64_t id = (*store)->FindTopic("t")->id;
  std::map<std::pair<int32_t, int64_t>, std::string> stored;
  for (int32_t p = 0; p < 3; ++p) {
    auto [low, high] = (*store)->Watermarks("t", p).value();
    auto fetched = (*store)->Fetch("t", id, p, 0, 1 << 30, int64_t{1} << 40);
    ASSERT_TRUE(fetched.ok()) << fetched.status();  // decodes every record
    ASSERT_EQ(static_cast<int64_t>(fetched->records.size()), high - low);
    std::map<std::string, int64_t> last_seq_of_key;
    for (size_t i = 0; i < fetched->records.size(); ++i) {
      const ConsumedRecord& r = fetched->records[i];
      EXPECT_EQ(r.offset, low + static_cast<int64_t>(i)) << "offsets are dense";
      const int64_t seq = std::stoll(std::string(r.value.substr(1)));
      auto [last, inserted] = last_seq_of_key.try_emplace(std::string(r.key), -1);
      EXPECT_GT(seq, last->second) << "records of one key keep publish order";
      last->second = seq;
      stored[{p, r.offset}] = r.value;
    }
  }
  for (const Acked& a : acked) {
    auto it = stored.find({a.partition, a.offset});
    ASSERT_NE(it, stored.end()) << "acknowledged record " << a.seq << " at "
                                << a.partition << "/" << a.offset << " is missing";
    EXPECT_EQ(it->second, "v" + std::to_string(a.seq));
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, DurabilityTest, ::testing::Values("sync", "batch"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ferry::backend::embedded
