#include "subscribe/dead_letterer.h"

#include <algorithm>

namespace ferry::subscribe {
namespace {

constexpr absl::Duration kFirstRetryDelay = absl::Seconds(1);
constexpr absl::Duration kMaxRetryDelay = absl::Seconds(60);

}  // namespace

DeadLetterer::DeadLetterer(std::string group, std::string topic)
    : group_(std::move(group)), topic_(std::move(topic)) {}

std::string DeadLetterer::TopicFor(const std::string& source_topic) const {
  return topic_.empty() ? source_topic + ".dlq" : topic_;
}

backend::Record DeadLetterer::Build(const backend::ConsumedRecord& record,
                                    int32_t attempts) const {
  backend::Record out{.topic = TopicFor(record.topic),
                      .key = std::string(record.key),
                      .value = std::string(record.value),
                      .headers = backend::CopyHeaders(record),
                      .timestamp_ms = record.timestamp_ms};
  out.headers.push_back({"ferry.dlq.topic", record.topic});
  out.headers.push_back({"ferry.dlq.partition", std::to_string(record.partition)});
  out.headers.push_back({"ferry.dlq.offset", std::to_string(record.offset)});
  out.headers.push_back({"ferry.dlq.group", group_});
  out.headers.push_back({"ferry.dlq.attempts", std::to_string(attempts)});
  return out;
}

absl::Duration DeadLetterer::RetryDelay(int failures) {
  // 2^6 s already exceeds the cap; clamping the exponent avoids overflow.
  const int doublings = std::clamp(failures - 1, 0, 6);
  return std::min(kFirstRetryDelay * (1 << doublings), kMaxRetryDelay);
}

}  // namespace ferry::subscribe
