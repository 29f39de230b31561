// KafkaGroupMember against a real broker: a seek issued the moment a
// partition is assigned takes effect, also while librdkafka is still starting
// the partition's fetcher after a rebalance.
#include "backend/kafka/kafka_group_member.h"

#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "backend/idle_listener.h"
#include "librdkafka/rdkafka.h"
#include "testing/kafka_broker.h"
#include "testing/kafka_client.h"

namespace ferry::backend::kafka {
namespace {

constexpr int kPartitions = 4;
constexpr int kRecordsPerPartition = 5;

// Seeks every partition it is assigned to offset 0 from inside OnAssigned,
// as the subscribe path does for a seek the partition missed while it
// changed owners, and tracks which seeks completed.
class SeekOnAssignListener final : public GroupMemberListener {
 public:
  void SetMember(GroupMember* member) {
    member_ = member;
    member_set_.Notify();
  }

  void OnAssigned(const std::vector<AssignedPartition>& partitions) override {
    member_set_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    ++assignments_;
    // The subscribe path commits every commit interval, so a commit is often
    // in flight when a seek follows an assignment.
    std::map<TopicPartition, int64_t> positions;
    for (const auto& p : partitions) positions[p.partition] = p.next_offset;
    member_->Commit(positions);
    for (const auto& p : partitions) {
      seek_done_[p.partition] = false;
      first_offset_.erase(p.partition);
      member_->Seek(p.partition, 0);
    }
  }
  std::map<TopicPartition, int64_t> OnRevoked(
      const std::vector<TopicPartition>& partitions) override {
    absl::MutexLock lock(&mu_);
    for (const auto& tp : partitions) seek_done_.erase(tp);
    return {};
  }
  void OnRecords(std::vector<ConsumedRecord> records) override {
    absl::MutexLock lock(&mu_);
    for (const auto& r : records) {
      TopicPartition tp{r.topic, r.partition};
      auto done = seek_done_.find(tp);
      if (done != seek_done_.end() && done->second)
        first_offset_.try_emplace(tp, r.offset);
    }
  }
  void OnSeekDone(const TopicPartition& partition, int64_t offset) override {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(offset, 0);
    if (seek_done_.contains(partition)) seek_done_[partition] = true;
  }
  void OnError(const absl::Status& error) override {
    absl::MutexLock lock(&mu_);
    errors_.push_back(std::string(error.message()));
  }

  // Waits until more than `assignments` assignments happened and every owned
  // partition completed its seek and delivered a record after it; returns
  // the partitions that did not.
  std::set<TopicPartition> WaitSettled(int assignments, absl::Duration timeout) {
    const absl::Time until = absl::Now() + timeout;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        std::set<TopicPartition> missing;
        for (const auto& [tp, done] : seek_done_) {
          if (!done || !first_offset_.contains(tp)) missing.insert(tp);
        }
        if (assignments_ > assignments && !seek_done_.empty() && missing.empty()) {
          return {};
        }
        if (absl::Now() >= until) return missing;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  int assignments() {
    absl::MutexLock lock(&mu_);
    return assignments_;
  }
  std::map<TopicPartition, int64_t> first_offsets() {
    absl::MutexLock lock(&mu_);
    return first_offset_;
  }
  std::vector<std::string> errors() {
    absl::MutexLock lock(&mu_);
    return errors_;
  }

 private:
  absl::Notification member_set_;
  GroupMember* member_ = nullptr;
  absl::Mutex mu_;
  int assignments_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<TopicPartition, bool> seek_done_ ABSL_GUARDED_BY(mu_);
  // The first record delivered after each partition's seek completed.
  std::map<TopicPartition, int64_t> first_offset_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> errors_ ABSL_GUARDED_BY(mu_);
};

TEST(KafkaGroupMemberTest, SeekRightAfterEachRebalanceTakesEffect) {
  testing::KafkaBroker* broker = testing::SharedBroker();
  ASSERT_NE(broker, nullptr);
  const std::string topic = "member.seek_after_rebalance";
  ASSERT_TRUE(broker->CreateTopic(topic, kPartitions).ok());
  std::vector<std::pair<std::string, std::string>> records;
  for (int p = 0; p < kPartitions; ++p) {
    for (int i = 0; i < kRecordsPerPartition; ++i) {
      records.emplace_back(absl::StrCat("k", p, "-", i), "v");
    }
  }
  ASSERT_TRUE(testing::ProduceMany(broker->bootstrap(), topic, records).ok());

  LibrdkafkaClientFactory factory;
  const Properties properties = {{"bootstrap.servers", broker->bootstrap()}};
  // "latest": every assignment starts at the end, so only a completed seek
  // to 0 delivers records, and the first one must be offset 0.
  const GroupMemberOptions member_options = {
      .group = "member-seek-after-rebalance",
      .topics = {topic},
      .start = {.kind = StartPosition::Kind::kLatest}};
  const KafkaGroupMember::Options options = {.session_timeout = absl::Seconds(6)};

  SeekOnAssignListener listener;
  auto member =
      KafkaGroupMember::Join(properties, "", member_options, options, &listener, factory);
  ASSERT_TRUE(member.ok()) << member.status();
  listener.SetMember(member->get());
  EXPECT_EQ(listener.WaitSettled(0, absl::Seconds(30)), std::set<TopicPartition>{});

  // Each join and leave of a second member revokes everything and assigns
  // anew (eager), while librdkafka still stops the old fetchers.
  for (int round = 0; round < 4; ++round) {
    IdleListener idle;
    int before = listener.assignments();
    {
      auto other =
          KafkaGroupMember::Join(properties, "", member_options, options, &idle, factory);
      ASSERT_TRUE(other.ok()) << other.status();
      EXPECT_EQ(listener.WaitSettled(before, absl::Seconds(20)),
                std::set<TopicPartition>{})
          << "round " << round << " after a member joined";
      before = listener.assignments();
    }  // the second member leaves
    EXPECT_EQ(listener.WaitSettled(before, absl::Seconds(20)), std::set<TopicPartition>{})
        << "round " << round << " after the member left";
    for (const auto& [tp, offset] : listener.first_offsets()) {
      EXPECT_EQ(offset, 0) << tp.topic << "/" << tp.partition << " round " << round;
    }
  }
  // Problems the member reported and retried (seen: a seek that timed out
  // while a fresh broker still loaded its coordinator); the outcome above is
  // what counts.
  for (const std::string& error : listener.errors()) {
    std::cerr << "[ reported ] " << error << "\n";
  }
}

// What a record carried or should carry: a null value is a tombstone.
struct PlainRecord {
  std::optional<std::string> value;
  std::vector<std::pair<std::string, std::string>> headers;
  bool operator==(const PlainRecord&) const = default;
};

std::ostream& operator<<(std::ostream& out, const PlainRecord& r) {
  out << (r.value ? "\"" + r.value->substr(0, 20) + "\"" : "null") << " {";
  for (const auto& [k, v] : r.headers) out << k << "=" << v << " ";
  return out << "}";
}

// Produces `records` to partition 0 as one batch compressed with `codec`.
void ProduceBatch(const std::string& bootstrap, const std::string& topic,
                  const char* codec, const std::vector<PlainRecord>& records) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [key, value] :
       std::map<std::string, std::string>{{"bootstrap.servers", bootstrap},
                                          {"compression.codec", codec},
                                          {"linger.ms", "1000"}}) {
    ASSERT_EQ(rd_kafka_conf_set(conf, key.c_str(), value.c_str(), error, sizeof error),
              RD_KAFKA_CONF_OK)
        << error;
  }
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  ASSERT_NE(producer, nullptr) << error;
  for (const PlainRecord& r : records) {
    rd_kafka_headers_t* headers = rd_kafka_headers_new(r.headers.size());
    for (const auto& [k, v] : r.headers) {
      rd_kafka_header_add(headers, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                          static_cast<ssize_t>(v.size()));
    }
    void* value = r.value ? const_cast<char*>(r.value->data()) : nullptr;
    const size_t value_size = r.value ? r.value->size() : 0;
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
        RD_KAFKA_V_VALUE(value, value_size), RD_KAFKA_V_HEADERS(headers),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
  }
  EXPECT_EQ(rd_kafka_flush(producer, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(producer);
}

// Keeps a copy of every record, by offset.
class CollectingListener final : public IdleListener {
 public:
  void OnRecords(std::vector<ConsumedRecord> records) override {
    absl::MutexLock lock(&mu_);
    for (const ConsumedRecord& r : records) {
      // A rebalance on a fresh broker may deliver a record again: the last
      // delivery counts.
      PlainRecord out;
      if (r.value.data() != nullptr) out.value = std::string(r.value);
      for (const HeaderView& h : r.headers) out.headers.emplace_back(h.key, h.value);
      records_[r.offset] = std::move(out);
    }
  }

  std::map<int64_t, PlainRecord> WaitFor(size_t count, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, count]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return records_.size() >= count;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return records_;
  }

 private:
  absl::Mutex mu_;
  std::map<int64_t, PlainRecord> records_ ABSL_GUARDED_BY(mu_);
};

// The member asks librdkafka for a record's headers only when the byte after
// its value is not a zero count (MayHaveHeaders): every record, compressed or
// not, with an empty or a null value, must still arrive with exactly its own.
TEST(KafkaGroupMemberTest, EachRecordArrivesWithExactlyItsHeaders) {
  testing::KafkaBroker* broker = testing::SharedBroker();
  ASSERT_NE(broker, nullptr);
  const std::string topic = "member.headers";
  ASSERT_TRUE(broker->CreateTopic(topic, 1).ok());
  const std::vector<PlainRecord> batch = {
      {"plain", {}},
      {"one", {{"a", "1"}}},
      {"", {{"empty-value", "x"}}},
      {"", {}},
      {std::nullopt, {{"tombstone", "y"}}},
      {std::nullopt, {}},
      {std::string(3000, 'v'), {{"k1", "v1"}, {"k2", ""}, {"", "no name"}}},
      {std::string("ends in zero\0", 13), {}},
      {"last", {{"z", std::string(300, 'h')}}},
  };
  std::vector<PlainRecord> sent;
  for (const char* codec : {"none", "gzip", "snappy", "lz4", "zstd"}) {
    ASSERT_NO_FATAL_FAILURE(ProduceBatch(broker->bootstrap(), topic, codec, batch));
    sent.insert(sent.end(), batch.begin(), batch.end());
  }

  LibrdkafkaClientFactory factory;
  CollectingListener listener;
  auto member =
      KafkaGroupMember::Join({{"bootstrap.servers", broker->bootstrap()}}, "",
                             {.group = "member-headers",
                              .topics = {topic},
                              .start = {.kind = StartPosition::Kind::kEarliest}},
                             {.session_timeout = absl::Seconds(6)}, &listener, factory);
  ASSERT_TRUE(member.ok()) << member.status();
  const std::map<int64_t, PlainRecord> received =
      listener.WaitFor(sent.size(), absl::Seconds(30));
  ASSERT_EQ(received.size(), sent.size());
  int64_t offset = 0;
  for (const auto& [at, record] : received) {
    EXPECT_EQ(at, offset);
    EXPECT_EQ(record, sent[static_cast<size_t>(offset)]) << "offset " << offset;
    ++offset;
  }
}

// Counts records and notes when the first and the last arrived. Takes 10 ms
// per call, as a member behind a busy subscriber does, so that fetches
// outpace it.
class TimingListener final : public IdleListener {
 public:
  void OnRecords(std::vector<ConsumedRecord> records) override {
    absl::SleepFor(absl::Milliseconds(10));
    absl::MutexLock lock(&mu_);
    if (count_ == 0) first_ = absl::Now();
    count_ += records.size();
    last_ = absl::Now();
  }

  // The time from the first record to the `count`th, or nullopt if they did
  // not all arrive within `timeout`.
  std::optional<absl::Duration> WaitFor(size_t count, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, count]()
                      ABSL_SHARED_LOCKS_REQUIRED(mu_) { return count_ >= count; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&enough), timeout)) return std::nullopt;
    return last_ - first_;
  }

 private:
  absl::Mutex mu_;
  size_t count_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time first_ ABSL_GUARDED_BY(mu_);
  absl::Time last_ ABSL_GUARDED_BY(mu_);
};

// One partition holds a backlog larger than the member's prefetch, the other
// nothing. After each fetch the full partition's queue is over the limit, so
// librdkafka's next fetch asks for the empty partition alone and the broker
// holds it for fetch.wait.max.ms; the member's default keeps that short.
// With librdkafka's 500 ms the records took 3.3 s to arrive, with 100 ms 0.74 s.
TEST(KafkaGroupMemberTest, AnEmptyPartitionDoesNotHoldUpAFullOne) {
  testing::KafkaBroker* broker = testing::SharedBroker();
  ASSERT_NE(broker, nullptr);
  const std::string topic = "member.empty_beside_full";
  ASSERT_TRUE(broker->CreateTopic(topic, 2).ok());
  constexpr int kRecords = 1024;
  constexpr int64_t kPrefetchBytes = 64 << 10;
  {
    // Small batches (16 records), so that each fetch stops near the prefetch.
    char error[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    for (const auto& [key, value] : std::map<std::string, std::string>{
             {"bootstrap.servers", broker->bootstrap()}, {"batch.num.messages", "16"}}) {
      ASSERT_EQ(rd_kafka_conf_set(conf, key.c_str(), value.c_str(), error, sizeof error),
                RD_KAFKA_CONF_OK)
          << error;
    }
    rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
    ASSERT_NE(producer, nullptr) << error;
    std::string value(1024, 'v');
    for (int i = 0; i < kRecords; ++i) {
      ASSERT_EQ(rd_kafka_producev(
                    producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
                    RD_KAFKA_V_VALUE(value.data(), value.size()),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    EXPECT_EQ(rd_kafka_flush(producer, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(producer);
  }

  LibrdkafkaClientFactory factory;
  TimingListener listener;
  auto member =
      KafkaGroupMember::Join({{"bootstrap.servers", broker->bootstrap()}}, "",
                             {.group = "member-empty-beside-full",
                              .topics = {topic},
                              .start = {.kind = StartPosition::Kind::kEarliest},
                              .max_prefetch_bytes = kPrefetchBytes},
                             {.session_timeout = absl::Seconds(6)}, &listener, factory);
  ASSERT_TRUE(member.ok()) << member.status();
  const std::optional<absl::Duration> took =
      listener.WaitFor(kRecords, absl::Seconds(60));
  ASSERT_TRUE(took.has_value()) << "not every record arrived";
  EXPECT_LT(*took, absl::Seconds(2)) << absl::FormatDuration(*took);
}

}  // namespace
}  // namespace ferry::backend::kafka
