// The subscribe path's delivery contract under stress, against a real Kafka
// broker and real ferryd processes (DESIGN.md §2 "Subscribe"):
// - at-least-once when clients drop messages and crash, and when a node dies;
// - ordering per key / per partition, and what key ordering buys in speed;
// - rebalances: revoked receipts are answered "receipt expired", nothing lost;
// - dead letters after max_delivery_attempts;
// - bounded node memory behind a slow client.
//
// Every ack the tests count is confirmed: the client sends a barrier
// (SubscriberStream::Sync) after its acks and counts only acks that the node
// applied without a failure result. Acks whose fate is unknown (the stream
// broke first) are not counted, so a message "acked" in the ledger was
// really acked by ferryd at least once.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"
#include "testing/kafka_client.h"
#include "testing/subscriber_stream.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::KafkaBroker;
using ::ferry::testing::MakeOpen;
using ::ferry::testing::SharedBroker;
using ::ferry::testing::SubscriberStream;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(60);

// (partition, offset)
using Position = std::pair<int32_t, int64_t>;

// What the test's clients saw and confirmed, shared by all client threads.
class Ledger {
 public:
  void Delivered(const v1::ReceivedMessage& m) {
    absl::MutexLock lock(&mu_);
    ++deliveries_;
    if (m.delivery_attempt() > 1) ++redeliveries_;
  }
  void Acked(const std::vector<Position>& positions) {
    absl::MutexLock lock(&mu_);
    for (const Position& p : positions) {
      if (++acks_[p] == 1) covered_ += unknown_.contains(p) ? 0 : 1;
    }
    total_acks_ += static_cast<int64_t>(positions.size());
  }
  // Acks whose fate is unknown: sent, but the stream broke before the
  // barrier came back. ferryd may have applied (and committed) them, and
  // then never delivers them again; or not, and then delivers them again.
  // They count as covered, and the test's final check that the group
  // committed up to the high watermark decides which it was.
  void MaybeAcked(const std::vector<Position>& positions) {
    absl::MutexLock lock(&mu_);
    for (const Position& p : positions) {
      if (unknown_.insert(p).second && !acks_.contains(p)) ++covered_;
    }
  }
  // Messages acked only through acks of unknown fate.
  int64_t only_maybe_acked() const {
    absl::MutexLock lock(&mu_);
    int64_t n = 0;
    for (const Position& p : unknown_) n += acks_.contains(p) ? 0 : 1;
    return n;
  }
  size_t unique_acked() const {
    absl::MutexLock lock(&mu_);
    return acks_.size();
  }
  // Waits until `count` distinct messages were acked (or maybe acked);
  // false on timeout.
  bool WaitAcked(size_t count, absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return covered_ >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  int64_t total_acks() const {
    absl::MutexLock lock(&mu_);
    return total_acks_;
  }
  int64_t deliveries() const {
    absl::MutexLock lock(&mu_);
    return deliveries_;
  }
  int64_t redeliveries() const {
    absl::MutexLock lock(&mu_);
    return redeliveries_;
  }
  // Offsets of `end` (partition -> high watermark) never acked; at most 20.
  std::vector<Position> Missing(const std::map<int32_t, int64_t>& end) const {
    absl::MutexLock lock(&mu_);
    std::vector<Position> missing;
    for (const auto& [partition, high] : end) {
      for (int64_t o = 0; o < high && missing.size() < 20; ++o) {
        if (!acks_.contains({partition, o}) && !unknown_.contains({partition, o})) {
          missing.push_back({partition, o});
        }
      }
    }
    return missing;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<Position, int> acks_ ABSL_GUARDED_BY(mu_);
  std::set<Position> unknown_ ABSL_GUARDED_BY(mu_);
  size_t covered_ ABSL_GUARDED_BY(mu_) = 0;  // |acks_ ∪ unknown_|
  int64_t total_acks_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t deliveries_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t redeliveries_ ABSL_GUARDED_BY(mu_) = 0;
};

struct ClientOptions {
  std::string address = {};
  v1::SubscriptionOpen open = {};
  // Share of delivered messages left unacked (neither acked nor nacked), as
  // a client that crashed while processing them would.
  double drop = 0;
  // Chance per batch that the client breaks its stream and reconnects.
  double disconnect = 0;
  // Processing time per message.
  absl::Duration per_message = absl::ZeroDuration();
  size_t max_batch = 50;
  uint32_t seed = 1;
  // Optional hooks: on the stream's reader thread when a message arrives, and
  // on the client thread just before the ack of a message is sent.
  SubscriberStream::MessageObserver on_delivered = nullptr;
  std::function<void(const v1::ReceivedMessage&)> on_acking = nullptr;
};

// One stream of one client in a thread: takes batches, acks (most of) them,
// confirms the acks with a barrier, and reconnects when its stream ends.
class Client {
 public:
  Client(ClientOptions options, Ledger* ledger)
      : options_(std::move(options)), ledger_(ledger), rng_(options_.seed) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Client() { Stop(/*graceful=*/false); }

  // Stops the thread; graceful: half-closes the stream (as a client shutting
  // down would), else cancels it.
  void Stop(bool graceful) {
    stop_ = true;
    graceful_ = graceful;
    if (thread_.joinable()) thread_.join();
  }

  int64_t reconnects() const { return reconnects_; }
  int64_t expired_acks() const { return expired_acks_; }
  int64_t unconfirmed_acks() const { return unconfirmed_acks_; }

 private:
  void Run() {
    std::unique_ptr<SubscriberStream> stream;
    std::bernoulli_distribution drop(options_.drop), disconnect(options_.disconnect);
    while (!stop_) {
      if (stream == nullptr) {
        stream = std::make_unique<SubscriberStream>(options_.address, options_.open,
                                                    options_.on_delivered);
        if (!stream->WaitOpened(absl::Seconds(5)).has_value()) {
          stream.reset();  // node down or shutting down: try again
          absl::SleepFor(absl::Milliseconds(200));
          continue;
        }
      }
      std::vector<v1::ReceivedMessage> batch;
      if (auto m = stream->Next(absl::Milliseconds(100))) batch.push_back(std::move(*m));
      while (!batch.empty() && batch.size() < options_.max_batch) {
        auto m = stream->Next(absl::ZeroDuration());
        if (!m.has_value()) break;
        batch.push_back(std::move(*m));
      }
      if (batch.empty()) {
        if (stream->ended()) stream.reset();
        continue;
      }
      std::vector<std::string> receipts;
      std::vector<Position> positions;
      for (const auto& m : batch) {
        ledger_->Delivered(m);
        if (drop(rng_)) continue;
        if (options_.per_message > absl::ZeroDuration())
          absl::SleepFor(options_.per_message);
        if (options_.on_acking) options_.on_acking(m);
        receipts.push_back(m.receipt());
        positions.push_back({m.partition(), m.offset()});
      }
      if (!receipts.empty()) Confirm(*stream, receipts, positions);
      if (disconnect(rng_)) {
        stream->Cancel();
        stream.reset();
        ++reconnects_;
      }
    }
    if (stream != nullptr) {
      if (graceful_) {
        stream->Close();
      } else {
        stream->Cancel();
      }
    }
  }

  void Confirm(SubscriberStream& stream, const std::vector<std::string>& receipts,
               const std::vector<Position>& positions) {
    const size_t before = stream.ReceiptResults().size();
    if (!stream.Ack(receipts) || !stream.Sync(absl::Seconds(10))) {
      unconfirmed_acks_ += static_cast<int64_t>(receipts.size());
      ledger_->MaybeAcked(positions);
      return;
    }
    std::set<std::string> failed;
    std::vector<v1::ReceiptResult> results = stream.ReceiptResults();
    for (size_t i = before; i < results.size(); ++i) {
      if (results[i].status().code() == grpc::StatusCode::FAILED_PRECONDITION) {
        failed.insert(results[i].receipt());
      }
    }
    std::vector<Position> acked;
    for (size_t i = 0; i < receipts.size(); ++i) {
      if (failed.contains(receipts[i])) {
        ++expired_acks_;
      } else {
        acked.push_back(positions[i]);
      }
    }
    ledger_->Acked(acked);
  }

  const ClientOptions options_;
  Ledger* const ledger_;
  std::mt19937 rng_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> graceful_{false};
  std::atomic<int64_t> reconnects_{0};
  std::atomic<int64_t> expired_acks_{0};
  std::atomic<int64_t> unconfirmed_acks_{0};
  std::thread thread_;
};

// VmRSS of a process in bytes; -1 if unreadable.
int64_t RssBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stoll(line.substr(6)) * 1024;  // "VmRSS:   12345 kB"
    }
  }
  return -1;
}

class SubscribeDeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = SharedBroker();
    ASSERT_NE(broker_, nullptr);
  }

  std::string Name() const {
    return ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  // Creates "delivery.<test>[suffix]" with `partitions` partitions.
  std::string CreateTopic(int partitions, const std::string& suffix = "") {
    std::string topic = absl::StrCat("delivery.", Name(), suffix);
    absl::Status s = broker_->CreateTopic(topic, partitions);
    EXPECT_TRUE(s.ok()) << s;
    return topic;
  }

  // Produces `count` records "k<i % keys>" = "v<i>" + padding, in chunks.
  void Produce(const std::string& topic, int count, int keys, size_t value_bytes = 0,
               int chunk = 20000) {
    const int kChunk = chunk;
    for (int start = 0; start < count; start += kChunk) {
      std::vector<std::pair<std::string, std::string>> records;
      for (int i = start; i < std::min(count, start + kChunk); ++i) {
        std::string value = absl::StrCat("v", i);
        if (value.size() < value_bytes) value.resize(value_bytes, 'x');
        records.emplace_back(absl::StrCat("k", i % keys), std::move(value));
      }
      absl::Status s = testing::ProduceMany(broker_->bootstrap(), topic, records);
      ASSERT_TRUE(s.ok()) << s;
    }
  }

  // Every record of the topic as a plain consumer reads it: the truth the
  // ledger is checked against.
  std::vector<testing::ConsumedRecord> ReadAll(const std::string& topic, int partitions) {
    std::vector<int32_t> all;
    for (int32_t p = 0; p < partitions; ++p) all.push_back(p);
    auto records = testing::ConsumeToEnd(broker_->bootstrap(), topic, all);
    EXPECT_TRUE(records.ok()) << records.status();
    return records.ok() ? *std::move(records) : std::vector<testing::ConsumedRecord>{};
  }

  std::map<int32_t, int64_t> HighWatermarks(const std::string& topic, int partitions) {
    std::map<int32_t, int64_t> end;
    for (int32_t p = 0; p < partitions; ++p) end[p] = 0;
    for (const auto& r : ReadAll(topic, partitions)) {
      end[r.partition] = std::max(end[r.partition], r.offset + 1);
    }
    return end;
  }

  // A ferryd on the shared broker with `subscribe:` settings (YAML lines
  // indented by two spaces) after a 100 ms commit interval.
  std::unique_ptr<FerrydProcess> Node(const std::string& subscribe_yaml = "") {
    auto node =
        FerrydProcess::Start(testing::MainClusterYaml(broker_->bootstrap()) +
                             "subscribe:\n  commit_interval: 100ms\n" + subscribe_yaml);
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? *std::move(node) : nullptr;
  }

  // Waits until the group's committed offsets equal `expected`.
  void ExpectCommitted(const std::string& group, const std::string& topic,
                       const std::map<int32_t, int64_t>& expected) {
    std::map<int32_t, int64_t> last;
    const absl::Time until = absl::Now() + absl::Seconds(30);
    while (absl::Now() < until) {
      auto committed = testing::CommittedOffsets(broker_->bootstrap(), group, topic,
                                                 static_cast<int32_t>(expected.size()));
      if (committed.ok()) {
        last = *committed;
        if (last == expected) return;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    ADD_FAILURE() << "committed offsets never reached "
                  << ::testing::PrintToString(expected)
                  << "; last: " << ::testing::PrintToString(last);
  }

  void Report(const std::string& key, int64_t value) {
    RecordProperty(key, std::to_string(value));
    std::printf("[ measured ] %s.%s = %lld\n", Name().c_str(), key.c_str(),
                static_cast<long long>(value));
    std::fflush(stdout);
  }
  void Report(const std::string& key, double value) {
    RecordProperty(key, std::to_string(value));
    std::printf("[ measured ] %s.%s = %.2f\n", Name().c_str(), key.c_str(), value);
    std::fflush(stdout);
  }

  KafkaBroker* broker_ = nullptr;
};

int64_t Sum(const std::map<int32_t, int64_t>& end) {
  int64_t total = 0;
  for (const auto& [p, o] : end) total += o;
  return total;
}

// Counts "group=<group> assigned" lines in a node's log: one per rebalance
// the node took part in.
int Assignments(const FerrydProcess& node, const std::string& group) {
  const std::string log = node.Log();
  const std::string needle = absl::StrCat("group=", group, " assigned ");
  int count = 0;
  for (size_t at = log.find(needle); at != std::string::npos;
       at = log.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

bool WaitAssignments(const FerrydProcess& node, const std::string& group, int count,
                     absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  while (Assignments(node, group) < count) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

// 1. Clients that drop 10% of their messages and crash now and then lose
// nothing: every message is acked at least once and the group commits to the
// end.
TEST_F(SubscribeDeliveryTest, NoLossWhenClientsDropMessagesAndCrash) {
  constexpr int kPartitions = 4, kMessages = 20000, kClients = 4;
  const std::string topic = CreateTopic(kPartitions);
  Produce(topic, kMessages, 100);
  const std::map<int32_t, int64_t> end = HighWatermarks(topic, kPartitions);
  ASSERT_EQ(Sum(end), kMessages);
  auto node = Node();
  ASSERT_NE(node, nullptr);

  v1::SubscriptionOpen open = MakeOpen(Name(), {topic});
  open.mutable_ack_deadline()->set_seconds(2);
  open.mutable_flow()->set_max_outstanding_messages(200);
  Ledger ledger;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(
        std::make_unique<Client>(ClientOptions{.address = node->grpc_address(),
                                               .open = open,
                                               .drop = 0.10,
                                               .disconnect = 0.03,
                                               .seed = static_cast<uint32_t>(i + 1)},
                                 &ledger));
  }
  const bool all = ledger.WaitAcked(kMessages, absl::Seconds(75));
  int64_t reconnects = 0, expired = 0, unconfirmed = 0;
  for (auto& c : clients) {
    c->Stop(/*graceful=*/true);
    reconnects += c->reconnects();
    expired += c->expired_acks();
    unconfirmed += c->unconfirmed_acks();
  }
  Report("deliveries", ledger.deliveries());
  Report("redeliveries", ledger.redeliveries());
  Report("duplicate_acks",
         ledger.total_acks() - static_cast<int64_t>(ledger.unique_acked()));
  Report("acked_only_by_unconfirmed_acks", ledger.only_maybe_acked());
  Report("reconnects", reconnects);
  Report("expired_acks", expired);
  Report("unconfirmed_acks", unconfirmed);
  ASSERT_TRUE(all) << ledger.unique_acked() << " of " << kMessages
                   << " acked; never acked: "
                   << ::testing::PrintToString(ledger.Missing(end));
  EXPECT_GT(reconnects, 0);
  EXPECT_GT(ledger.redeliveries(), 0);
  ExpectCommitted(Name(), topic, end);
}

// `count` clients, each with one stream to every node (as the SDK connects),
// acking after 2 ms per message in batches of up to 20.
std::vector<std::unique_ptr<Client>> ClientsOnEachNode(
    int count, const v1::SubscriptionOpen& open, const std::vector<FerrydProcess*>& nodes,
    Ledger* ledger) {
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < count; ++i) {
    for (FerrydProcess* node : nodes) {
      clients.push_back(std::make_unique<Client>(
          ClientOptions{.address = node->grpc_address(),
                        .open = open,
                        .per_message = absl::Milliseconds(2),
                        .max_batch = 20,
                        .seed = static_cast<uint32_t>(clients.size() + 1)},
          ledger));
    }
  }
  return clients;
}

// 2. kill -9 of one of two nodes costs redeliveries, never messages.
TEST_F(SubscribeDeliveryTest, NoLossWhenANodeIsKilled) {
  constexpr int kPartitions = 4, kMessages = 20000, kClients = 4;
  const std::string topic = CreateTopic(kPartitions);
  Produce(topic, kMessages, 100);
  const std::map<int32_t, int64_t> end = HighWatermarks(topic, kPartitions);
  ASSERT_EQ(Sum(end), kMessages);
  const std::string settings = "  session_timeout: 6s\n";
  auto doomed = Node(settings);
  auto survivor = Node(settings);
  ASSERT_NE(doomed, nullptr);
  ASSERT_NE(survivor, nullptr);

  v1::SubscriptionOpen open = MakeOpen(Name(), {topic});
  open.mutable_ack_deadline()->set_seconds(5);
  open.mutable_flow()->set_max_outstanding_messages(50);
  Ledger ledger;
  std::vector<std::unique_ptr<Client>> clients =
      ClientsOnEachNode(kClients, open, {doomed.get(), survivor.get()}, &ledger);
  // Kill in the middle, once both nodes own partitions.
  ASSERT_TRUE(WaitAssignments(*survivor, Name(), 1, kWait)) << survivor->Log();
  ASSERT_TRUE(ledger.WaitAcked(kMessages * 3 / 10, kWait))
      << "only " << ledger.unique_acked() << " acked before the kill";
  ASSERT_LT(ledger.unique_acked(), static_cast<size_t>(kMessages) * 7 / 10)
      << "consumption too far along for a kill in the middle";
  const size_t acked_at_kill = ledger.unique_acked();
  const absl::Time killed_at = absl::Now();
  doomed->process().Signal(SIGKILL);
  auto exit = doomed->process().Wait(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();

  const bool all = ledger.WaitAcked(kMessages, absl::Seconds(60));
  const absl::Duration recovery = absl::Now() - killed_at;
  int64_t unconfirmed = 0, expired = 0;
  for (auto& c : clients) {
    c->Stop(/*graceful=*/true);
    unconfirmed += c->unconfirmed_acks();
    expired += c->expired_acks();
  }
  Report("acked_at_kill", static_cast<int64_t>(acked_at_kill));
  Report("deliveries", ledger.deliveries());
  Report("redeliveries", ledger.redeliveries());
  Report("duplicate_acks",
         ledger.total_acks() - static_cast<int64_t>(ledger.unique_acked()));
  Report("acked_only_by_unconfirmed_acks", ledger.only_maybe_acked());
  Report("duplicate_deliveries", ledger.deliveries() - kMessages);
  Report("unconfirmed_acks", unconfirmed);
  Report("expired_acks", expired);
  Report("kill_to_all_acked_ms",
         static_cast<int64_t>(absl::ToInt64Milliseconds(recovery)));
  ASSERT_TRUE(all) << ledger.unique_acked() << " of " << kMessages
                   << " acked; never acked: "
                   << ::testing::PrintToString(ledger.Missing(end)) << "\nsurvivor log:\n"
                   << survivor->Log();
  ExpectCommitted(Name(), topic, end);
}

// Per-message clients for the ordering tests: each acks right after
// "processing", and the gate of the acked message (its key, or its
// partition) is released just before the ack is sent, so a delivery of the
// gate's next message seen while the gate is held is a real overlap.
class OrderingRecorder {
 public:
  explicit OrderingRecorder(bool by_key) : by_key_(by_key) {}

  std::string Gate(const v1::ReceivedMessage& m) const {
    return by_key_ ? absl::StrCat(m.partition(), "/", m.key())
                   : absl::StrCat(m.partition());
  }
  // On the stream's reader thread, the moment a message arrives.
  void OnDelivered(const v1::ReceivedMessage& m) {
    absl::MutexLock lock(&mu_);
    if (first_delivery_ == absl::InfiniteFuture()) first_delivery_ = absl::Now();
    auto [it, fresh] = holding_.emplace(Gate(m), m.offset());
    if (!fresh) {
      if (overlaps_++ == 0) {
        first_overlap_ = absl::StrCat("gate ", it->first, ": offset ", m.offset(),
                                      " delivered while ", it->second, " was unacked");
      }
      it->second = m.offset();
    }
  }
  // Before sending the ack of `m`.
  void OnAcking(const v1::ReceivedMessage& m) {
    absl::MutexLock lock(&mu_);
    const std::string gate = Gate(m);
    if (auto it = holding_.find(gate); it != holding_.end() && it->second == m.offset()) {
      holding_.erase(it);
    }
    acked_[gate].push_back(m.offset());
    ++total_;
    last_ack_ = absl::Now();
  }
  bool WaitAcked(int64_t count, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return total_ >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

  mutable absl::Mutex mu_;
  const bool by_key_;
  std::map<std::string, int64_t> holding_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<int64_t>> acked_ ABSL_GUARDED_BY(mu_);
  int64_t total_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t overlaps_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_overlap_ ABSL_GUARDED_BY(mu_);
  absl::Time first_delivery_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  absl::Time last_ack_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

struct OrderedRun {
  int64_t acked = 0;
  absl::Duration elapsed;  // first delivery to last ack
};

// `clients` streams of `open` on `node`, each sleeping `min_delay` +
// uniform(0, `jitter`) per message, until `count` acks.
OrderedRun RunOrdered(FerrydProcess& node, const v1::SubscriptionOpen& open, int clients,
                      int64_t count, absl::Duration min_delay, absl::Duration jitter,
                      OrderingRecorder& recorder) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937 rng(i + 7);
      std::uniform_int_distribution<int64_t> micros(0, absl::ToInt64Microseconds(jitter));
      SubscriberStream stream(
          node.grpc_address(), open,
          [&](const v1::ReceivedMessage& m) { recorder.OnDelivered(m); });
      while (!stop) {
        auto m = stream.Next(absl::Milliseconds(100));
        if (!m.has_value()) {
          if (stream.ended()) return;
          continue;
        }
        absl::SleepFor(min_delay + absl::Microseconds(micros(rng)));
        recorder.OnAcking(*m);
        stream.Ack({m->receipt()});
      }
      stream.Close();
    });
  }
  recorder.WaitAcked(count, absl::Seconds(60));
  stop = true;
  for (auto& t : threads) t.join();
  absl::MutexLock lock(&recorder.mu_);
  return {.acked = recorder.total_,
          .elapsed = recorder.last_ack_ - recorder.first_delivery_};
}

// Checks that every gate's offsets were acked exactly once each, in offset
// order, and that no gate ever had two messages out.
void ExpectOrdered(OrderingRecorder& recorder,
                   const std::vector<testing::ConsumedRecord>& records) {
  std::map<std::string, std::vector<int64_t>> expected;
  for (const auto& r : records) {
    v1::ReceivedMessage m;
    m.set_partition(r.partition);
    m.set_key(r.key);
    expected[recorder.Gate(m)].push_back(r.offset);
  }
  for (auto& [gate, offsets] : expected) std::sort(offsets.begin(), offsets.end());
  absl::MutexLock lock(&recorder.mu_);
  EXPECT_EQ(recorder.overlaps_, 0) << "first: " << recorder.first_overlap_;
  int wrong = 0;
  for (const auto& [gate, offsets] : expected) {
    auto it = recorder.acked_.find(gate);
    const std::vector<int64_t> got =
        it == recorder.acked_.end() ? std::vector<int64_t>{} : it->second;
    if (got != offsets && wrong++ < 3) {
      ADD_FAILURE() << "gate " << gate << ": acked in order "
                    << ::testing::PrintToString(got) << ", expected "
                    << ::testing::PrintToString(offsets);
    }
  }
  EXPECT_EQ(wrong, 0) << "gates acked out of order or incompletely";
  EXPECT_EQ(recorder.acked_.size(), expected.size());
}

// 3a. Key ordering: per key, messages go out one at a time in offset order,
// to any of 8 clients.
TEST_F(SubscribeDeliveryTest, KeyOrderingHoldsAcrossParallelClients) {
  constexpr int kPartitions = 4, kMessages = 4000, kKeys = 200;
  const std::string topic = CreateTopic(kPartitions);
  Produce(topic, kMessages, kKeys);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  v1::SubscriptionOpen open = MakeOpen(Name(), {topic}, v1::ORDERING_KEY);
  open.mutable_flow()->set_max_outstanding_messages(20);
  OrderingRecorder recorder(/*by_key=*/true);
  OrderedRun run = RunOrdered(*node, open, 8, kMessages, absl::ZeroDuration(),
                              absl::Microseconds(1000), recorder);
  Report("acked", run.acked);
  Report("elapsed_ms", static_cast<int64_t>(absl::ToInt64Milliseconds(run.elapsed)));
  ASSERT_EQ(run.acked, kMessages);
  ExpectOrdered(recorder, ReadAll(topic, kPartitions));
}

// 3b. Partition ordering likewise, per partition.
TEST_F(SubscribeDeliveryTest, PartitionOrderingHoldsAcrossParallelClients) {
  constexpr int kPartitions = 4, kMessages = 2000, kKeys = 200;
  const std::string topic = CreateTopic(kPartitions);
  Produce(topic, kMessages, kKeys);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  v1::SubscriptionOpen open = MakeOpen(Name(), {topic}, v1::ORDERING_PARTITION);
  open.mutable_flow()->set_max_outstanding_messages(20);
  OrderingRecorder recorder(/*by_key=*/false);
  OrderedRun run = RunOrdered(*node, open, 8, kMessages, absl::ZeroDuration(),
                              absl::Microseconds(1000), recorder);
  Report("acked", run.acked);
  Report("elapsed_ms", static_cast<int64_t>(absl::ToInt64Milliseconds(run.elapsed)));
  ASSERT_EQ(run.acked, kMessages);
  ExpectOrdered(recorder, ReadAll(topic, kPartitions));
}

// 3c. On one partition with 8 slow clients, key ordering runs messages of
// different keys in parallel; partition ordering runs one at a time.
TEST_F(SubscribeDeliveryTest, KeyOrderingIsSeveralTimesFasterThanPartitionOrdering) {
  constexpr int kMessages = 1500, kKeys = 200, kClients = 8;
  const std::string topic = CreateTopic(1);
  Produce(topic, kMessages, kKeys);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const absl::Duration work = absl::Milliseconds(2);

  v1::SubscriptionOpen by_key =
      MakeOpen(absl::StrCat(Name(), ".key"), {topic}, v1::ORDERING_KEY);
  by_key.mutable_flow()->set_max_outstanding_messages(4);
  OrderingRecorder key_recorder(/*by_key=*/true);
  OrderedRun key_run = RunOrdered(*node, by_key, kClients, kMessages, work,
                                  absl::ZeroDuration(), key_recorder);

  v1::SubscriptionOpen by_partition =
      MakeOpen(absl::StrCat(Name(), ".partition"), {topic}, v1::ORDERING_PARTITION);
  by_partition.mutable_flow()->set_max_outstanding_messages(4);
  OrderingRecorder partition_recorder(/*by_key=*/false);
  OrderedRun partition_run = RunOrdered(*node, by_partition, kClients, kMessages, work,
                                        absl::ZeroDuration(), partition_recorder);

  const double key_rate = kMessages / absl::ToDoubleSeconds(key_run.elapsed);
  const double partition_rate = kMessages / absl::ToDoubleSeconds(partition_run.elapsed);
  Report("key_mode_msgs_per_s", key_rate);
  Report("partition_mode_msgs_per_s", partition_rate);
  Report("speedup", key_rate / partition_rate);
  ASSERT_EQ(key_run.acked, kMessages);
  ASSERT_EQ(partition_run.acked, kMessages);
  EXPECT_GE(key_rate, 3 * partition_rate);
  const auto records = ReadAll(topic, 1);
  ExpectOrdered(key_recorder, records);
  ExpectOrdered(partition_recorder, records);
}

// Under drops, expired deadlines and crashing clients, a message of a gate
// (key or partition) may only go out after an ack for the gate's previous
// message was sent: redeliveries must not let later messages overtake.
class GateChecker {
 public:
  GateChecker(const std::vector<testing::ConsumedRecord>& records, bool by_key) {
    std::map<std::string, std::vector<Position>> gates;
    for (const auto& r : records) {
      gates[by_key ? absl::StrCat(r.partition, "/", r.key) : absl::StrCat(r.partition)]
          .push_back({r.partition, r.offset});
    }
    for (auto& [gate, positions] : gates) {
      std::sort(positions.begin(), positions.end());
      for (size_t i = 1; i < positions.size(); ++i) {
        predecessor_[positions[i]] = positions[i - 1];
      }
    }
  }
  void OnDelivered(const v1::ReceivedMessage& m) {
    absl::MutexLock lock(&mu_);
    if (m.delivery_attempt() > 1) ++redeliveries_;
    auto it = predecessor_.find({m.partition(), m.offset()});
    if (it == predecessor_.end() || ack_sent_.contains(it->second)) return;
    if (violations_++ == 0) {
      first_ = absl::StrCat(m.partition(), "@", m.offset(), " (attempt ",
                            m.delivery_attempt(), ") delivered before any ack of ",
                            it->second.first, "@", it->second.second);
    }
  }
  void OnAcking(const v1::ReceivedMessage& m) {
    absl::MutexLock lock(&mu_);
    ack_sent_.insert({m.partition(), m.offset()});
  }
  int64_t violations() const {
    absl::MutexLock lock(&mu_);
    return violations_;
  }
  int64_t redeliveries() const {
    absl::MutexLock lock(&mu_);
    return redeliveries_;
  }
  std::string first() const {
    absl::MutexLock lock(&mu_);
    return first_;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<Position, Position> predecessor_;  // immutable after construction
  std::set<Position> ack_sent_ ABSL_GUARDED_BY(mu_);
  int64_t violations_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t redeliveries_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_ ABSL_GUARDED_BY(mu_);
};

// 3d. Ordering survives drops, deadline expiry and client crashes, in key and
// in partition mode; and every message still gets acked.
TEST_F(SubscribeDeliveryTest, OrderingHoldsWhenClientsDropMessagesAndCrash) {
  constexpr int kPartitions = 4, kClients = 6;
  struct Mode {
    v1::Ordering ordering;
    const char* name;
    int messages;
  };
  // Partition mode serialises a whole partition behind every 1 s stall, so
  // it gets fewer messages.
  for (const Mode mode : {Mode{v1::ORDERING_KEY, "key", 2000},
                          Mode{v1::ORDERING_PARTITION, "partition", 200}}) {
    SCOPED_TRACE(mode.name);
    const std::string topic = CreateTopic(kPartitions, absl::StrCat(".", mode.name));
    Produce(topic, mode.messages, 100);
    const auto records = ReadAll(topic, kPartitions);
    ASSERT_EQ(records.size(), static_cast<size_t>(mode.messages));
    std::map<int32_t, int64_t> end;
    for (const auto& r : records)
      end[r.partition] = std::max(end[r.partition], r.offset + 1);
    auto node = Node();
    ASSERT_NE(node, nullptr);
    const std::string group = absl::StrCat(Name(), ".", mode.name);
    v1::SubscriptionOpen open = MakeOpen(group, {topic}, mode.ordering);
    open.mutable_ack_deadline()->set_seconds(1);
    GateChecker checker(records, mode.ordering == v1::ORDERING_KEY);
    Ledger ledger;
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < kClients; ++i) {
      clients.push_back(std::make_unique<Client>(
          ClientOptions{
              .address = node->grpc_address(),
              .open = open,
              .drop = 0.05,
              .disconnect = 0.02,
              .seed = static_cast<uint32_t>(100 + i),
              .on_delivered =
                  [&](const v1::ReceivedMessage& m) { checker.OnDelivered(m); },
              .on_acking = [&](const v1::ReceivedMessage& m) { checker.OnAcking(m); }},
          &ledger));
    }
    const bool all = ledger.WaitAcked(mode.messages, absl::Seconds(60));
    for (auto& c : clients) c->Stop(/*graceful=*/true);
    Report(absl::StrCat(mode.name, "_redeliveries"), checker.redeliveries());
    Report(absl::StrCat(mode.name, "_order_violations"), checker.violations());
    EXPECT_EQ(checker.violations(), 0) << "first: " << checker.first();
    EXPECT_GT(checker.redeliveries(), 0);
    ASSERT_TRUE(all) << ledger.unique_acked() << " of " << mode.messages
                     << " acked; never acked: "
                     << ::testing::PrintToString(ledger.Missing(end));
    ExpectCommitted(group, topic, end);
  }
}

// Acks `held` on `stream` and expects every one answered FAILED_PRECONDITION
// "receipt expired".
void ExpectAllExpired(SubscriberStream& stream,
                      const std::vector<v1::ReceivedMessage>& held) {
  const size_t before = stream.ReceiptResults().size();
  std::vector<std::string> receipts;
  for (const auto& m : held) receipts.push_back(m.receipt());
  ASSERT_TRUE(stream.Ack(receipts));
  ASSERT_TRUE(stream.Sync());
  std::map<std::string, v1::ReceiptResult> results;
  std::vector<v1::ReceiptResult> all = stream.ReceiptResults();
  for (size_t i = before; i < all.size(); ++i) results[all[i].receipt()] = all[i];
  for (const auto& m : held) {
    auto it = results.find(m.receipt());
    if (it == results.end()) {
      ADD_FAILURE() << "ack of revoked " << m.partition() << "@" << m.offset()
                    << " was accepted (no receipt result)";
      continue;
    }
    EXPECT_EQ(it->second.status().code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(it->second.status().message(), HasSubstr("receipt expired"));
  }
}

// 4. A second node joins mid-consumption and leaves again: acks for receipts
// of revoked partitions are answered "receipt expired", and nothing is lost.
TEST_F(SubscribeDeliveryTest, RebalanceExpiresRevokedReceiptsAndLosesNothing) {
  constexpr int kPartitions = 4, kMessages = 20000;
  const std::string topic = CreateTopic(kPartitions);
  Produce(topic, kMessages, 100);
  const std::map<int32_t, int64_t> end = HighWatermarks(topic, kPartitions);
  ASSERT_EQ(Sum(end), kMessages);
  auto first = Node("  session_timeout: 6s\n");
  // The joiner leaves the group as soon as its last stream closes.
  auto joiner = Node("  session_timeout: 6s\n  group_idle_timeout: 0s\n");
  ASSERT_NE(first, nullptr);
  ASSERT_NE(joiner, nullptr);

  v1::SubscriptionOpen open = MakeOpen(Name(), {topic});
  open.mutable_flow()->set_max_outstanding_messages(50);
  // Holds messages of the first node unacked across the rebalances.
  v1::SubscriptionOpen hold_open = open;
  hold_open.mutable_flow()->set_max_outstanding_messages(20);
  SubscriberStream holder(first->grpc_address(), hold_open);
  std::vector<v1::ReceivedMessage> held = holder.Take(20, kWait);
  ASSERT_EQ(held.size(), 20u);
  ASSERT_EQ(Assignments(*first, Name()), 1) << first->Log();

  Ledger ledger;
  auto slow = [&](FerrydProcess& node, uint32_t seed) {
    return std::make_unique<Client>(ClientOptions{.address = node.grpc_address(),
                                                  .open = open,
                                                  .per_message = absl::Milliseconds(2),
                                                  .max_batch = 20,
                                                  .seed = seed},
                                    &ledger);
  };
  std::vector<std::unique_ptr<Client>> on_first;
  on_first.push_back(slow(*first, 1));
  on_first.push_back(slow(*first, 2));
  ASSERT_TRUE(ledger.WaitAcked(1000, kWait));

  // Join: both nodes get partitions; every receipt of the first node's old
  // assignment expired with it (eager rebalance revokes all).
  std::vector<std::unique_ptr<Client>> on_joiner;
  on_joiner.push_back(slow(*joiner, 3));
  on_joiner.push_back(slow(*joiner, 4));
  ASSERT_TRUE(WaitAssignments(*first, Name(), 2, kWait)) << first->Log();
  ASSERT_TRUE(WaitAssignments(*joiner, Name(), 1, kWait)) << joiner->Log();
  const size_t acked_at_join = ledger.unique_acked();
  ExpectAllExpired(holder, held);
  EXPECT_LT(acked_at_join, static_cast<size_t>(kMessages)) << "the join came too late";

  // The holder's credit came back with the revoke; it now holds messages of
  // the new assignment.
  held = holder.Take(20, kWait);
  ASSERT_EQ(held.size(), 20u);
  ASSERT_TRUE(ledger.WaitAcked(acked_at_join + 1000, kWait));

  // Leave: the joiner's streams close, its group goes idle at once and leaves.
  for (auto& c : on_joiner) c->Stop(/*graceful=*/true);
  ASSERT_TRUE(WaitAssignments(*first, Name(), 3, kWait)) << first->Log();
  const size_t acked_at_leave = ledger.unique_acked();
  ExpectAllExpired(holder, held);
  EXPECT_LT(acked_at_leave, static_cast<size_t>(kMessages)) << "the leave came too late";

  // The holder stops holding: from now on it is just a client.
  holder.Cancel();
  const bool all = ledger.WaitAcked(kMessages, kWait);
  int64_t expired = 0, unconfirmed = 0;
  for (auto& c : on_first) {
    c->Stop(/*graceful=*/true);
    expired += c->expired_acks();
    unconfirmed += c->unconfirmed_acks();
  }
  for (auto& c : on_joiner) {
    expired += c->expired_acks();
    unconfirmed += c->unconfirmed_acks();
  }
  Report("acked_at_join", static_cast<int64_t>(acked_at_join));
  Report("acked_at_leave", static_cast<int64_t>(acked_at_leave));
  Report("deliveries", ledger.deliveries());
  Report("duplicate_acks",
         ledger.total_acks() - static_cast<int64_t>(ledger.unique_acked()));
  Report("acked_only_by_unconfirmed_acks", ledger.only_maybe_acked());
  Report("clients_expired_acks", expired);
  Report("unconfirmed_acks", unconfirmed);
  ASSERT_TRUE(all) << ledger.unique_acked() << " of " << kMessages
                   << " acked; never acked: "
                   << ::testing::PrintToString(ledger.Missing(end))
                   << "\nfirst node log:\n"
                   << first->Log();
  ExpectCommitted(Name(), topic, end);
}

// 4b. SIGTERM: the stopping node cancels its streams, commits the acked
// prefix and leaves the group, so its partitions move at once, long before
// the (here 30 s) session timeout would move them.
TEST_F(SubscribeDeliveryTest, GracefulNodeStopHandsPartitionsOverAtOnce) {
  constexpr int kPartitions = 4, kMessages = 20000, kClients = 4;
  const std::string topic = CreateTopic(kPartitions);
  Produce(topic, kMessages, 100);
  const std::map<int32_t, int64_t> end = HighWatermarks(topic, kPartitions);
  ASSERT_EQ(Sum(end), kMessages);
  const std::string settings = "  session_timeout: 30s\n";
  auto stopping = Node(settings);
  auto staying = Node(settings);
  ASSERT_NE(stopping, nullptr);
  ASSERT_NE(staying, nullptr);

  v1::SubscriptionOpen open = MakeOpen(Name(), {topic});
  open.mutable_flow()->set_max_outstanding_messages(50);
  Ledger ledger;
  std::vector<std::unique_ptr<Client>> clients =
      ClientsOnEachNode(kClients, open, {stopping.get(), staying.get()}, &ledger);
  ASSERT_TRUE(WaitAssignments(*staying, Name(), 1, kWait)) << staying->Log();
  ASSERT_TRUE(ledger.WaitAcked(kMessages * 3 / 10, kWait));
  const int assignments = Assignments(*staying, Name());
  const size_t acked_at_stop = ledger.unique_acked();
  const absl::Time stopped_at = absl::Now();
  stopping->process().Signal(SIGTERM);
  auto exit = stopping->process().Wait(absl::Seconds(20));
  const absl::Duration exit_after = absl::Now() - stopped_at;
  ASSERT_TRUE(exit.ok()) << "ferryd did not stop within 20 s of SIGTERM\n"
                         << stopping->Log();
  EXPECT_EQ(*exit, 0) << stopping->Log();
  const bool moved =
      WaitAssignments(*staying, Name(), assignments + 1, absl::Seconds(20));
  const absl::Duration moved_after = absl::Now() - stopped_at;
  const bool all = ledger.WaitAcked(kMessages, kWait);
  for (auto& c : clients) c->Stop(/*graceful=*/true);
  Report("acked_at_stop", static_cast<int64_t>(acked_at_stop));
  Report("exit_ms", static_cast<int64_t>(absl::ToInt64Milliseconds(exit_after)));
  Report("handover_ms", static_cast<int64_t>(absl::ToInt64Milliseconds(moved_after)));
  Report("duplicate_acks",
         ledger.total_acks() - static_cast<int64_t>(ledger.unique_acked()));
  Report("acked_only_by_unconfirmed_acks", ledger.only_maybe_acked());
  Report("duplicate_deliveries", ledger.deliveries() - kMessages);
  EXPECT_TRUE(moved) << "partitions did not move to the staying node";
  EXPECT_LT(moved_after, absl::Seconds(15)) << "handover waited for the session timeout";
  ASSERT_TRUE(all) << ledger.unique_acked() << " of " << kMessages
                   << " acked; never acked: "
                   << ::testing::PrintToString(ledger.Missing(end))
                   << "\nstaying node log:\n"
                   << staying->Log();
  ExpectCommitted(Name(), topic, end);
}

// 5. A message nacked max_delivery_attempts times goes to "<topic>.dlq" with
// ferry.dlq.* headers, and the group commits past it.
TEST_F(SubscribeDeliveryTest, MessageNackedTooOftenGoesToTheDeadLetterTopic) {
  const std::string topic = CreateTopic(1);
  const std::string dlq = topic + ".dlq";
  ASSERT_TRUE(broker_->CreateTopic(dlq, 1).ok());
  Produce(topic, 3, 3);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  v1::SubscriptionOpen open = MakeOpen(Name(), {topic});
  open.set_max_delivery_attempts(2);
  SubscriberStream stream(node->grpc_address(), open);

  std::vector<v1::ReceivedMessage> first = stream.Take(3, kWait);
  ASSERT_EQ(first.size(), 3u);
  ASSERT_EQ(first[1].offset(), 1);
  ASSERT_TRUE(stream.Ack({first[0].receipt(), first[2].receipt()}));
  ASSERT_TRUE(stream.Nack({first[1].receipt()}, absl::ZeroDuration()));
  auto second = stream.Next(absl::Seconds(10));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->offset(), 1);
  EXPECT_EQ(second->delivery_attempt(), 2);
  ASSERT_TRUE(stream.Nack({second->receipt()}, absl::ZeroDuration()));
  ASSERT_TRUE(stream.Sync());
  EXPECT_TRUE(stream.ReceiptResults().size() == 1u)  // the Sync marker only
      << ::testing::PrintToString(stream.ReceiptResults().size());

  auto dead = testing::ConsumeRecords(broker_->bootstrap(), dlq, {0}, 1);
  ASSERT_TRUE(dead.ok()) << dead.status() << "\n" << node->Log();
  ASSERT_EQ(dead->size(), 1u);
  const testing::ConsumedRecord& r = dead->front();
  EXPECT_EQ(r.key, first[1].key());
  EXPECT_EQ(r.value, first[1].value());
  std::map<std::string, std::string> headers(r.headers.begin(), r.headers.end());
  EXPECT_EQ(headers["ferry.dlq.topic"], topic);
  EXPECT_EQ(headers["ferry.dlq.partition"], "0");
  EXPECT_EQ(headers["ferry.dlq.offset"], "1");
  EXPECT_EQ(headers["ferry.dlq.group"], Name());
  EXPECT_EQ(headers["ferry.dlq.attempts"], "2");
  ExpectCommitted(Name(), topic, {{0, 3}});
  EXPECT_FALSE(stream.Next(absl::Seconds(1)).has_value()) << "delivered a third time";
  // Exactly one dead letter.
  auto again = testing::ConsumeToEnd(broker_->bootstrap(), dlq, {0});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->size(), 1u);
  EXPECT_TRUE(stream.Close().ok());
}

// 5b. The dead-letter write belongs to the node, not to the stream whose nack
// triggered it: a client that nacks for the last time and crashes at once
// must not cause a second dead letter.
TEST_F(SubscribeDeliveryTest, DeadLetterIsWrittenOnceWhenTheNackingClientCrashes) {
  constexpr int kRounds = 5;
  const std::string topic = CreateTopic(1);
  const std::string dlq = topic + ".dlq";
  ASSERT_TRUE(broker_->CreateTopic(dlq, 1).ok());
  Produce(topic, kRounds, kRounds);
  auto node = Node();
  ASSERT_NE(node, nullptr);
  v1::SubscriptionOpen open = MakeOpen(Name(), {topic}, v1::ORDERING_PARTITION);
  open.set_max_delivery_attempts(1);
  // Each round: the partition's head is delivered once, nacked, and the
  // stream is cancelled right behind the nack. When the cancel is slow, the
  // node may already have sent the next head to the dying stream: that was its
  // one attempt, so the next stream never sees it (the node dead-letters it
  // when it would redeliver). A stream that sees nothing means the last head
  // went that way.
  int64_t next = 0;
  while (next < kRounds) {
    SubscriberStream stream(node->grpc_address(), open);
    auto m = stream.Next(absl::Seconds(15));
    if (!m.has_value()) {
      EXPECT_EQ(next, kRounds - 1) << "no head delivered after offset " << next - 1;
      break;
    }
    EXPECT_GE(m->offset(), next);
    EXPECT_LE(m->offset(), next + 1) << "more than one head per cancelled stream";
    EXPECT_EQ(m->delivery_attempt(), 1) << "offset " << m->offset() << " came back";
    ASSERT_TRUE(stream.Nack({m->receipt()}, absl::ZeroDuration()));
    stream.Cancel();
    next = m->offset() + 1;
  }
  ExpectCommitted(Name(), topic, {{0, kRounds}});
  absl::SleepFor(absl::Seconds(2));  // let any second dead letter arrive
  auto dead = testing::ConsumeToEnd(broker_->bootstrap(), dlq, {0});
  ASSERT_TRUE(dead.ok()) << dead.status();
  std::map<std::string, int> copies;
  for (const auto& r : *dead) {
    for (const auto& [k, v] : r.headers) {
      if (k == "ferry.dlq.offset") ++copies[v];
    }
  }
  Report("dead_letters", static_cast<int64_t>(dead->size()));
  EXPECT_EQ(copies.size(), static_cast<size_t>(kRounds));
  EXPECT_EQ(dead->size(), static_cast<size_t>(kRounds))
      << "dead letters per offset: " << ::testing::PrintToString(copies);
}

// 5c. Issue 24, fault 1: a dead-letter write that librdkafka refuses at once
// (the topic is gone) completed inline under the group's lock and wedged the
// group, then the whole node (no new connection, SIGTERM ignored). Now the
// write backs off, the node keeps serving, the letters arrive once the topic
// is back, and the node stops on SIGTERM.
TEST_F(SubscribeDeliveryTest, MissingDeadLetterTopicLeavesTheNodeServing) {
  constexpr int kMessages = 10;
  const std::string topic = CreateTopic(1);
  const std::string dlq = topic + ".dlq";
  ASSERT_TRUE(broker_->CreateTopic(dlq, 1).ok());
  Produce(topic, kMessages, kMessages);
  auto node = Node();
  ASSERT_NE(node, nullptr);

  // Opening with dead-lettering into a topic that does not exist is refused.
  v1::SubscriptionOpen missing = MakeOpen(Name(), {topic});
  missing.set_max_delivery_attempts(1);
  missing.set_dead_letter_topic(dlq + ".nope");
  SubscriberStream refused(node->grpc_address(), missing);
  grpc::Status refusal = refused.WaitEnded();
  EXPECT_EQ(refusal.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(refusal.error_message(), HasSubstr("ferry topics create"));

  v1::SubscriptionOpen open = MakeOpen(Name(), {topic});
  open.set_max_delivery_attempts(1);
  SubscriberStream stream(node->grpc_address(), open);
  std::vector<v1::ReceivedMessage> first = stream.Take(kMessages, kWait);
  ASSERT_EQ(first.size(), static_cast<size_t>(kMessages));
  auto deleted =
      testing::RunFerryCli({"--server", node->grpc_address(), "topics", "delete", dlq});
  ASSERT_TRUE(deleted.ok() && deleted->exit_code == 0)
      << (deleted.ok() ? deleted->out + deleted->err : deleted.status().ToString());
  std::vector<std::string> receipts;
  for (const auto& m : first) receipts.push_back(m.receipt());
  ASSERT_TRUE(stream.Nack(receipts, absl::ZeroDuration()));
  ASSERT_TRUE(stream.Sync());
  // Let the writes fail a few times (the tries 1 s and 3 s after the first).
  absl::SleepFor(absl::Seconds(5));

  // New connections and other groups are served.
  auto status = testing::RunFerryCli({"--server", node->grpc_address(), "status"});
  ASSERT_TRUE(status.ok() && status->exit_code == 0)
      << (status.ok() ? status->out + status->err : status.status().ToString())
      << node->Log();
  SubscriberStream other(node->grpc_address(), MakeOpen(Name() + ".other", {topic}));
  EXPECT_EQ(other.Take(kMessages, kWait).size(), static_cast<size_t>(kMessages))
      << node->Log();
  EXPECT_TRUE(stream.Sync()) << "the group's own stream stopped answering";
  EXPECT_THAT(node->Log(), HasSubstr("create the topic"));

  // The topic is back: every letter arrives, the group commits past them.
  ASSERT_TRUE(broker_->CreateTopic(dlq, 1).ok());
  size_t letters = 0;
  for (absl::Time until = absl::Now() + absl::Seconds(120);
       letters < kMessages && absl::Now() < until; absl::SleepFor(absl::Seconds(1))) {
    auto dead = testing::ConsumeToEnd(broker_->bootstrap(), dlq, {0});
    if (dead.ok()) letters = dead->size();
  }
  EXPECT_EQ(letters, static_cast<size_t>(kMessages)) << node->Log();
  ExpectCommitted(Name(), topic, {{0, kMessages}});

  // And the node stops on SIGTERM.
  node->process().Signal(SIGTERM);
  auto exit = node->process().Wait(absl::Seconds(40));
  ASSERT_TRUE(exit.ok()) << "ferryd ignored SIGTERM\n" << node->Log();
  EXPECT_EQ(*exit, 0) << node->Log();
}

// 6. A 200 MB backlog behind a slow client: the node stops fetching instead
// of buffering, so its memory stays bounded.
TEST_F(SubscribeDeliveryTest, SlowClientOnHugeBacklogKeepsNodeMemoryBounded) {
  constexpr int kPartitions = 4, kMessages = 200000;
  constexpr size_t kValueBytes = 1024;
  const std::string topic = CreateTopic(kPartitions);
  const absl::Time produce_start = absl::Now();
  Produce(topic, kMessages, 1000, kValueBytes);
  Report("produce_ms",
         static_cast<int64_t>(absl::ToInt64Milliseconds(absl::Now() - produce_start)));
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const pid_t pid = node->process().pid();
  const int64_t baseline = RssBytes(pid);
  ASSERT_GT(baseline, 0);

  std::atomic<int64_t> peak{baseline};
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    while (sampling) {
      const int64_t rss = RssBytes(pid);
      int64_t seen = peak;
      while (rss > seen && !peak.compare_exchange_weak(seen, rss)) {
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  });

  v1::SubscriptionOpen open = MakeOpen(Name(), {topic});
  open.mutable_flow()->set_max_outstanding_messages(10);
  SubscriberStream stream(node->grpc_address(), open);
  int64_t acked = 0;
  const absl::Time until = absl::Now() + absl::Seconds(12);
  while (absl::Now() < until) {
    std::vector<v1::ReceivedMessage> batch = stream.Take(10, absl::Seconds(5));
    if (batch.empty()) break;
    absl::SleepFor(absl::Milliseconds(100));  // ~100 messages a second
    std::vector<std::string> receipts;
    for (const auto& m : batch) receipts.push_back(m.receipt());
    ASSERT_TRUE(stream.Ack(receipts));
    acked += static_cast<int64_t>(batch.size());
  }
  sampling = false;
  sampler.join();
  constexpr int64_t kMiB = 1 << 20;
  // The design's budget, per partition: the node's buffer (8 MiB default) +
  // librdkafka's prefetch queue (8 MiB) + one fetch (1 MiB); on top of the
  // idle node, plus 64 MiB of slack for allocator and gRPC overhead.
  const int64_t budget = baseline + kPartitions * (8 + 8 + 1) * kMiB + 64 * kMiB;
  Report("acked", acked);
  Report("baseline_rss_mib", baseline / kMiB);
  Report("peak_rss_mib", peak.load() / kMiB);
  Report("budget_mib", budget / kMiB);
  EXPECT_GT(acked, 500);
  EXPECT_LT(peak.load(), budget) << "ferryd grew past the design's memory budget";
  EXPECT_LT(peak.load(), 256 * kMiB);
  EXPECT_TRUE(node->process().Running()) << node->Log();
  stream.Cancel();
}

// 6b. The same with tiny messages: partition_buffer_bytes counts key, value
// and headers, so it must also bound what the node spends per buffered
// message (record copy, map nodes, ordering state), or a backlog of small
// messages grows the node far past the buffer.
TEST_F(SubscribeDeliveryTest, SlowClientOnBacklogOfTinyMessagesKeepsNodeMemoryBounded) {
  constexpr int kMessages = 1000000;
  const std::string topic = CreateTopic(1);
  const absl::Time produce_start = absl::Now();
  Produce(topic, kMessages, 1000, 0, 250000);  // values "v<i>": ~7 bytes
  Report("produce_ms",
         static_cast<int64_t>(absl::ToInt64Milliseconds(absl::Now() - produce_start)));
  auto node = Node();
  ASSERT_NE(node, nullptr);
  const pid_t pid = node->process().pid();
  const int64_t baseline = RssBytes(pid);
  ASSERT_GT(baseline, 0);

  v1::SubscriptionOpen open = MakeOpen(Name(), {topic});
  open.mutable_flow()->set_max_outstanding_messages(10);
  SubscriberStream stream(node->grpc_address(), open);
  int64_t peak = baseline, acked = 0;
  const absl::Time until = absl::Now() + absl::Seconds(15);
  while (absl::Now() < until) {
    std::vector<v1::ReceivedMessage> batch = stream.Take(10, absl::Seconds(5));
    if (batch.empty()) break;
    absl::SleepFor(absl::Milliseconds(100));
    std::vector<std::string> receipts;
    for (const auto& m : batch) receipts.push_back(m.receipt());
    ASSERT_TRUE(stream.Ack(receipts));
    acked += static_cast<int64_t>(batch.size());
    peak = std::max(peak, RssBytes(pid));
  }
  constexpr int64_t kMiB = 1 << 20;
  // One partition buffer (8 MiB) + librdkafka's prefetch queue (8 MiB) + one
  // fetch (1 MiB) + 64 MiB slack, on top of the idle node.
  const int64_t budget = baseline + 8 * kMiB + 8 * kMiB + kMiB + 64 * kMiB;
  Report("acked", acked);
  Report("baseline_rss_mib", baseline / kMiB);
  Report("peak_rss_mib", peak / kMiB);
  Report("budget_mib", budget / kMiB);
  EXPECT_GT(acked, 500);
  EXPECT_LT(peak, budget) << "ferryd grew past the design's memory budget";
  EXPECT_TRUE(node->process().Running()) << node->Log();
  stream.Cancel();
}

}  // namespace
}  // namespace ferry
