#include "publish/topic_auto_creator.h"

#include <spdlog/spdlog.h>

namespace ferry::publish {

TopicAutoCreator::~TopicAutoCreator() {
  std::map<backend::Cluster*, std::thread> workers;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    workers.swap(workers_);
  }
  for (auto& [cluster, worker] : workers) worker.join();
  std::map<Key, Waiters> waiting;
  {
    absl::MutexLock lock(&mu_);
    waiting.swap(waiting_);
  }
  for (auto& [key, waiters] : waiting) {
    for (auto& then : waiters) then(absl::UnavailableError("node is shutting down"));
  }
}

void TopicAutoCreator::EnsureExists(backend::Cluster* cluster, const std::string& topic,
                                    std::function<void(absl::Status)> then) {
  absl::Status known;  // answered at once: exists, or shutting down
  {
    absl::MutexLock lock(&mu_);
    Key key{cluster, topic};
    if (stopping_) {
      known = absl::UnavailableError("node is shutting down");
    } else if (!existing_.contains(key)) {
      auto [it, first] = waiting_.try_emplace(std::move(key));
      it->second.push_back(std::move(then));
      if (!first) return;  // a lookup of this topic is already queued
      queues_[cluster].push_back(topic);
      if (!workers_.contains(cluster)) {
        workers_.emplace(cluster, std::thread([this, cluster] { Run(cluster); }));
      }
      return;
    }
  }
  then(known);
}

absl::Status TopicAutoCreator::Ensure(backend::Cluster* cluster,
                                      const std::string& topic) {
  absl::Status status = cluster->DescribeTopic(topic).status();
  if (status.code() != absl::StatusCode::kNotFound) return status;
  status = cluster->CreateTopic(topic, /*partitions=*/-1, /*replication_factor=*/-1, {});
  if (status.ok()) {
    spdlog::info("cluster={} topic={} created by route auto_create_topics",
                 cluster->name(), topic);
  }
  return status.code() == absl::StatusCode::kAlreadyExists ? absl::OkStatus() : status;
}

void TopicAutoCreator::Run(backend::Cluster* cluster) {
  std::deque<std::string>& queue = [&]() -> std::deque<std::string>& {
    absl::MutexLock lock(&mu_);
    return queues_[cluster];
  }();
  while (true) {
    std::string topic;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue.empty();
      };
      mu_.Await(absl::Condition(&has_work));
      if (stopping_) return;  // the destructor answers the waiters
      topic = std::move(queue.front());
      queue.pop_front();
    }
    const absl::Status status = Ensure(cluster, topic);
    // The key stays in waiting_ until its list is drained: callers arriving
    // meanwhile queue behind the callbacks running here instead of running
    // at once on their own thread, and get the same status. Only once the
    // list is empty does the topic become known (on success), under the same
    // lock, so no later caller can run before an earlier callback returned.
    const Key key{cluster, topic};
    while (true) {
      Waiters waiters;
      {
        absl::MutexLock lock(&mu_);
        auto it = waiting_.find(key);
        if (it->second.empty()) {
          if (status.ok()) existing_.insert(key);
          waiting_.erase(it);
          break;
        }
        waiters.swap(it->second);
      }
      for (auto& then : waiters) then(status);
    }
  }
}

}  // namespace ferry::publish
