#include "backend/batch_completion.h"

#include <gtest/gtest.h>

#include <vector>

namespace ferry::backend {
namespace {

RecordBatch BatchOfKeys(const std::vector<std::string_view>& keys) {
  RecordBatch batch{.topic = "t"};
  for (std::string_view key : keys) batch.records.push_back({.key = key, .value = "v"});
  return batch;
}

// What the batch's callback saw.
struct Seen {
  int calls = 0;
  std::vector<PublishOutcome> outcomes;
};

BatchCallback Recorder(Seen* seen) {
  return [seen](std::span<const PublishOutcome> outcomes) {
    ++seen->calls;
    seen->outcomes.assign(outcomes.begin(), outcomes.end());
  };
}

// Given records finishing out of order, the callback runs once, only after
// the submitter let go, with each outcome at its record's index.
TEST(BatchCompletion, AnswersOnceWithOutcomesInRecordOrderAfterTheSubmitter) {
  const RecordBatch batch = BatchOfKeys({"a", "b"});
  Seen seen;
  BatchCompletion* completion = BatchCompletion::Start(batch, Recorder(&seen));
  completion->Finish(1, {.offset = 11});
  completion->Finish(0, {.offset = 10});
  EXPECT_EQ(seen.calls, 0);
  completion->Submitted();
  ASSERT_EQ(seen.calls, 1);
  ASSERT_EQ(seen.outcomes.size(), 2u);
  EXPECT_EQ(seen.outcomes[0].offset, 10);
  EXPECT_EQ(seen.outcomes[1].offset, 11);
}

// Given a record that failed, a later record of its key is held back with
// that failure (not counted against the cluster); other keys and keyless
// records are not.
TEST(BatchCompletion, HoldsBackLaterRecordsOfAFailedKeyOnly) {
  const RecordBatch batch = BatchOfKeys({"a", "a", "b", "", ""});
  Seen seen;
  BatchCompletion* completion = BatchCompletion::Start(batch, Recorder(&seen));
  EXPECT_FALSE(completion->FailedBehindKey(0));
  completion->Finish(0, {.status = absl::UnavailableError("down"),
                         .retryable = true,
                         .counts_against_cluster = true,
                         .partition = 3});
  EXPECT_FALSE(completion->FailedBehindKey(3));
  completion->Finish(3, {.status = absl::UnavailableError("down")});
  EXPECT_TRUE(completion->FailedBehindKey(1));
  EXPECT_FALSE(completion->FailedBehindKey(2));
  EXPECT_FALSE(completion->FailedBehindKey(4));
  completion->Finish(2, {});
  completion->Finish(4, {});
  completion->Submitted();
  ASSERT_EQ(seen.calls, 1);
  const PublishOutcome& held = seen.outcomes[1];
  EXPECT_TRUE(absl::IsUnavailable(held.status));
  EXPECT_TRUE(held.retryable);
  EXPECT_TRUE(held.behind_failed_key);
  EXPECT_FALSE(held.counts_against_cluster);
  EXPECT_FALSE(seen.outcomes[0].behind_failed_key);
  EXPECT_TRUE(seen.outcomes[2].status.ok());
  EXPECT_TRUE(seen.outcomes[4].status.ok());
}

// The ordering key, when set, is the key that is held back.
TEST(BatchCompletion, HoldsBackByOrderingKeyWhenSet) {
  RecordBatch batch{.topic = "t"};
  batch.records.push_back({.key = "x", .ordering_key = "o"});
  batch.records.push_back({.key = "y", .ordering_key = "o"});
  batch.records.push_back({.key = "x", .ordering_key = "p"});
  Seen seen;
  BatchCompletion* completion = BatchCompletion::Start(batch, Recorder(&seen));
  completion->Finish(0, {.status = absl::InternalError("no")});
  EXPECT_TRUE(completion->FailedBehindKey(1));
  EXPECT_FALSE(completion->FailedBehindKey(2));
  completion->Finish(2, {});
  completion->Submitted();
  EXPECT_EQ(seen.calls, 1);
}

TEST(BatchCompletion, TokensNameTheirRecord) {
  const RecordBatch batch = BatchOfKeys({"a", "b", "c"});
  Seen seen;
  BatchCompletion* completion = BatchCompletion::Start(batch, Recorder(&seen));
  for (size_t i = 0; i < 3; ++i) {
    auto [owner, index] = BatchCompletion::FromToken(completion->Token(i));
    EXPECT_EQ(owner, completion);
    EXPECT_EQ(index, i);
    completion->Finish(i, {});
  }
  completion->Submitted();
  EXPECT_EQ(seen.calls, 1);
}

}  // namespace
}  // namespace ferry::backend
