#include "backend/kafka/producer_handle.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "backend/kafka/topic_admin.h"

namespace ferry::backend::kafka {

ProducerHandle::~ProducerHandle() {
  absl::MutexLock lock(&mu_);
  for (auto& [name, topic] : topics_) rd_kafka_topic_destroy(topic);
}

rd_kafka_topic_t* ProducerHandle::Topic(const std::string& topic) {
  absl::ReaderMutexLock lock(&mu_);
  auto it = topics_.find(topic);
  return it != topics_.end() ? it->second : nullptr;
}

rd_kafka_topic_t* ProducerHandle::Open(const std::string& topic) {
  absl::MutexLock lock(&mu_);
  auto [it, added] = topics_.try_emplace(topic, nullptr);
  if (!added) return it->second;
  it->second = rd_kafka_topic_new(producer_.get(), topic.c_str(), nullptr);
  if (it->second == nullptr) {
    topics_.erase(it);
    return nullptr;
  }
  unlearned_.push_back(it->second);
  return it->second;
}

void ProducerHandle::LearnOpenedTopics(absl::Duration timeout) {
  std::vector<rd_kafka_topic_t*> opened;
  {
    absl::MutexLock lock(&mu_);
    opened = std::exchange(unlearned_, {});
  }
  if (opened.empty()) return;
  // With no topic named, librdkafka names every topic it knows: never none
  // here (an empty list would ask for every topic of the cluster).
  AskMetadata(opened.size() == 1 ? opened.front() : nullptr, timeout,
              fmt::format("{} new topics", opened.size()));
}

bool ProducerHandle::RelearnTopic(const std::string& topic, absl::Time deadline) {
  if (Topic(topic) == nullptr) return false;
  const absl::Status shown =
      AwaitMetadata(producer_.get(), topic, deadline,
                    fmt::format("producer metadata for created topic {}", topic),
                    "created", [](const rd_kafka_metadata_topic_t* found) -> std::string {
                      if (found == nullptr) return "it does not exist";
                      if (found->err != RD_KAFKA_RESP_ERR_NO_ERROR)
                        return rd_kafka_err2str(found->err);
                      return found->partition_cnt > 0 ? "" : "no partitions";
                    });
  if (shown.ok()) return true;
  spdlog::warn(
      "{}: its records may fail NOT_FOUND until librdkafka's next topic scan (within "
      "1 s)",
      std::string(shown.message()));
  return false;
}

MetadataPtr ProducerHandle::AskMetadata(rd_kafka_topic_t* only, absl::Duration timeout,
                                        std::string_view what) {
  const rd_kafka_metadata_t* metadata = nullptr;
  // At least 1 ms: a negative timeout (a deadline passed) would wait forever.
  const int timeout_ms =
      std::max(1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  const rd_kafka_resp_err_t err =
      rd_kafka_metadata(producer_.get(), /*all_topics=*/0, only, &metadata, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::debug("metadata request for {} failed: {}", what, rd_kafka_err2str(err));
    return nullptr;
  }
  return MetadataPtr(metadata);
}

}  // namespace ferry::backend::kafka
