#include "publish/sojourn_gate.h"

#include <gtest/gtest.h>

#include <vector>

namespace ferry::publish {
namespace {

constexpr absl::Duration kBudget = absl::Seconds(5);
const absl::Time kStart = absl::FromUnixSeconds(1'000'000);

SojournGate::Ticket Admit(SojournGate& gate, std::string_view topic, absl::Time now) {
  absl::Duration waited;
  std::optional<SojournGate::Ticket> ticket = gate.TryAdmit(topic, now, &waited);
  EXPECT_TRUE(ticket.has_value()) << topic << " refused, its oldest waited " << waited;
  return ticket.value_or(SojournGate::Ticket{});
}

bool Refuses(SojournGate& gate, std::string_view topic, absl::Time now) {
  absl::Duration waited;
  return !gate.TryAdmit(topic, now, &waited).has_value();
}

// A cluster that answers every batch within the budget, however many are in
// flight at once and however long it has been busy, is never refused.
TEST(SojournGate, ABusyClusterThatAnswersWithinTheBudgetIsNeverRefused) {
  SojournGate gate(kBudget);
  std::vector<SojournGate::Ticket> in_flight;
  absl::Time now = kStart;
  // 10 minutes of a deep queue: 200 batches in flight, each answered 4.9 s
  // after it was admitted.
  for (int step = 0; step < 120'000; ++step) {
    now += absl::Milliseconds(5);
    absl::Duration waited;
    std::optional<SojournGate::Ticket> ticket = gate.TryAdmit("orders", now, &waited);
    ASSERT_TRUE(ticket.has_value()) << "refused at step " << step << " after " << waited;
    in_flight.push_back(*ticket);
    if (in_flight.size() == 980) {
      gate.Done(in_flight.front());
      in_flight.erase(in_flight.begin());
    }
  }
}

TEST(SojournGate, RefusesOnlyOnceTheOldestUnansweredBatchWaitedLongerThanTheBudget) {
  SojournGate gate(kBudget);
  const SojournGate::Ticket oldest = Admit(gate, "orders", kStart);
  Admit(gate, "orders", kStart + absl::Seconds(1));
  EXPECT_FALSE(Refuses(gate, "orders", kStart + kBudget)) << "at the budget: admitted";
  absl::Duration waited;
  EXPECT_FALSE(gate.TryAdmit("orders", kStart + kBudget + absl::Nanoseconds(1), &waited)
                   .has_value());
  EXPECT_EQ(waited, kBudget + absl::Nanoseconds(1));
  // Once the oldest is answered, the next oldest (admitted a second later)
  // has waited just under the budget.
  gate.Done(oldest);
  EXPECT_FALSE(Refuses(gate, "orders", kStart + kBudget + absl::Milliseconds(500)));
}

// One topic that cannot be written (no leader) refuses its own batches, not
// another topic's on the same cluster.
TEST(SojournGate, AStalledTopicRefusesItsOwnBatchesButNotAnotherTopics) {
  SojournGate gate(kBudget);
  Admit(gate, "stalled", kStart);
  absl::Time now = kStart;
  for (int i = 0; i < 100; ++i) {
    now += absl::Milliseconds(100);
    absl::Duration waited;
    const std::optional<SojournGate::Ticket> healthy =
        gate.TryAdmit("healthy", now, &waited);
    ASSERT_TRUE(healthy.has_value()) << "refused after " << now - kStart;
    gate.Done(*healthy);
  }
  EXPECT_TRUE(Refuses(gate, "stalled", now));
  EXPECT_FALSE(Refuses(gate, "healthy", now));
  EXPECT_FALSE(Refuses(gate, "new", now));
}

// Batches of a topic go to different partitions and are answered out of
// order: the oldest unanswered one is what counts, not the oldest admitted
// nor the last answered.
TEST(SojournGate, AnswersOutOfOrderLeaveTheOldestUnansweredBatchInCharge) {
  SojournGate gate(kBudget);
  const SojournGate::Ticket first = Admit(gate, "orders", kStart);
  const SojournGate::Ticket second = Admit(gate, "orders", kStart + absl::Seconds(1));
  const SojournGate::Ticket third = Admit(gate, "orders", kStart + absl::Seconds(2));
  gate.Done(third);
  gate.Done(first);
  // `second` (admitted at 1 s) is the oldest unanswered one now.
  EXPECT_TRUE(Refuses(gate, "orders", kStart + absl::Seconds(6) + absl::Milliseconds(1)));
  const SojournGate::Ticket fourth = Admit(gate, "orders", kStart + absl::Seconds(6));
  gate.Done(second);
  // Then `fourth` (admitted at 6 s), not `third` (answered long ago).
  const SojournGate::Ticket fifth = Admit(gate, "orders", kStart + absl::Seconds(11));
  EXPECT_TRUE(
      Refuses(gate, "orders", kStart + absl::Seconds(11) + absl::Milliseconds(1)));
  gate.Done(fifth);
  gate.Done(fourth);
  EXPECT_EQ(gate.topics(), 0u) << "nothing in flight: nothing kept";
  EXPECT_FALSE(Refuses(gate, "orders", kStart + absl::Minutes(1)));
}

TEST(SojournGate, AnsweredOutOfOrderTheMiddleBatchStillHoldsItsTopicUntilAnswered) {
  SojournGate gate(kBudget);
  const SojournGate::Ticket first = Admit(gate, "orders", kStart);
  const SojournGate::Ticket second = Admit(gate, "orders", kStart);
  gate.Done(first);
  EXPECT_TRUE(Refuses(gate, "orders", kStart + absl::Seconds(6)));
  gate.Done(second);
  EXPECT_EQ(gate.topics(), 0u);
}

// 1,000s of topics: a topic's state lives only while it has a batch in flight.
TEST(SojournGate, ATopicWithNothingInFlightKeepsNoState) {
  SojournGate gate(kBudget);
  std::vector<SojournGate::Ticket> tickets;
  for (int t = 0; t < 1000; ++t) {
    const std::string topic = "topic." + std::to_string(t);
    tickets.push_back(Admit(gate, topic, kStart));
    tickets.push_back(Admit(gate, topic, kStart));
  }
  EXPECT_EQ(gate.topics(), 1000u);
  // Answered newest first: each topic's older batch is answered last.
  for (auto it = tickets.rbegin(); it != tickets.rend(); ++it) gate.Done(*it);
  EXPECT_EQ(gate.topics(), 0u);
  // A refused batch leaves no state either.
  const SojournGate::Ticket stalled = Admit(gate, "stalled", kStart);
  EXPECT_TRUE(Refuses(gate, "stalled", kStart + absl::Minutes(1)));
  EXPECT_EQ(gate.topics(), 1u);
  gate.Done(stalled);
  EXPECT_EQ(gate.topics(), 0u);
}

// The caller reads the clock before the gate's lock, so a batch may arrive
// with a slightly older time than one admitted before it.
TEST(SojournGate, AnEarlierClockReadingDoesNotMakeTheQueueLookYounger) {
  SojournGate gate(kBudget);
  const SojournGate::Ticket first = Admit(gate, "orders", kStart + absl::Seconds(1));
  Admit(gate, "orders", kStart);
  gate.Done(first);
  EXPECT_FALSE(Refuses(gate, "orders", kStart + absl::Seconds(6)))
      << "the second batch counts as admitted at 1 s";
}

}  // namespace
}  // namespace ferry::publish
