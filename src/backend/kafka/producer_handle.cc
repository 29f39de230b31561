#include "backend/kafka/producer_handle.h"

namespace ferry::backend::kafka {

ProducerHandle::~ProducerHandle() {
  absl::MutexLock lock(&mu_);
  for (auto& [name, topic] : topics_) rd_kafka_topic_destroy(topic);
}

rd_kafka_topic_t* ProducerHandle::Topic(const std::string& topic) {
  {
    absl::ReaderMutexLock lock(&mu_);
    if (auto it = topics_.find(topic); it != topics_.end()) return it->second;
  }
  absl::MutexLock lock(&mu_);
  auto [it, added] = topics_.try_emplace(topic, nullptr);
  if (added) {
    it->second = rd_kafka_topic_new(producer_.get(), topic.c_str(), nullptr);
    if (it->second == nullptr) {
      topics_.erase(it);
      return nullptr;
    }
  }
  return it->second;
}

}  // namespace ferry::backend::kafka
