// Per-topic batching with per-key ordering.
#ifndef FERRY_CLIENT_SRC_BATCHER_H_
#define FERRY_CLIENT_SRC_BATCHER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "candidates.h"
#include "many_part.h"
#include "pending.h"
#include "pending_queue.h"

namespace ferry::client::internal {

struct BatchLimits {
  std::size_t max_messages = 500;
  std::size_t max_bytes = std::size_t{1} << 20;  // Sum of Pending::wire_bytes.
  Clock::duration linger{};
};

// How many more messages, and bytes of them, a topic with a batch in flight
// takes before its queued messages fill a batch.
struct TopicRoom {
  std::size_t messages = 0;
  std::size_t bytes = 0;
};
// Keys view the Batcher's topic names: valid until the Batcher next changes.
using QuietTopics = absl::flat_hash_map<absl::string_view, TopicRoom>;

// Messages of one topic to send in one call.
struct Batch {
  std::string topic;
  // Request order. A key's messages appear in publish order.
  std::vector<std::unique_ptr<Pending>> messages;
  // The distinct ordering keys among `messages`: they are in flight until
  // Complete() is called with them.
  std::vector<std::string> keys;
};

// Holds queued messages per topic and decides what goes into the next batch.
//
// Ordering: a key (Pending::order_key) is in at most one in-flight batch at a
// time. Its later messages wait behind an in-flight or backing-off earlier
// one, in publish order; messages handed back for retry go in front of their
// key's queue. Messages without a key are never held back.
//
// A topic is due when it has no batch in flight (nothing to wait for: an idle
// publisher sends at once, a busy one collects while its calls travel, so
// batches grow with the load), when its eligible messages fill a batch (count
// or bytes), when its oldest eligible message was published at least
// `linger` ago (so messages that waited behind their key go at once), when a
// retry is eligible (its backoff was its wait), or when it holds a message
// with seq <= urgent_upto (Flush).
//
// Parts of PublishMany calls (ManyPart) are ordered with the messages by
// key: a part is ready (NextPart) once it holds each of its keys, which it
// gets in publish order (by seq) after the key's earlier messages and parts
// are done, and holds until CompletePart, so the key's later messages and
// parts wait for it. A part is sent as it is, never merged into a batch, and
// is not subject to the timing above: ready means due.
//
// Not thread-safe: owned by the publisher's sender thread.
class Batcher {
 public:
  explicit Batcher(BatchLimits limits) : limits_(limits) {}
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // New limits for the batches built from now on (settings pushed by the
  // nodes); queued messages stay queued.
  void SetLimits(BatchLimits limits) { limits_ = limits; }

  // Queues a newly published message behind its key's earlier ones.
  void Add(std::unique_ptr<Pending> message);
  // Whether Add would queue `message` behind an earlier message or part of
  // its key (in flight, queued or backing off) instead of making it eligible.
  bool WaitsBehindKey(const Pending& message) const;

  // The next batch of a due topic, or nullopt when no topic is due. Messages
  // met on the way whose deadline passed are moved to *expired instead.
  std::optional<Batch> NextBatch(Clock::time_point now, uint64_t urgent_upto,
                                 std::vector<std::unique_ptr<Pending>>* expired);

  // A batch from NextBatch finished: `retries` (some of its messages, in
  // request order, with not_before set) wait until not_before and then go in
  // front of their keys' queues; the batch's `keys` are no longer in flight.
  // Call it once for every batch NextBatch returned.
  void Complete(const std::string& topic, const std::vector<std::string>& keys,
                std::vector<std::unique_ptr<Pending>> retries);

  // Messages whose retry backoff ended by `now` become eligible again.
  void ReleaseBackoff(Clock::time_point now);

  // When NextBatch (with this urgent_upto) or ReleaseBackoff may next have
  // work without any other call in between; Clock::time_point::max() when
  // never.
  Clock::time_point NextWakeup(uint64_t urgent_upto) const;

  // Replaces *out with the topics that have a batch in flight and nothing
  // due (with this urgent_upto), each with its room. Until
  // NextWakeup(urgent_upto), a message with a higher seq added to one of them
  // within its room and published no earlier than NextWakeup() - linger makes
  // nothing due: the sender thread need not wake for it.
  void Quiet(uint64_t urgent_upto, QuietTopics* out) const;
  Clock::duration linger() const { return limits_.linger; }

  // Removes and returns every queued message (not the in-flight ones).
  std::vector<std::unique_ptr<Pending>> TakeAll();

  // Queues a newly published part behind its keys' earlier messages and
  // parts. Cost: a key lookup per message of the part; CompletePart looks up
  // each distinct key once.
  void AddPart(std::unique_ptr<ManyPart> part);
  // A part that holds all its keys (in the order they got them); null when
  // none.
  std::unique_ptr<ManyPart> NextPart();
  // A part from NextPart will be tried again at its not_before, still holding
  // its keys (its failed messages go before the keys' later ones).
  void RetryPart(std::unique_ptr<ManyPart> part);
  // A part from NextPart is done: its keys go to what waits for them. Call
  // it once for every part NextPart returned and not retried.
  void CompletePart(const ManyPart& part);
  // Removes and returns every part not in flight (call before TakeAll, which
  // forgets the keys parts wait for).
  std::vector<std::unique_ptr<ManyPart>> TakeAllParts();

  // Messages held (queued or backing off; not in flight).
  std::size_t size() const { return size_; }

 private:
  struct KeyQueue {
    // Messages of the key that are nowhere else, in publish order.
    PendingQueue waiting;
    // At most one of these holds, except inside Build, where a key the batch
    // holds is in_flight and may be in_ready too. in_ready: the key's first message is in
    // Topic::ready (or, while a batch is built, in same_batch_). in_flight: a batch (or
    // the batch being built) holds the key. backing_off: its first message waits in
    // backoff_.
    bool in_ready = false;
    bool in_flight = false;
    bool backing_off = false;
    // Set only inside Complete(): retried messages were put in front.
    bool requeued = false;
    // Parts waiting for the key, in publish order; `waiting` and `parts`
    // interleave by seq.
    PointerRing<ManyPart> parts;
    // The part that holds the key; the key's messages and other parts wait.
    ManyPart* holder = nullptr;

    bool idle() const {
      return waiting.empty() && parts.empty() && holder == nullptr && !in_ready &&
             !in_flight && !backing_off;
    }
  };

  struct Topic {
    // Eligible messages by seq: unordered ones and at most one per key.
    // Its retries (attempts > 0) make the topic due.
    Candidates ready;
    // Open addressing: a key's queue comes and goes with each of its batches,
    // so entries must be cheap to create and erase.
    absl::flat_hash_map<std::string, KeyQueue> keys;
    // Batches from NextBatch not yet Complete()d.
    std::size_t batches_in_flight = 0;

    bool empty() const { return ready.empty() && keys.empty() && batches_in_flight == 0; }
  };

  bool Due(const Topic& topic, Clock::time_point now, uint64_t urgent_upto) const;
  // Due whatever the time: all but the linger.
  bool DueNow(const Topic& topic, uint64_t urgent_upto) const;
  Batch Build(const std::string& name, Topic& topic, Clock::time_point now,
              std::vector<std::unique_ptr<Pending>>* expired);
  // Moves the key's first waiting message to `ready` unless it is already
  // there, backing off, or (unless `same_batch`) in flight. `same_batch`: the
  // key may be in flight in the batch being built, which may take more of it
  // (from same_batch_).
  void Promote(Topic& topic, KeyQueue& queue, bool same_batch = false);
  // The key's first part comes before its first waiting message.
  static bool PartFirst(const KeyQueue& queue);
  // Gives the key to its first waiting part.
  void Grant(KeyQueue& queue);
  using Topics = std::map<std::string, Topic, std::less<>>;
  // The topic's state, created if it has none. Remembers the last topic
  // asked for: a publisher's messages mostly go to one.
  Topic& TopicNamed(std::string_view name);
  // Every erase of a topic goes through here (it forgets the remembered one).
  Topics::iterator EraseTopic(Topics::iterator topic);

  BatchLimits limits_;
  Topics topics_;
  Topics::value_type* cached_topic_ = nullptr;
  // Build's scratch: the next message of each key the batch being built
  // holds. What the batch does not take goes back to its key's queue.
  Candidates same_batch_;
  // Messages waiting for their retry backoff, by not_before. For a key, only
  // its first message is here (KeyQueue::backing_off); the rest wait behind.
  std::multimap<Clock::time_point, std::unique_ptr<Pending>> backoff_;
  std::size_t size_ = 0;
  // Parts that wait for keys, that hold all of theirs (in that order), and
  // that wait to be retried.
  absl::flat_hash_map<const ManyPart*, std::unique_ptr<ManyPart>> waiting_parts_;
  std::deque<std::unique_ptr<ManyPart>> ready_parts_;
  std::multimap<Clock::time_point, std::unique_ptr<ManyPart>> part_backoff_;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_BATCHER_H_
