#include "fake_node.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <utility>

namespace ferry::client::testing {

using SteadyClock = std::chrono::steady_clock;

class FakeNode::Service final : public ferry::v1::Publisher::CallbackService {
 public:
  explicit Service(FakeNode* node) : node_(node) {}

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const ferry::v1::PublishRequest* request,
                                    ferry::v1::PublishResponse* response) override {
    return node_->Handle(context, request, response);
  }

 private:
  FakeNode* node_;
};

FakeNode::FakeNode(std::string cluster)
    : cluster_(std::move(cluster)), service_(std::make_unique<Service>(this)) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    std::fprintf(stderr, "FakeNode: cannot listen on 127.0.0.1\n");
    std::abort();
  }
  address_ = fmt::format("127.0.0.1:{}", port);
  answerer_ = std::thread([this] { Answerer(); });
}

FakeNode::~FakeNode() {
  Shutdown();
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  answerer_.join();
}

void FakeNode::FailMessageOnce(const std::string& value, int code, bool retryable,
                               const std::string& reason) {
  absl::MutexLock lock(&mu_);
  fail_messages_[value] = Failure{code, retryable, reason};
}

void FakeNode::FailCalls(int calls, grpc::StatusCode code) {
  absl::MutexLock lock(&mu_);
  fail_calls_ = calls;
  fail_calls_code_ = code;
}

void FakeNode::AnswerCompact(bool compact) {
  absl::MutexLock lock(&mu_);
  compact_ = compact;
}

void FakeNode::DelayAnswers(std::chrono::milliseconds delay) {
  absl::MutexLock lock(&mu_);
  delay_ = delay;
}

void FakeNode::HoldAnswers(bool hold) {
  {
    absl::MutexLock lock(&mu_);
    hold_ = hold;
  }
  if (!hold) ReleaseAll();
}

void FakeNode::ReleaseAll() {
  std::vector<Held> answers;
  {
    absl::MutexLock lock(&mu_);
    answers.swap(held_);
  }
  for (Held& held : answers) Answer(std::move(held));
}

void FakeNode::ReleaseLatest() {
  std::optional<Held> latest;
  {
    absl::MutexLock lock(&mu_);
    if (held_.empty()) return;
    latest = std::move(held_.back());
    held_.pop_back();
  }
  Answer(std::move(*latest));
}

void FakeNode::Shutdown() {
  std::vector<Held> answers;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    answers.swap(held_);
  }
  for (Held& held : answers) {
    held.status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "node shutting down");
    Answer(std::move(held));
  }
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

std::vector<ferry::v1::PublishRequest> FakeNode::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

std::vector<Accepted> FakeNode::accepted() const {
  absl::MutexLock lock(&mu_);
  return accepted_;
}

std::size_t FakeNode::held() const {
  absl::MutexLock lock(&mu_);
  return held_.size();
}

int FakeNode::key_overlaps() const {
  absl::MutexLock lock(&mu_);
  return key_overlaps_;
}

int FakeNode::max_concurrent_calls() const {
  absl::MutexLock lock(&mu_);
  return max_concurrent_calls_;
}

bool FakeNode::WaitForHeld(std::size_t count, std::chrono::milliseconds timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, count]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return held_.size() >= count; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::FromChrono(timeout));
}

grpc::ServerUnaryReactor* FakeNode::Handle(grpc::CallbackServerContext* context,
                                           const ferry::v1::PublishRequest* request,
                                           ferry::v1::PublishResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Held held{reactor, {}, SteadyClock::time_point::max(), grpc::Status::OK};
  {
    absl::MutexLock lock(&mu_);
    calls_.push_back(*request);
    ++open_calls_;
    max_concurrent_calls_ = std::max(max_concurrent_calls_, open_calls_);
    if (shut_down_) {
      held.status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "node shutting down");
    } else if (fail_calls_ > 0) {
      --fail_calls_;
      held.status = grpc::Status(fail_calls_code_, "scripted call failure");
    } else {
      std::set<std::string> call_keys;
      std::set<std::string> failed_keys;
      for (const ferry::v1::OutgoingMessage& message : request->messages()) {
        const std::string& key =
            message.ordering_key().empty() ? message.key() : message.ordering_key();
        if (!key.empty()) call_keys.insert(key);
        ferry::v1::PublishResult* result = response->add_results();
        result->set_id(message.id());
        if (auto failure = fail_messages_.find(message.value());
            failure != fail_messages_.end()) {
          result->mutable_status()->set_code(failure->second.code);
          result->mutable_status()->set_message(failure->second.reason);
          result->mutable_status()->set_retryable(failure->second.retryable);
          if (failure->second.retryable && !key.empty()) failed_keys.insert(key);
          fail_messages_.erase(failure);
          continue;
        }
        if (failed_keys.count(key) != 0) {
          result->mutable_status()->set_code(
              static_cast<int>(grpc::StatusCode::UNAVAILABLE));
          result->mutable_status()->set_message("an earlier message of its key failed");
          result->mutable_status()->set_retryable(true);
          continue;
        }
        const int32_t partition =
            key.empty() ? 0 : static_cast<int32_t>(std::hash<std::string>{}(key) % 3);
        const int64_t offset = next_offset_[partition]++;
        result->set_cluster(cluster_);
        result->set_partition(partition);
        result->set_offset(offset);
        accepted_.push_back(Accepted{request->topic(), message.key(),
                                     message.ordering_key(), message.value(),
                                     message.id(), partition, offset});
      }
      const bool all_written =
          std::all_of(response->results().begin(), response->results().end(),
                      [](const ferry::v1::PublishResult& result) {
                        return result.status().code() == 0;
                      });
      if (compact_ && request->compact_results() && all_written) {
        ferry::v1::CompactPublishResults* compact = response->mutable_compact();
        compact->set_cluster(cluster_);
        for (const ferry::v1::PublishResult& result : response->results()) {
          compact->add_partitions(result.partition());
          compact->add_offsets(result.offset());
          compact->add_timestamps_ms(0);
        }
        response->clear_results();
      }
      for (const std::string& key : call_keys) {
        if (open_keys_.count(key) != 0) ++key_overlaps_;
        open_keys_.insert(key);
      }
      held.keys.assign(call_keys.begin(), call_keys.end());
      if (hold_ || delay_.count() > 0) {
        if (!hold_) held.due = SteadyClock::now() + delay_;
        held_.push_back(std::move(held));
        ++version_;
        return reactor;
      }
    }
  }
  Answer(std::move(held));
  return reactor;
}

void FakeNode::Answerer() {
  uint64_t seen = 0;
  for (;;) {
    std::vector<Held> due;
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this, &seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || version_ != seen;
      };
      SteadyClock::time_point next = SteadyClock::time_point::max();
      for (const Held& held : held_) next = std::min(next, held.due);
      if (next == SteadyClock::time_point::max()) {
        mu_.Await(absl::Condition(&wake));
      } else if (SteadyClock::time_point now = SteadyClock::now(); next > now) {
        mu_.AwaitWithTimeout(
            absl::Condition(&wake),
            absl::FromChrono(
                std::chrono::duration_cast<std::chrono::nanoseconds>(next - now)));
      }
      if (stop_) return;
      seen = version_;
      const SteadyClock::time_point now = SteadyClock::now();
      auto split = std::stable_partition(
          held_.begin(), held_.end(), [now](const Held& held) { return held.due > now; });
      std::move(split, held_.end(), std::back_inserter(due));
      held_.erase(split, held_.end());
    }
    for (Held& held : due) Answer(std::move(held));
  }
}

void FakeNode::Answer(Held held) {
  {
    absl::MutexLock lock(&mu_);
    CloseKeys(held.keys);
    --open_calls_;
  }
  held.reactor->Finish(held.status);
}

void FakeNode::CloseKeys(const std::vector<std::string>& keys) {
  for (const std::string& key : keys) {
    auto found = open_keys_.find(key);
    if (found != open_keys_.end()) open_keys_.erase(found);
  }
}

}  // namespace ferry::client::testing
