#include "fallback_publisher.h"

#include <fmt/format.h>

#include <cstdio>

namespace ferry::client {
namespace {

constexpr int kUnavailable = 14;
// How long Build waits for the first probe round, so that pushed settings
// apply from the first message (a tier that is down answers at once:
// connection refused).
constexpr std::chrono::milliseconds kFirstConfigWait{2'000};
constexpr std::chrono::milliseconds kProbeInterval{500};

}  // namespace

internal::NodePathSettings Publisher::WithFallback::SettingsUnder(
    const internal::ClientConfigSnapshot* config) const {
  const bool follow = config != nullptr && options_.pushed_settings;
  return internal::EffectiveSettings(options_, follow ? &config->settings : nullptr);
}

Publisher::WithFallback::WithFallback(internal::PublisherOptions options)
    : options_(std::move(options)), router_(options_.fallback_after) {
  internal::NodeProbe::Listener* listener = this;  // a private base
  probe_ =
      std::make_unique<internal::NodeProbe>(options_.endpoints, options_.credentials,
                                            options_.client_id, kProbeInterval, listener);
  {
    absl::MutexLock lock(&mu_);
    auto probed = [this]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !probes_.empty(); };
    mu_.AwaitWithTimeout(absl::Condition(&probed), absl::FromChrono(kFirstConfigWait));
    applied_config_ = config_;
  }
  internal::PublisherOptions impl_options = options_;
  const internal::NodePathSettings settings = SettingsUnder(applied_config_.get());
  impl_options.linger = settings.linger;
  impl_options.max_batch_messages = settings.max_batch_messages;
  impl_options.max_batch_bytes = settings.max_batch_bytes;
  impl_options.request_timeout = settings.request_timeout;
  impl_options.delivery_timeout = settings.delivery_timeout;
  impl_options.on_result = [this](const PublishResult& result) {
    absl::MutexLock lock(&mu_);
    outcomes_.push_back({.token = 0, .result = result});
  };
  impl_ = std::make_unique<Publisher::Impl>(std::move(impl_options));
  router_thread_ = std::thread([this] { Run(); });
}

Publisher::WithFallback::~WithFallback() {
  Flush(options_.close_timeout);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  router_thread_.join();
  probe_.reset();
}

void Publisher::WithFallback::OnProbe(bool answered) {
  absl::MutexLock lock(&mu_);
  probes_.push_back(answered);
}

void Publisher::WithFallback::OnConfig(internal::ClientConfigSnapshot config) {
  auto snapshot =
      std::make_shared<const internal::ClientConfigSnapshot>(std::move(config));
  absl::MutexLock lock(&mu_);
  config_ = std::move(snapshot);
}

void Publisher::WithFallback::Publish(std::string topic, Message message,
                                      internal::Completion done) {
  auto entry = std::make_unique<Entry>();
  const std::string& key =
      message.ordering_key.empty() ? message.key : message.ordering_key;
  if (!key.empty()) entry->order_key = fmt::format("{}{}{}", topic, '\0', key);
  if (message.id.empty()) message.id = ids_.Next();
  entry->topic = std::move(topic);
  entry->message = std::move(message);
  entry->done = std::move(done);
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      entry->seq = seqs_.Add();
      incoming_.push_back(std::move(entry));
      return;
    }
  }
  // Outside mu_: a callback may publish again.
  entry->done.Complete(
      internal::Failure(kUnavailable, "publisher closed", entry->message.id));
}

void Publisher::WithFallback::PublishMany(std::string_view topic,
                                          std::span<const MessageView> messages,
                                          internal::ManyCompletion done) {
  PublishManyResult result = ids_.NewResult(messages);
  std::vector<Message> copies;
  copies.reserve(messages.size());
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const MessageView& view = messages[i];
    copies.push_back(Message{.key = std::string(view.key),
                             .value = std::string(view.value),
                             .headers = {view.headers.begin(), view.headers.end()},
                             .ordering_key = std::string(view.ordering_key),
                             .id = std::string(result.id(i)),
                             .timestamp = view.timestamp});
  }
  auto call = std::make_shared<internal::ManyCall>(std::move(done), std::move(result));
  for (std::size_t i = 0; i < copies.size(); ++i) {
    call->Hold();
    Publish(std::string(topic), std::move(copies[i]),
            internal::Completion::WithCallback([call, i](PublishResult result) {
              {
                internal::ManyCall::Writer writer(*call);
                if (result.ok()) {
                  writer.Succeeded(i, result.cluster, result.partition, result.offset,
                                   result.direct);
                } else {
                  writer.Failed(i, result.code, result.retryable, result.error,
                                result.direct, result.endpoint);
                }
              }
              call->Release();
            }));
  }
  call->Release();
}

bool Publisher::WithFallback::Flush(std::chrono::milliseconds timeout) {
  impl_->Flush(std::chrono::milliseconds(0));  // no Linger for what it holds
  absl::MutexLock lock(&mu_);
  const uint64_t upto = seqs_.next() - 1;
  auto done = [this, upto]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return seqs_.LowestUnresolved() > upto;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&done), absl::FromChrono(timeout));
}

PublisherStats Publisher::WithFallback::Stats() const {
  std::shared_ptr<const internal::ClientConfigSnapshot> config;
  {
    absl::MutexLock lock(&mu_);
    config = config_;
  }
  const internal::NodePathSettings settings = SettingsUnder(config.get());
  return PublisherStats{.ferry_messages = ferry_messages_.load(),
                        .direct_messages = direct_messages_.load(),
                        .fallback_active = fallback_active_.load(),
                        .config_fetched = config != nullptr,
                        .linger = settings.linger,
                        .delivery_timeout = settings.delivery_timeout,
                        .max_batch_messages = settings.max_batch_messages,
                        .node_batches = impl_->batches()};
}

internal::Path Publisher::WithFallback::Wanted(
    const std::string& topic, std::chrono::steady_clock::time_point now) {
  if (router_.Current(now) == Path::kFerry) return Path::kFerry;
  std::shared_ptr<const internal::ClientConfigSnapshot> config;
  {
    absl::MutexLock lock(&mu_);
    config = config_;
  }
  const char* why = nullptr;
  if (config == nullptr || !config->topics.contains(topic)) {
    why = "no client configuration was fetched from a node for it";
  } else if (!config->topics.at(topic).fallback) {
    why =
        "its route does not allow fallback (ferry routes put --fallback) or its "
        "cluster is not Kafka";
  }
  if (why == nullptr) return Path::kDirect;
  if (warned_topics_.insert(topic).second) {
    std::fprintf(stderr,
                 "ferry-client: no node answers, but topic %s cannot fall back: %s; its "
                 "messages wait for the nodes\n",
                 topic.c_str(), why);
  }
  return Path::kFerry;
}

internal::DirectPublisher* Publisher::WithFallback::DirectFor(
    const internal::TopicTarget& target, std::string* error) {
  auto it = direct_.find(target.target.cluster);
  if (it != direct_.end()) return it->second.get();
  const PublisherStats stats = Stats();
  auto created = internal::DirectPublisher::Create(target.target, stats.linger,
                                                   stats.delivery_timeout);
  if (!created.ok()) {
    *error = std::string(created.status().message());
    return nullptr;
  }
  return direct_.emplace(target.target.cluster, *std::move(created)).first->second.get();
}

void Publisher::WithFallback::Send(uint64_t token, Path path) {
  Entry& entry = *entries_.at(token);
  entry.path = path;
  if (closing_) {
    Complete(token,
             internal::Failure(kUnavailable, "publisher closed", entry.message.id));
    return;
  }
  if (path == Path::kFerry) {
    ferry_ids_[entry.message.id].push_back(token);
    auto [completion, future] = internal::Completion::WithFuture();
    impl_->Publish(entry.topic, entry.message, std::move(completion));
    if (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return;
    // Ready now: either failed at once (Impl's on_result never sees it) or
    // already resolved, in which case on_result queued it before set_value.
    PublishResult result = future.get();
    absl::MutexLock lock(&mu_);
    for (const Outcome& queued : outcomes_) {
      if (queued.token == 0 && queued.result.id == result.id) return;
    }
    outcomes_.push_back({.token = 0, .result = std::move(result)});
    return;
  }
  std::shared_ptr<const internal::ClientConfigSnapshot> config;
  {
    absl::MutexLock lock(&mu_);
    config = config_;
  }
  std::string error = "no client configuration for the topic";
  internal::DirectPublisher* direct =
      config && config->topics.contains(entry.topic)
          ? DirectFor(config->topics.at(entry.topic), &error)
          : nullptr;
  ++direct_in_flight_;
  if (direct == nullptr) {
    absl::MutexLock lock(&mu_);
    outcomes_.push_back(
        {.token = token,
         .result = internal::Failure(kUnavailable, error, entry.message.id)});
    return;
  }
  direct->Publish(entry.topic, entry.message, entry.message.id,
                  [this, token](PublishResult result) {
                    absl::MutexLock lock(&mu_);
                    outcomes_.push_back({.token = token, .result = std::move(result)});
                  });
}

void Publisher::WithFallback::SendReleased(
    const internal::FallbackRouter::Released& released) {
  for (uint64_t token : released.tokens) Send(token, released.path);
}

void Publisher::WithFallback::Complete(uint64_t token, PublishResult result) {
  auto it = entries_.find(token);
  Entry& entry = *it->second;
  result.direct = entry.path == Path::kDirect;
  if (result.ok()) {
    if (result.direct) {
      ++direct_messages_;
      ++fallback_unreported_;
    } else {
      ++ferry_messages_;
    }
  }
  const uint64_t seq = entry.seq;
  entry.done.Complete(std::move(result));
  entries_.erase(it);
  absl::MutexLock lock(&mu_);
  seqs_.Resolve(seq);
}

void Publisher::WithFallback::OnOutcome(Outcome outcome,
                                        std::chrono::steady_clock::time_point now) {
  uint64_t token = outcome.token;
  if (token == 0) {
    auto ids = ferry_ids_.find(outcome.result.id);
    if (ids == ferry_ids_.end()) return;  // not one of ours (cannot happen)
    token = ids->second.front();
    ids->second.pop_front();
    if (ids->second.empty()) ferry_ids_.erase(ids);
  }
  Entry& entry = *entries_.at(token);
  if (entry.path == Path::kDirect) --direct_in_flight_;
  const Path wanted = closing_ ? entry.path : Wanted(entry.topic, now);
  // A node failed it during an outage: it goes again straight to the
  // cluster, ahead of its key's waiting messages (a node may have written it
  // after all: consumers drop the duplicate by its ferry.id).
  if (!outcome.result.ok() && outcome.result.retryable && entry.path == Path::kFerry &&
      wanted == Path::kDirect) {
    SendReleased(router_.Finish(entry.order_key, token, Path::kDirect));
    return;
  }
  internal::FallbackRouter::Released released =
      router_.Finish(entry.order_key, std::nullopt, wanted);
  Complete(token, std::move(outcome.result));
  SendReleased(released);
}

bool Publisher::WithFallback::Step(bool wait) {
  std::vector<std::unique_ptr<Entry>> incoming;
  std::vector<Outcome> outcomes;
  std::vector<bool> probes;
  bool stopping;
  std::shared_ptr<const internal::ClientConfigSnapshot> config;
  {
    absl::MutexLock lock(&mu_);
    auto news = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !incoming_.empty() || !outcomes_.empty() || !probes_.empty() || stopping_;
    };
    // The timeout lets the switch to fallback happen on time without news.
    if (wait) mu_.AwaitWithTimeout(absl::Condition(&news), absl::Milliseconds(50));
    incoming.swap(incoming_);
    outcomes.swap(outcomes_);
    probes.swap(probes_);
    stopping = stopping_;
    config = config_;
  }
  // A refreshed configuration: its pushed settings reach the node path.
  if (config != applied_config_) {
    applied_config_ = config;
    impl_->ApplySettings(SettingsUnder(config.get()));
  }
  const auto now = std::chrono::steady_clock::now();
  for (bool answered : probes) {
    if (answered) {
      router_.NodeAnswered();
    } else {
      router_.NodeUnreachable(now);
    }
  }
  fallback_active_ = router_.Current(now) == Path::kDirect;
  for (std::unique_ptr<Entry>& entry : incoming) {
    if (known_topics_.insert(entry->topic).second) probe_->WantTopic(entry->topic);
    const uint64_t token = next_token_++;
    const std::string& key = entry->order_key;
    const Path wanted = Wanted(entry->topic, now);
    entries_.emplace(token, std::move(entry));
    if (std::optional<Path> path = router_.Admit(token, key, wanted)) Send(token, *path);
  }
  for (Outcome& outcome : outcomes) OnOutcome(std::move(outcome), now);
  // Back on the nodes and the direct producers drained: let them go.
  if (!fallback_active_ && direct_in_flight_ == 0) direct_.clear();
  return stopping;
}

void Publisher::WithFallback::Run() {
  while (!Step(/*wait=*/true)) {
  }
  // Closing: what is left fails "publisher closed" (Impl's and the direct
  // producers' in flight through their own shutdown, reported as outcomes).
  closing_ = true;
  impl_.reset();
  direct_.clear();
  Step(/*wait=*/false);
  std::vector<uint64_t> left;
  for (const auto& [token, entry] : entries_) left.push_back(token);
  for (uint64_t token : left) {
    Complete(token, internal::Failure(kUnavailable, "publisher closed",
                                      entries_.at(token)->message.id));
  }
}

}  // namespace ferry::client
