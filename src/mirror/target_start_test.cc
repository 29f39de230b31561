// Where a group that reaches a migration's target without a commit there
// starts: the decision per partition, and CommitTargetStart against clusters
// and a translation that answer inline (the translation itself reads real
// clusters and is tested on two Kafka brokers).
#include "mirror/target_start.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backend/fake_cluster.h"

namespace ferry::mirror {
namespace {

using backend::StartPosition;
using backend::TopicPartition;
using Offsets = std::map<TopicPartition, int64_t>;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::string kTopic = "orders";
const TopicPartition kP0{kTopic, 0};
const TopicPartition kP1{kTopic, 1};
const StartPosition kLatest{};
const StartPosition kEarliest{.kind = StartPosition::Kind::kEarliest};
const StartPosition kAtTime{.kind = StartPosition::Kind::kTimestamp,
                            .timestamp_ms = 1000};

// A cluster whose offsets the test sets; every call answers inline.
class OffsetsCluster final : public backend::FakeCluster {
 public:
  using FakeCluster::FakeCluster;

  Offsets committed;  // the group's
  Offsets ends;
  Offsets at_time;
  std::vector<Offsets> altered;

  absl::StatusOr<backend::TopicInfo> DescribeTopic(const std::string& topic) override {
    backend::TopicInfo info{.name = topic};
    for (const auto& [tp, end] : ends) {
      backend::PartitionInfo partition;
      partition.id = tp.partition;
      partition.high_watermark = end;
      info.partitions.push_back(partition);
    }
    return info;
  }
  absl::StatusOr<Offsets> CommittedOffsets(const std::string&,
                                           const std::vector<std::string>&) override {
    return committed;
  }
  absl::Status AlterCommittedOffsets(const std::string&,
                                     const Offsets& offsets) override {
    altered.push_back(offsets);
    return absl::OkStatus();
  }
  absl::StatusOr<Offsets> OffsetsForTime(const std::string&, int64_t) override {
    return at_time;
  }
};

// Answers TranslatePositions from a script: per call, the translations of
// the positions asked for, made by `answer`.
struct ScriptedTranslation {
  std::function<Translation(const TopicPartition&, int64_t position, int call)> answer;
  std::vector<Offsets> asked;
  std::vector<ForwardHints> hints;

  TargetStartOptions::Translate Fn() {
    return [this](const Offsets& positions, const ForwardHints& h) {
      asked.push_back(positions);
      hints.push_back(h);
      std::vector<Translation> out;
      for (const auto& [tp, position] : positions) {
        out.push_back(answer(tp, position, static_cast<int>(asked.size())));
      }
      return absl::StatusOr<std::vector<Translation>>(out);
    };
  }
};

Translation Translated(const TopicPartition& tp, int64_t position, int64_t target) {
  return {.partition = tp,
          .state = Translation::State::kTranslated,
          .group_offset = position,
          .mirrored_offset = position + 1,
          .target_offset = target};
}

Translation NotCopied(const TopicPartition& tp, int64_t position, int64_t mirrored) {
  return {.partition = tp,
          .state = Translation::State::kNotYetMirrored,
          .group_offset = position,
          .mirrored_offset = mirrored};
}

const control::MirrorSpec kJob{
    .name = "migrate.orders", .source = "a", .target = "b", .topics = {kTopic}};

class CommitTargetStartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_.ends = {{kP0, 100}, {kP1, 50}};
    b_.ends = {{kP0, 90}, {kP1, 40}};
  }

  absl::StatusOr<Offsets> Run(const StartPosition& start,
                              absl::Duration timeout = absl::Seconds(5)) {
    return CommitTargetStart(
        kJob, "g", start, a_, b_,
        {.timeout = timeout,
         .poll = absl::Milliseconds(1),
         .on_wait = [this](const std::string& what) { waits_.push_back(what); },
         .translate = translation_.Fn()});
  }

  OffsetsCluster a_{"a"};
  OffsetsCluster b_{"b"};
  ScriptedTranslation translation_;
  std::vector<std::string> waits_;
};

TEST(SourcePositionFor, ACommitOnTheTargetNeedsNothing) {
  EXPECT_EQ(SourcePositionFor(7, 40, kLatest, 100, -1), std::nullopt);
}

TEST(SourcePositionFor, ACommitOnTheSourceIsTranslatedWhateverTheStart) {
  EXPECT_EQ(SourcePositionFor(-1, 40, kLatest, 100, -1), 40);
  EXPECT_EQ(SourcePositionFor(-1, 40, kEarliest, 100, -1), 40);
  EXPECT_EQ(SourcePositionFor(-1, 40, kAtTime, 100, 20), 40);
}

TEST(SourcePositionFor, WithoutCommitsTheStartIsResolvedOnTheSource) {
  EXPECT_EQ(SourcePositionFor(-1, -1, kLatest, 100, -1), 100) << "the source's end";
  EXPECT_EQ(SourcePositionFor(-1, -1, kAtTime, 100, 20), 20);
  EXPECT_EQ(SourcePositionFor(-1, -1, kEarliest, 100, -1), std::nullopt)
      << "reads the target from its start";
}

TEST_F(CommitTargetStartTest, TranslatesTheSourceCommitAndCommitsItOnTheTarget) {
  a_.committed = {{kP0, 60}, {kP1, 30}};
  translation_.answer = [](const TopicPartition& tp, int64_t position, int) {
    return Translated(tp, position, position - 10);
  };
  auto committed = Run(kLatest);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(*committed, (Offsets{{kP0, 50}, {kP1, 20}}));
  EXPECT_THAT(b_.altered, ElementsAre(Offsets{{kP0, 50}, {kP1, 20}}));
  EXPECT_THAT(translation_.asked, ElementsAre(Offsets{{kP0, 60}, {kP1, 30}}));
  EXPECT_THAT(waits_, IsEmpty());
}

TEST_F(CommitTargetStartTest, OnlyPartitionsWithoutACommitOnTheTargetAreTouched) {
  a_.committed = {{kP0, 60}, {kP1, 30}};
  b_.committed = {{kP0, 55}, {kP1, -1}};
  translation_.answer = [](const TopicPartition& tp, int64_t position, int) {
    return Translated(tp, position, position - 10);
  };
  auto committed = Run(kLatest);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(*committed, (Offsets{{kP1, 20}}));
  EXPECT_THAT(translation_.asked, ElementsAre(Offsets{{kP1, 30}}));
}

TEST_F(CommitTargetStartTest, AGroupMovedAlreadyOrStartingAtTheTargetsStartNeedsNothing) {
  b_.committed = {{kP0, 55}, {kP1, 12}};
  auto moved = Run(kLatest);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_THAT(*moved, IsEmpty());
  b_.committed.clear();
  auto earliest = Run(kEarliest);
  ASSERT_TRUE(earliest.ok()) << earliest.status();
  EXPECT_THAT(*earliest, IsEmpty());
  EXPECT_THAT(translation_.asked, IsEmpty());
  EXPECT_THAT(b_.altered, IsEmpty());
}

TEST_F(CommitTargetStartTest, ALatestGroupWaitsForTheCopyOfTheSourcesEnd) {
  // The record at A's end is written and copied by the second translation.
  translation_.answer = [](const TopicPartition& tp, int64_t position, int call) {
    return call == 1 ? NotCopied(tp, position, position - 3)
                     : Translated(tp, position, position - 7);
  };
  auto committed = Run(kLatest);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(*committed, (Offsets{{kP0, 93}, {kP1, 43}}));
  ASSERT_EQ(translation_.asked.size(), 2u);
  EXPECT_EQ(translation_.asked[0], (Offsets{{kP0, 100}, {kP1, 50}})) << "A's ends";
  // Nothing below B's end (read before A's) can be a copy of A's end.
  ASSERT_EQ(translation_.hints[0].earlier.size(), 2u);
  EXPECT_EQ(translation_.hints[0].earlier[0].searched_to, 90);
  EXPECT_EQ(translation_.hints[0].earlier[1].searched_to, 40);
  ASSERT_EQ(waits_.size(), 1u);
  EXPECT_THAT(waits_[0], HasSubstr("mirror migrate.orders to copy offset"));
}

TEST_F(CommitTargetStartTest,
       AtTheSourcesEndWithEverythingCopiedItStartsAtTheTargetsEnd) {
  translation_.answer = [](const TopicPartition& tp, int64_t position, int) {
    return NotCopied(tp, position, position);
  };
  auto committed = Run(kLatest);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(*committed, (Offsets{{kP0, 90}, {kP1, 40}}));
  EXPECT_THAT(waits_, IsEmpty());
}

TEST_F(CommitTargetStartTest, AGroupStartingAtATimeTranslatesTheSourcesOffsetForIt) {
  a_.at_time = {{kP0, 20}, {kP1, 5}};
  translation_.answer = [](const TopicPartition& tp, int64_t position, int) {
    return Translated(tp, position, position + 1);
  };
  auto committed = Run(kAtTime);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(*committed, (Offsets{{kP0, 21}, {kP1, 6}}));
}

TEST_F(CommitTargetStartTest, APositionNeverCopiedIsNotGuessed) {
  a_.committed = {{kP0, 60}, {kP1, 30}};
  translation_.answer = [](const TopicPartition& tp, int64_t position, int) {
    return tp == kP0 ? Translated(tp, position, 1) : NotCopied(tp, position, 10);
  };
  auto committed = Run(kLatest, absl::Milliseconds(30));
  EXPECT_EQ(committed.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(committed.status().message(),
              HasSubstr("offset 30 of orders/1 from a to b (it copied up to 10)"));
  EXPECT_THAT(b_.altered, IsEmpty()) << "not even the partition that was translated";
  EXPECT_GT(translation_.asked.size(), 1u) << "asked again while waiting";
}

TEST_F(CommitTargetStartTest, AWaitEndsWhenCancelled) {
  translation_.answer = [](const TopicPartition& tp, int64_t position, int) {
    return NotCopied(tp, position, 0);
  };
  auto committed = CommitTargetStart(
      kJob, "g", kLatest, a_, b_,
      {.cancelled = [] { return true; }, .translate = translation_.Fn()});
  EXPECT_EQ(committed.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(b_.altered, IsEmpty());
}

}  // namespace
}  // namespace ferry::mirror
