#include "publish/topic_auto_creator.h"

#include <spdlog/spdlog.h>

namespace ferry::publish {

TopicAutoCreator::TopicAutoCreator() : worker_([this] { Run(); }) {}

TopicAutoCreator::~TopicAutoCreator() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  worker_.join();
}

void TopicAutoCreator::EnsureExists(backend::Cluster* cluster, const std::string& topic,
                                    std::function<void(absl::Status)> then) {
  {
    absl::MutexLock lock(&mu_);
    if (!existing_.contains({cluster, topic})) {
      queue_.push_back({cluster, topic, std::move(then)});
      return;
    }
  }
  then(absl::OkStatus());
}

bool TopicAutoCreator::HasWork() const { return stopping_ || !queue_.empty(); }

void TopicAutoCreator::Run() {
  while (true) {
    Request request;
    bool stopping = false;
    bool known = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &TopicAutoCreator::HasWork));
      if (queue_.empty()) return;  // stopping, nothing left
      request = std::move(queue_.front());
      queue_.pop_front();
      stopping = stopping_;
      known = existing_.contains({request.cluster, request.topic});
    }
    if (stopping) {
      request.then(absl::UnavailableError("node is shutting down"));
      continue;
    }
    if (known) {
      request.then(absl::OkStatus());
      continue;
    }
    absl::Status status = request.cluster->DescribeTopic(request.topic).status();
    if (status.code() == absl::StatusCode::kNotFound) {
      status = request.cluster->CreateTopic(request.topic, /*partitions=*/-1,
                                            /*replication_factor=*/-1, {});
      if (status.ok()) {
        spdlog::info("cluster={} topic={} created by route auto_create_topics",
                     request.cluster->name(), request.topic);
      }
      if (status.code() == absl::StatusCode::kAlreadyExists) status = absl::OkStatus();
    }
    if (status.ok()) {
      absl::MutexLock lock(&mu_);
      existing_.insert({request.cluster, request.topic});
    }
    request.then(status);
  }
}

}  // namespace ferry::publish
