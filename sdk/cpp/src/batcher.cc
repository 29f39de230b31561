#include "batcher.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace ferry::client::internal {
namespace {

// The key maps look up by view (no string per message); this abseil's
// string_view is its own type.
absl::string_view KeyOf(std::string_view key) { return {key.data(), key.size()}; }

// A part's keys are looked up one after the other, and their map entries
// are cache-cold (many parts' worth of other data passed through since they
// were last used): the lookups fetch the entries of this many keys ahead.
constexpr std::size_t kLookAhead = 8;

}  // namespace

void Batcher::Add(std::unique_ptr<Pending> message) {
  ++size_;
  Topic& topic = TopicNamed(message->topic);
  if (message->order_key.empty()) {
    topic.ready.Push(std::move(message));
    return;
  }
  KeyQueue& queue = topic.keys[KeyOf(message->order_key)];
  if (queue.idle()) {
    // Nothing of its key to wait for: straight to the candidates, without
    // allocating the key's queue.
    queue.in_ready = true;
    topic.ready.Push(std::move(message));
    return;
  }
  queue.waiting.push_back(std::move(message));
  Promote(topic, queue);
}

bool Batcher::WaitsBehindKey(const Pending& message) const {
  if (message.order_key.empty()) return false;
  auto topic = topics_.find(message.topic);
  if (topic == topics_.end()) return false;
  auto queue = topic->second.keys.find(KeyOf(message.order_key));
  return queue != topic->second.keys.end() && !queue->second.idle();
}

std::optional<Batch> Batcher::NextBatch(Clock::time_point now, uint64_t urgent_upto,
                                        std::vector<std::unique_ptr<Pending>>* expired) {
  for (auto it = topics_.begin(); it != topics_.end();) {
    Topic& topic = it->second;
    if (Due(topic, now, urgent_upto)) {
      // Build always consumes at least one message, so this terminates.
      Batch batch = Build(it->first, topic, now, expired);
      if (!batch.messages.empty()) {
        ++topic.batches_in_flight;
        return batch;
      }
      continue;
    }
    it = topic.empty() ? EraseTopic(it) : std::next(it);
  }
  return std::nullopt;
}

void Batcher::Complete(const std::string& topic_name,
                       const std::vector<std::string>& keys,
                       std::vector<std::unique_ptr<Pending>> retries) {
  Topic& topic = topics_[topic_name];
  // TakeAll() forgets the count: the topic starts afresh then.
  if (topic.batches_in_flight > 0) --topic.batches_in_flight;
  // Backwards, so that push_front leaves a key's retries in request order in
  // front of its later messages.
  for (auto it = retries.rbegin(); it != retries.rend(); ++it) {
    std::unique_ptr<Pending>& message = *it;
    ++size_;
    if (message->order_key.empty()) {
      Clock::time_point at = message->not_before;
      backoff_.emplace(at, std::move(message));
      continue;
    }
    KeyQueue& queue = topic.keys[KeyOf(message->order_key)];
    queue.waiting.push_front(std::move(message));
    queue.requeued = true;
  }
  for (const std::string& key : keys) {
    auto found = topic.keys.find(key);
    if (found == topic.keys.end()) continue;  // TakeAll() ran meanwhile.
    KeyQueue& queue = found->second;
    queue.in_flight = false;
    if (queue.requeued) {
      // The key's first retry waits out its backoff; the rest of the key
      // waits behind it.
      queue.requeued = false;
      std::unique_ptr<Pending> first = queue.waiting.pop_front();
      queue.backing_off = true;
      Clock::time_point at = first->not_before;
      backoff_.emplace(at, std::move(first));
    } else {
      Promote(topic, queue);
    }
    if (queue.idle()) topic.keys.erase(found);
  }
  if (topic.empty()) EraseTopic(topics_.find(topic_name));
}

void Batcher::ReleaseBackoff(Clock::time_point now) {
  while (!part_backoff_.empty() && part_backoff_.begin()->first <= now) {
    ready_parts_.push_back(std::move(part_backoff_.begin()->second));
    part_backoff_.erase(part_backoff_.begin());
  }
  while (!backoff_.empty() && backoff_.begin()->first <= now) {
    std::unique_ptr<Pending> message = std::move(backoff_.begin()->second);
    backoff_.erase(backoff_.begin());
    Topic& topic = TopicNamed(message->topic);
    if (message->order_key.empty()) {
      topic.ready.Push(std::move(message));
      continue;
    }
    KeyQueue& queue = topic.keys[KeyOf(message->order_key)];
    queue.backing_off = false;
    queue.waiting.push_front(std::move(message));
    Promote(topic, queue);
  }
}

Clock::time_point Batcher::NextWakeup(uint64_t urgent_upto) const {
  if (!ready_parts_.empty()) return Clock::time_point::min();
  Clock::time_point wakeup = Clock::time_point::max();
  if (!backoff_.empty()) wakeup = backoff_.begin()->first;
  if (!part_backoff_.empty()) wakeup = std::min(wakeup, part_backoff_.begin()->first);
  for (const auto& [name, topic] : topics_) {
    if (topic.ready.empty()) continue;
    if (DueNow(topic, urgent_upto)) return Clock::time_point::min();
    wakeup = std::min(wakeup, topic.ready.front().published_at + limits_.linger);
  }
  return wakeup;
}

void Batcher::Quiet(uint64_t urgent_upto, QuietTopics* out) const {
  out->clear();
  for (const auto& [name, topic] : topics_) {
    if (DueNow(topic, urgent_upto)) continue;
    out->emplace(KeyOf(name),
                 TopicRoom{.messages = limits_.max_messages - topic.ready.size(),
                           .bytes = limits_.max_bytes - topic.ready.bytes()});
  }
}

std::vector<std::unique_ptr<Pending>> Batcher::TakeAll() {
  std::vector<std::unique_ptr<Pending>> all;
  all.reserve(size_);
  for (auto& [name, topic] : topics_) {
    topic.ready.TakeAll(&all);
    for (auto& [key, queue] : topic.keys) {
      while (!queue.waiting.empty()) all.push_back(queue.waiting.pop_front());
    }
  }
  for (auto& [at, message] : backoff_) all.push_back(std::move(message));
  topics_.clear();
  cached_topic_ = nullptr;
  backoff_.clear();
  size_ = 0;
  return all;
}

bool Batcher::Due(const Topic& topic, Clock::time_point now, uint64_t urgent_upto) const {
  if (topic.ready.empty()) return false;
  // `ready`'s front has the lowest seq, hence also the oldest published_at.
  return DueNow(topic, urgent_upto) ||
         topic.ready.front().published_at + limits_.linger <= now;
}

bool Batcher::DueNow(const Topic& topic, uint64_t urgent_upto) const {
  return topic.batches_in_flight == 0 || topic.ready.size() >= limits_.max_messages ||
         topic.ready.bytes() >= limits_.max_bytes || topic.ready.retries() > 0 ||
         topic.ready.front_seq() <= urgent_upto;
}

Batch Batcher::Build(const std::string& name, Topic& topic, Clock::time_point now,
                     std::vector<std::unique_ptr<Pending>>* expired) {
  Batch batch;
  batch.topic = name;
  std::size_t bytes = 0;
  while (batch.messages.size() < limits_.max_messages) {
    // The next candidate in publish order: the topic's, or a later message
    // of a key this batch holds.
    Candidates& from =
        same_batch_.front_seq() < topic.ready.front_seq() ? same_batch_ : topic.ready;
    if (from.empty()) break;
    const Pending& next = from.front();
    const bool too_late = next.deadline <= now;
    if (!too_late && !batch.messages.empty() &&
        bytes + next.wire_bytes > limits_.max_bytes) {
      break;
    }
    std::unique_ptr<Pending> message = from.Pop();
    --size_;
    if (!message->order_key.empty()) {
      // One lookup: the key has a queue while its message is a candidate.
      auto entry = topic.keys.find(KeyOf(message->order_key));
      KeyQueue& queue = entry->second;
      queue.in_ready = false;
      if (!too_late && !queue.in_flight) {
        queue.in_flight = true;
        batch.keys.emplace_back(message->order_key);
      }
      // The key's next message joins the candidates (at a higher seq, so
      // this loop still meets it in publish order).
      Promote(topic, queue, /*same_batch=*/true);
      if (queue.idle()) topic.keys.erase(entry);
    }
    if (too_late) {
      expired->push_back(std::move(message));
    } else {
      bytes += message->wire_bytes;
      batch.messages.push_back(std::move(message));
    }
  }
  // The batch is closed: the next messages of its keys wait for it.
  while (!same_batch_.empty()) {
    std::unique_ptr<Pending> message = same_batch_.Pop();
    KeyQueue& queue = topic.keys.find(KeyOf(message->order_key))->second;
    queue.waiting.push_front(std::move(message));
    queue.in_ready = false;
  }
  return batch;
}

void Batcher::Promote(Topic& topic, KeyQueue& queue, bool same_batch) {
  if (queue.in_ready || queue.backing_off || queue.holder != nullptr ||
      (queue.in_flight && !same_batch)) {
    return;
  }
  if (PartFirst(queue)) {
    // Not while the batch being built holds the key: it waits for the batch.
    if (!queue.in_flight) Grant(queue);
    return;
  }
  if (queue.waiting.empty()) return;
  queue.in_ready = true;
  // Only Build's calls get here with the key in flight: the batch it builds
  // holds the key.
  (queue.in_flight ? same_batch_ : topic.ready).Push(queue.waiting.pop_front());
}

bool Batcher::PartFirst(const KeyQueue& queue) {
  return !queue.parts.empty() &&
         (queue.waiting.empty() || queue.parts.front()->seq < queue.waiting.front().seq);
}

void Batcher::Grant(KeyQueue& queue) {
  ManyPart* part = queue.parts.pop_front();
  queue.holder = part;
  if (--part->keys_to_grant > 0) return;
  auto found = waiting_parts_.find(part);
  ready_parts_.push_back(std::move(found->second));
  waiting_parts_.erase(found);
}

void Batcher::AddPart(std::unique_ptr<ManyPart> part) {
  ManyPart* raw = part.get();
  Topic& topic = TopicNamed(raw->topic);
  waiting_parts_.emplace(raw, std::move(part));
  // One more than it waits for while its keys are looked at, so that it
  // becomes ready (below or in Grant) only once all are.
  raw->keys_to_grant = 1;
  raw->held_keys.clear();
  raw->held_key_bytes.clear();
  const std::vector<std::string_view>& keys = raw->order_keys;
  for (std::size_t i = 0; i < keys.size() && i < kLookAhead; ++i) {
    topic.keys.prefetch(KeyOf(keys[i]));
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i + kLookAhead < keys.size()) topic.keys.prefetch(KeyOf(keys[i + kLookAhead]));
    const std::string_view key = keys[i];
    const std::size_t hash = topic.keys.hash_function()(KeyOf(key));
    auto entry = topic.keys.find(KeyOf(key), hash);
    if (entry == topic.keys.end()) entry = topic.keys.try_emplace(KeyOf(key)).first;
    KeyQueue& queue = entry->second;
    if (queue.holder == raw || (!queue.parts.empty() && queue.parts.back() == raw)) {
      continue;  // an earlier message of the part has the key
    }
    raw->held_keys.push_back({.hash = hash,
                              .begin = static_cast<uint32_t>(raw->held_key_bytes.size()),
                              .size = static_cast<uint32_t>(key.size())});
    raw->held_key_bytes.append(key);
    if (queue.idle()) {
      queue.holder = raw;  // nothing to wait for, and no ring to allocate
      continue;
    }
    ++raw->keys_to_grant;
    queue.parts.push_back(raw);
    Promote(topic, queue);
  }
  // Views into the request, which the part no longer needs here.
  std::vector<std::string_view>().swap(raw->order_keys);
  if (--raw->keys_to_grant == 0) {
    auto found = waiting_parts_.find(raw);
    ready_parts_.push_back(std::move(found->second));
    waiting_parts_.erase(found);
  }
}

std::unique_ptr<ManyPart> Batcher::NextPart() {
  if (ready_parts_.empty()) return nullptr;
  std::unique_ptr<ManyPart> part = std::move(ready_parts_.front());
  ready_parts_.pop_front();
  return part;
}

void Batcher::RetryPart(std::unique_ptr<ManyPart> part) {
  const Clock::time_point at = part->not_before;
  part_backoff_.emplace(at, std::move(part));
}

void Batcher::CompletePart(const ManyPart& part) {
  auto topic_entry = topics_.find(part.topic);
  if (topic_entry == topics_.end()) return;  // TakeAll() ran meanwhile.
  Topic& topic = topic_entry->second;
  const std::vector<ManyPart::HeldKey>& held = part.held_keys;
  for (std::size_t i = 0; i < held.size() && i < kLookAhead; ++i) {
    topic.keys.prefetch(KeyOf(part.KeyOf(held[i])));
  }
  for (std::size_t i = 0; i < held.size(); ++i) {
    if (i + kLookAhead < held.size()) {
      topic.keys.prefetch(KeyOf(part.KeyOf(held[i + kLookAhead])));
    }
    auto found = topic.keys.find(KeyOf(part.KeyOf(held[i])), held[i].hash);
    if (found == topic.keys.end() || found->second.holder != &part) continue;
    KeyQueue& queue = found->second;
    queue.holder = nullptr;
    Promote(topic, queue);
    if (queue.idle()) topic.keys.erase(found);
  }
  if (topic.empty()) EraseTopic(topic_entry);
}

std::vector<std::unique_ptr<ManyPart>> Batcher::TakeAllParts() {
  std::vector<std::unique_ptr<ManyPart>> all;
  for (auto& [raw, part] : waiting_parts_) all.push_back(std::move(part));
  for (std::unique_ptr<ManyPart>& part : ready_parts_) all.push_back(std::move(part));
  for (auto& [at, part] : part_backoff_) all.push_back(std::move(part));
  waiting_parts_.clear();
  ready_parts_.clear();
  part_backoff_.clear();
  return all;
}

Batcher::Topic& Batcher::TopicNamed(std::string_view name) {
  if (cached_topic_ != nullptr && cached_topic_->first == name)
    return cached_topic_->second;
  auto found = topics_.find(name);
  if (found == topics_.end()) found = topics_.try_emplace(std::string(name)).first;
  cached_topic_ = &*found;
  return found->second;
}

Batcher::Topics::iterator Batcher::EraseTopic(Topics::iterator topic) {
  if (cached_topic_ == &*topic) cached_topic_ = nullptr;
  return topics_.erase(topic);
}

}  // namespace ferry::client::internal
