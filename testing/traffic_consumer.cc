#include "testing/traffic_consumer.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ferry::testing {

TrafficConsumer::TrafficConsumer(const std::string& node, const std::string& group,
                                 const std::string& topic, v1::Ordering ordering,
                                 bool from_earliest)
    : group_(group), stream_(node, MakeOpen(group, {topic}, ordering, from_earliest)) {
  EXPECT_TRUE(stream_.WaitOpened().has_value());
}

void TrafficConsumer::Drain(absl::Duration period) {
  const absl::Time end = absl::Now() + period;
  while (absl::Now() < end) {
    std::vector<v1::ReceivedMessage> batch;
    if (auto first = stream_.Next(std::min(absl::Milliseconds(200), end - absl::Now()))) {
      batch = stream_.Take(499, absl::ZeroDuration());
      batch.insert(batch.begin(), *std::move(first));
    }
    std::vector<std::string> receipts;
    for (const v1::ReceivedMessage& m : batch) {
      receipts.push_back(m.receipt());
      Record(m);
    }
    if (!receipts.empty()) {
      EXPECT_TRUE(stream_.Ack(receipts));
    }
  }
}

void TrafficConsumer::DrainUntil(const std::set<std::string>& wanted,
                                 absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (std::all_of(wanted.begin(), wanted.end(),
                    [this](const std::string& id) { return Has(id); })) {
      return;
    }
    Drain(absl::Milliseconds(500));
  }
}

void TrafficConsumer::Record(const v1::ReceivedMessage& m) {
  std::string id;
  for (const auto& h : m.headers()) {
    if (h.key() == "ferry.id") id = h.value();
  }
  if (!ids_.insert(id).second) {
    ++duplicates_;
    return;
  }
  ++first_by_cluster_[m.cluster()];
  std::vector<std::string> parts = absl::StrSplit(m.value(), ':');
  int seq = -1;
  EXPECT_TRUE(parts.size() == 2 && absl::SimpleAtoi(parts[1], &seq)) << m.value();
  sequences_[m.key()].push_back(seq);
  by_cluster_and_key_[{m.cluster(), m.key()}].push_back(seq);
}

int TrafficConsumer::OrderViolations() const {
  int violations = 0;
  for (const auto& [key, seqs] : sequences_) {
    for (size_t i = 1; i < seqs.size(); ++i) violations += seqs[i - 1] > seqs[i];
  }
  return violations;
}

std::string TrafficConsumer::Summary() const {
  std::string out =
      absl::StrCat(group_, ": ", ids_.size(), " distinct, ", duplicates_, " duplicates, ",
                   OrderViolations(), " order violations; first deliveries by cluster:");
  for (const auto& [cluster, count] : first_by_cluster_) {
    absl::StrAppend(&out, " ", cluster, "=", count);
  }
  // A raw stream is not reopened as an SDK's would be: what it missed
  // afterwards is the test's, not the node's, unless the node ended it
  // wrongly.
  if (const std::optional<grpc::Status> status = stream_.end_status()) {
    absl::StrAppend(&out, "; the node ended the stream: ", status->error_code(), " ",
                    status->error_message());
  }
  return out;
}

}  // namespace ferry::testing
