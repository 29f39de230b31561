#include "admin/latest_messages.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>

#include "backend/partition_scan.h"

namespace ferry::admin {
namespace {

// Keeps the records of one partition up to its end as the scan began.
class Collect final : public backend::RecordSink {
 public:
  Collect(int64_t end, std::vector<backend::ConsumedRecord>* out)
      : end_(end), out_(out) {}
  bool Add(const backend::ConsumedRecord& record) override {
    if (record.offset < end_) out_->push_back(record);
    return false;  // the scan ends the partition at its end
  }

 private:
  const int64_t end_;
  std::vector<backend::ConsumedRecord>* const out_;  // shared by the partitions
};

}  // namespace

absl::StatusOr<std::vector<backend::ConsumedRecord>> LatestMessages(
    backend::Cluster& cluster, const std::string& topic,
    const LatestMessagesOptions& options) {
  if (options.limit < 1 || options.limit > kMaxLatestMessages) {
    return absl::InvalidArgumentError(
        fmt::format("limit: {} is not in 1..{}", options.limit, kMaxLatestMessages));
  }
  const absl::Time deadline = absl::Now() + options.timeout;
  absl::StatusOr<backend::TopicInfo> info = cluster.DescribeTopic(topic);
  if (!info.ok()) return info.status();
  // Sinks run one at a time on the reader's thread, so one vector serves all.
  std::vector<backend::ConsumedRecord> records;
  std::vector<std::unique_ptr<Collect>> sinks;
  std::map<backend::TopicPartition, backend::PartitionToScan> scans;
  for (const backend::PartitionInfo& p : info->partitions) {
    const int64_t from = std::max(p.low_watermark, p.high_watermark - options.limit);
    if (from >= p.high_watermark) continue;
    sinks.push_back(std::make_unique<Collect>(p.high_watermark, &records));
    scans[{topic, p.id}] = {
        .end = p.high_watermark, .sink = sinks.back().get(), .from = from};
  }
  absl::Status scanned = backend::ScanPartitions(
      cluster, fmt::format("ferry-tail-{}", topic), scans, deadline, options.quiet);
  // At the deadline, what arrived by then is the answer.
  if (!scanned.ok() && scanned.code() != absl::StatusCode::kDeadlineExceeded) {
    return scanned;
  }
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
    return std::tie(b.timestamp_ms, b.partition, b.offset) <
           std::tie(a.timestamp_ms, a.partition, a.offset);
  });
  if (records.size() > static_cast<size_t>(options.limit)) records.resize(options.limit);
  return records;
}

}  // namespace ferry::admin
