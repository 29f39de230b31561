#include "backend/embedded/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "backend/murmur2.h"
#include "testing/test_dir.h"

namespace ferry::backend::embedded {
namespace {

using ::ferry::testing::TestDir;

using ::testing::HasSubstr;

constexpr int64_t kNow = 1'700'000'000'000;

std::unique_ptr<Store> OpenStore(const std::string& path, int64_t retention_ms = -1,
                                 int64_t retention_bytes = -1) {
  auto store = Store::Open(
      {.path = path, .retention_ms = retention_ms, .retention_bytes = retention_bytes});
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

Record Keyed(std::string topic, std::string key, std::string value,
             int64_t timestamp_ms = 0) {
  return {.topic = std::move(topic),
          .key = std::move(key),
          .value = std::move(value),
          .timestamp_ms = timestamp_ms};
}

std::vector<PublishOutcome> AppendOk(Store& store, const std::vector<Record>& records) {
  std::vector<PublishOutcome> outcomes = store.Append(records, kNow);
  for (const PublishOutcome& outcome : outcomes)
    EXPECT_TRUE(outcome.status.ok()) << outcome.status;
  return outcomes;
}

std::vector<ConsumedRecord> FetchAll(const Store& store, const std::string& topic,
                                     int32_t partition, int64_t from = 0) {
  auto fetched = store.Fetch(topic, store.FindTopic(topic)->id, partition, from, 100000,
                             int64_t{1} << 30);
  EXPECT_TRUE(fetched.ok()) << fetched.status();
  return fetched.ok() ? fetched->records : std::vector<ConsumedRecord>{};
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(Store, AppendAssignsDenseOffsetsAndFetchReturnsTheRecords) {
  TestDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store->CreateTopic("orders", 1, 1, {}).ok());

  std::vector<Record> batch;
  for (int i = 0; i < 5; ++i)
    batch.push_back(Keyed("orders", "k", "v" + std::to_string(i)));
  batch[2].headers = {{"ferry.id", "m2"}};
  batch[3].timestamp_ms = 42;
  std::vector<PublishOutcome> outcomes = AppendOk(*store, batch);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(outcomes[i].offset, i);
  EXPECT_EQ(AppendOk(*store, {Keyed("orders", "k", "v5")})[0].offset, 5);

  std::vector<ConsumedRecord> records = FetchAll(*store, "orders", 0);
  ASSERT_EQ(records.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(records[i].offset, i);
    EXPECT_EQ(records[i].value, "v" + std::to_string(i));
    EXPECT_EQ(records[i].key, "k");
    EXPECT_EQ(records[i].topic, "orders");
  }
  EXPECT_EQ(records[0].timestamp_ms, kNow);  // 0: the node's clock
  EXPECT_EQ(records[3].timestamp_ms, 42);
  ASSERT_EQ(records[2].headers.size(), 1u);
  EXPECT_EQ(records[2].headers[0].value, "m2");
  EXPECT_EQ(store->Watermarks("orders", 0).value(),
            std::make_pair(int64_t{0}, int64_t{6}));
  EXPECT_EQ(FetchAll(*store, "orders", 0, 4).front().offset, 4);
}

TEST(Store, FetchIsBoundedByRecordsAndBytes) {
  TestDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store->CreateTopic("t", 1, 1, {}).ok());
  std::vector<Record> batch(10, Keyed("t", "", std::string(1000, 'x')));
  AppendOk(*store, batch);
  const uint64_t id = store->FindTopic("t")->id;
  EXPECT_EQ(store->Fetch("t", id, 0, 0, 3, 1 << 20)->records.size(), 3u);
  auto by_bytes = store->Fetch("t", id, 0, 0, 100, 2500);
  EXPECT_EQ(by_bytes->records.size(), 3u);  // stops once 2500 bytes are reached
  EXPECT_EQ(by_bytes->next_offset, 3);
  EXPECT_EQ(store->Fetch("t", id, 0, 10, 100, 1 << 20)->records.size(), 0u);
}

TEST(Store, KeyedRecordsLandWhereTheJavaClientPutsThem) {
  TestDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store->CreateTopic("t", 7, 1, {}).ok());
  for (int i = 0; i < 50; ++i) {
    const std::string key = "customer-" + std::to_string(i);
    EXPECT_EQ(AppendOk(*store, {Keyed("t", key, "v")})[0].partition,
              Murmur2Partition(key, 7));
  }
  Record ordered = Keyed("t", "ignored-key", "v");
  ordered.ordering_key = "customer-3";
  EXPECT_EQ(AppendOk(*store, {ordered})[0].partition, Murmur2Partition("customer-3", 7));
}

TEST(Store, KeylessRecordsGoRoundRobin) {
  TestDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store->CreateTopic("t", 3, 1, {}).ok());
  std::vector<PublishOutcome> outcomes =
      AppendOk(*store, std::vector<Record>(6, Keyed("t", "", "v")));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(outcomes[i].partition, i % 3);
  EXPECT_EQ(outcomes[5].offset, 1);
}

TEST(Store, TopicAdministrationErrorsHaveGrpcCodes) {
  TestDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store->CreateTopic("t", 2, 0, {{"retention.ms", "1000"}}).ok());
  EXPECT_EQ(store->CreateTopic("t", 2, 1, {}).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store->CreateTopic("bad name", 1, 1, {}).code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status replicas = store->CreateTopic("r", 1, 3, {});
  EXPECT_EQ(replicas.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(replicas), HasSubstr("replication factor 3"));
  absl::Status config = store->CreateTopic("c", 1, 1, {{"segment.bytes", "1024"}});
  EXPECT_EQ(config.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(config), HasSubstr("segment.bytes"));
  EXPECT_EQ(store->DescribeTopic("missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->DeleteTopic("missing").code(), absl::StatusCode::kNotFound);
  std::vector<PublishOutcome> unknown = store->Append({Keyed("missing", "", "v")}, kNow);
  EXPECT_EQ(unknown[0].status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(unknown[0].status), HasSubstr("missing"));

  auto info = store->DescribeTopic("t");
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->partitions.size(), 2u);
  EXPECT_EQ(info->partitions[1].id, 1);
  EXPECT_EQ(info->partitions[1].leader, 0);
  EXPECT_EQ(store->ListTopics(), std::vector<std::string>{"t"});
}

TEST(Store, DeletedTopicLosesItsRecordsAndOffsetsAndComesBackEmpty) {
  TestDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store->CreateTopic("t", 1, 1, {}).ok());
  AppendOk(*store, {Keyed("t", "", "a"), Keyed("t", "", "b")});
  ASSERT_TRUE(store->Commit("g", {{{"t", 0}, 2}}).ok());
  ASSERT_TRUE(store->DeleteTopic("t").ok());
  EXPECT_TRUE(store->ListTopics().empty());

  ASSERT_TRUE(store->CreateTopic("t", 1, 1, {}).ok());
  EXPECT_EQ(store->Watermarks("t", 0).value(), std::make_pair(int64_t{0}, int64_t{0}));
  EXPECT_TRUE(FetchAll(*store, "t", 0).empty());
  EXPECT_EQ(store->CommittedOffsets("g", {"t"}).value().at({"t", 0}), -1);
}

TEST(Store, OffsetsForTimeFindsTheFirstRecordAtOrAfterTheTime) {
  TestDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store->CreateTopic("t", 1, 1, {}).ok());
  // Offsets 0..4 at 100, 200, 150 (out of order), 300, 300.
  AppendOk(*store,
           {Keyed("t", "", "", 100), Keyed("t", "", "", 200), Keyed("t", "", "", 150),
            Keyed("t", "", "", 300), Keyed("t", "", "", 300)});
  auto at = [&](int64_t t) { return store->OffsetsForTime("t", t).value().at({"t", 0}); };
  EXPECT_EQ(at(0), 0);
  EXPECT_EQ(at(100), 0);
  EXPECT_EQ(at(101), 1);
  EXPECT_EQ(at(150), 1);  // offset 2 has 150, but offset 1 (200) comes first
  EXPECT_EQ(at(201), 3);
  EXPECT_EQ(at(300), 3);
  EXPECT_EQ(at(301), 5);  // none: the high watermark
  EXPECT_EQ(store->OffsetsForTime("missing", 0).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(Store, RetentionByAgeDeletesOldRecordsFromTheHead) {
  TestDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store->CreateTopic("t", 1, 1, {{"retention.ms", "1000"}}).ok());
  AppendOk(*store,
           {Keyed("t", "", "old", kNow - 5000), Keyed("t", "", "old", kNow - 2000),
            Keyed("t", "", "new", kNow - 500), Keyed("t", "", "new", kNow)});

  EXPECT_EQ(store->EnforceRetention(kNow).value(), 2);
  EXPECT_EQ(store->Watermarks("t", 0).value(), std::make_pair(int64_t{2}, int64_t{4}));
  // A reader below the low watermark continues from it.
  std::vector<ConsumedRecord> records = FetchAll(*store, "t", 0, 0);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].offset, 2);
  EXPECT_EQ(store->OffsetsForTime("t", 0).value().at({"t", 0}), 2);
  EXPECT_EQ(store->EnforceRetention(kNow).value(), 0);

  // Everything expires; offsets continue where they were, also after reopening.
  EXPECT_EQ(store->EnforceRetention(kNow + 10000).value(), 2);
  store.reset();
  store = OpenStore(dir.path());
  EXPECT_EQ(store->Watermarks("t", 0).value(), std::make_pair(int64_t{4}, int64_t{4}));
  EXPECT_EQ(AppendOk(*store, {Keyed("t", "", "again", kNow)})[0].offset, 4);
  EXPECT_EQ(store->OffsetsForTime("t", 0).value().at({"t", 0}), 4);
}

TEST(Store, CompactedTopicsHaveNoRetentionAndAcceptKafkasSegmentMs) {
  TestDir dir;
  auto store = OpenStore(dir.path(), /*retention_ms=*/1000, /*retention_bytes=*/10);
  // As the control plane creates its topic (segment.ms is Kafka's, a no-op here).
  ASSERT_TRUE(
      store
          ->CreateTopic("control", 1, 1,
                        {{"cleanup.policy", "compact"}, {"segment.ms", "3600000"}})
          .ok());
  EXPECT_EQ(store->CreateTopic("other", 1, 1, {{"min.insync.replicas", "2"}}).code(),
            absl::StatusCode::kInvalidArgument);
  AppendOk(*store,
           {Keyed("control", "k", "old", kNow - 5000), Keyed("control", "j", "new")});
  EXPECT_EQ(store->EnforceRetention(kNow).value(), 0);
  EXPECT_EQ(FetchAll(*store, "control", 0).size(), 2u);
}

std::vector<std::string> Values(const std::vector<ConsumedRecord>& records) {
  std::vector<std::string> values;
  for (const ConsumedRecord& r : records) values.emplace_back(r.value);
  return values;
}

TEST(Store, CompactionKeepsTheLatestRecordOfEachKeyAtItsOffset) {
  TestDir dir;
  std::unique_ptr<Store> store =
      Store::Open({.path = dir.path(), .compact_min_records = 6}).value();
  ASSERT_TRUE(store->CreateTopic("c", 1, 1, {{"cleanup.policy", "compact"}}).ok());
  // offsets:           0        1        2           3        4        5
  AppendOk(*store, {Keyed("c", "a", "a1", 100), Keyed("c", "b", "b1", 200),
                    Keyed("c", "", "x", 300), Keyed("c", "a", "a2", 400),
                    Keyed("c", "b", "b2", 500), Keyed("c", "a", "a3", 600)});
  EXPECT_EQ(store->EnforceRetention(kNow).value(), 3);

  const std::vector<ConsumedRecord> left = FetchAll(*store, "c", 0);
  EXPECT_EQ(Values(left), (std::vector<std::string>{"x", "b2", "a3"}));
  ASSERT_EQ(left.size(), 3u);
  EXPECT_EQ(left[0].offset, 2);  // keyless records stay
  EXPECT_EQ(left[2].offset, 5);
  EXPECT_EQ(store->Watermarks("c", 0).value(), std::make_pair(int64_t{2}, int64_t{6}));
  // A reader inside a gap continues at the next survivor.
  EXPECT_EQ(FetchAll(*store, "c", 0, 3).front().offset, 4);
  // Times still find the first surviving record at or after them.
  auto at = [&](int64_t t) { return store->OffsetsForTime("c", t).value().at({"c", 0}); };
  EXPECT_EQ(at(0), 2);
  EXPECT_EQ(at(350), 4);
  EXPECT_EQ(at(550), 5);
  EXPECT_EQ(at(700), 6);

  // Not due again until as many records as survived were appended.
  AppendOk(*store, {Keyed("c", "a", "a4"), Keyed("c", "b", "b3")});
  EXPECT_EQ(store->EnforceRetention(kNow).value(), 0);
  // Offsets continue after reopening; the topic is still compacted.
  store.reset();
  store = Store::Open({.path = dir.path(), .compact_min_records = 6}).value();
  EXPECT_EQ(AppendOk(*store, {Keyed("c", "b", "b4")})[0].offset, 8);
  AppendOk(*store, {Keyed("c", "a", "a5"), Keyed("c", "b", "b5"), Keyed("c", "a", "a6")});
  // b2 a3 a4 b3 b4 a5 go.
  EXPECT_EQ(store->EnforceRetention(kNow).value(), 6);
  EXPECT_EQ(Values(FetchAll(*store, "c", 0)),
            (std::vector<std::string>{"x", "b5", "a6"}));
}

TEST(Store, RetentionBySizeKeepsTheNewestRecordsWithinTheLimit) {
  TestDir dir;
  // Node default for topics created without retention.bytes.
  auto store = OpenStore(dir.path(), /*retention_ms=*/-1, /*retention_bytes=*/3500);
  ASSERT_TRUE(store->CreateTopic("t", 1, 1, {}).ok());
  AppendOk(*store, std::vector<Record>(10, Keyed("t", "", std::string(1000, 'x'))));
  EXPECT_EQ(store->EnforceRetention(kNow).value(), 7);
  EXPECT_EQ(store->Watermarks("t", 0).value(), std::make_pair(int64_t{7}, int64_t{10}));
  EXPECT_EQ(FetchAll(*store, "t", 0).size(), 3u);
}

TEST(Store, CommittedOffsetsSurviveReopening) {
  TestDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store->CreateTopic("t", 2, 1, {}).ok());
  ASSERT_TRUE(store->Commit("billing", {{{"t", 1}, 17}}).ok());
  ASSERT_TRUE(store->Commit("audit", {{{"t", 0}, 3}}).ok());
  store.reset();
  store = OpenStore(dir.path());
  auto offsets = store->CommittedOffsets("billing", {"t"});
  ASSERT_TRUE(offsets.ok());
  EXPECT_EQ(offsets->at({"t", 0}), -1);
  EXPECT_EQ(offsets->at({"t", 1}), 17);
  EXPECT_EQ(store->ListGroups(), (std::vector<std::string>{"audit", "billing"}));
  EXPECT_EQ(store->CommittedOffsets("billing", {"missing"}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(Store, ASecondOpenOfTheSameDirectoryFailsNamingIt) {
  TestDir dir;
  auto first = OpenStore(dir.path());
  auto second = Store::Open({.path = dir.path()});
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(Message(second.status()), HasSubstr(dir.path()));
  EXPECT_THAT(Message(second.status()), HasSubstr("LOCK"));
}

TEST(Store, AnUnusablePathFailsNamingIt) {
  TestDir dir;
  std::ofstream(dir.Sub("file")) << "not a directory";
  auto store = Store::Open({.path = dir.Sub("file/data")});
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(Message(store.status()), HasSubstr(dir.Sub("file/data")));
}

}  // namespace
}  // namespace ferry::backend::embedded
