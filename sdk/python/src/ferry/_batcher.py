"""Batching, per-key ordering and retry bookkeeping of the publishers (no I/O).

Part of :class:`ferry._publisher_core.PublisherCore`, which both publisher
shells (threads and asyncio) drive.

Model, per topic:

* ``ready`` is a deque of sendable items in publish order: an unkeyed
  :class:`Entry`, or a :class:`_Key` standing for that key's queue.
* A key is *busy* while one of its batches is in flight or its failed messages
  wait for their retry. A busy key is not in ``ready``; messages published
  meanwhile queue behind it. So a key is in at most one in-flight batch and a
  retried message is sent again before any later message of its key: order is
  kept across retries and failover.
* Retries wait ``backoff_initial`` doubling per attempt up to ``backoff_max``,
  and never start after the message's delivery deadline.
"""
import collections
import heapq
import itertools
from typing import Deque, Dict, List, Optional, Tuple

from ferry import _outgoing
from ferry.errors import DeadlineExceeded, FerryError

_tiebreak = itertools.count()


class Entry:
    """One published message, or a chunk of a ``publish_many`` call (all of
    one ordering key, in call order), and its delivery state. A chunk is
    sent in one batch, retried as one (only its messages that failed
    retryably) and resolved as one."""
    __slots__ = ("seq", "topic", "records", "values", "ids", "positions", "count", "size",
                 "okey", "deadline", "attempts", "not_before", "last_error", "done", "handle")

    def __init__(self, seq, topic, records, size, okey, deadline, handle, values=None,
                 ids=None, positions=None):
        self.seq = seq
        self.topic = topic
        self.records = records      # [_outgoing.Outgoing], or None: values + ids
        self.values = values        # publish_many values without key or headers
        self.ids = ids
        self.positions = positions  # each message's index in its publish_many call
        self.count = len(records) if records is not None else len(values)
        self.size = size            # bytes counted against batch and outstanding limits
        self.okey = okey            # ordering key (bytes) or None
        self.deadline = deadline    # monotonic time after which no attempt starts
        self.attempts = 0
        self.not_before = 0.0
        self.last_error: Optional[FerryError] = None
        self.done = False
        self.handle = handle        # the driver's future, or an _outgoing.ManyResults

    def keep_only(self, keep: List[int], outcomes) -> Tuple["Part", int]:
        """Shrinks a chunk to its messages at indices ``keep`` (they go
        again); returns the others, with their ``outcomes``, as a Part and
        their size."""
        kept = set(keep)
        gone = [i for i in range(self.count) if i not in kept]
        if self.records is not None:
            gone_size = sum(_outgoing.record_size(self.records[i]) for i in gone)
            self.records = [self.records[i] for i in keep]
        else:
            gone_size = sum(_outgoing.value_size(self.values[i]) for i in gone)
            self.values = [self.values[i] for i in keep]
            self.ids = [self.ids[i] for i in keep]
        part = Part(self.handle, [self.positions[i] for i in gone], [outcomes[i] for i in gone])
        self.positions = [self.positions[i] for i in keep]
        self.count = len(keep)
        self.size -= gone_size
        return part, gone_size


class Part:
    """Messages of a chunk that finished while the rest of it goes again."""
    __slots__ = ("handle", "positions", "outcomes")

    def __init__(self, handle, positions, outcomes):
        self.handle = handle
        self.positions = positions
        self.outcomes = outcomes


class _Key:
    __slots__ = ("key", "queue", "busy", "in_ready")

    def __init__(self, key):
        self.key = key
        self.queue: Deque[Entry] = collections.deque()
        self.busy = False
        self.in_ready = False


class _Topic:
    __slots__ = ("name", "ready", "keys", "count", "bytes", "since", "urgent", "inflight")

    def __init__(self, name):
        self.name = name
        self.ready: Deque = collections.deque()
        self.keys: Dict[bytes, _Key] = {}
        self.count = 0      # messages queued (not in flight, not waiting for a retry)
        self.bytes = 0
        self.since = None   # when the oldest queued message was queued (linger)
        self.urgent = False  # retries became due: send without lingering
        # Batches taken and not completed. With none in flight a topic sends at
        # once (nothing to wait for); while one is, it collects up to linger.
        self.inflight = 0


class Batch:
    __slots__ = ("topic", "entries", "count", "endpoint", "call")

    def __init__(self, topic, entries, count):
        self.topic = topic
        self.entries = entries
        self.count = count          # messages in it
        self.endpoint = None
        self.call = None


class Batcher:
    def __init__(self, max_batch_messages, max_batch_bytes, linger,
                 backoff_initial, backoff_max):
        self.max_batch_messages = max_batch_messages
        self.max_batch_bytes = max_batch_bytes
        self.linger = linger
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.topics: Dict[str, _Topic] = {}
        self.delayed: List[Tuple[float, int, object, object]] = []  # (due, tie, topic, item)

    # -- queueing ---------------------------------------------------------

    def add(self, entry: Entry, now: float) -> bool:
        """Queues a new message; True when the driver should wake up."""
        topic = self.topics.get(entry.topic)
        if topic is None:
            topic = self.topics[entry.topic] = _Topic(entry.topic)
        self._count(topic, entry, now)
        if entry.okey is None:
            topic.ready.append(entry)
        else:
            key = topic.keys.get(entry.okey)
            if key is None:
                key = topic.keys[entry.okey] = _Key(entry.okey)
            key.queue.append(entry)
            if not key.busy and not key.in_ready:
                key.in_ready = True
                topic.ready.append(key)
        return (topic.count == entry.count or topic.count >= self.max_batch_messages
                or topic.bytes >= self.max_batch_bytes)

    def _count(self, topic, entry, now):
        topic.count += entry.count
        topic.bytes += entry.size
        if topic.since is None:
            topic.since = now

    def release_due(self, now: float) -> None:
        """Makes retries whose backoff has passed sendable again."""
        while self.delayed and self.delayed[0][0] <= now:
            _, _, topic, item = heapq.heappop(self.delayed)
            if isinstance(item, _Key):
                item.busy = False
                entries = list(item.queue)
                if entries:
                    item.in_ready = True
                    topic.ready.appendleft(item)
                else:
                    topic.keys.pop(item.key, None)
            else:
                entries = [item]
                topic.ready.appendleft(item)
            # Queued-behind entries were already counted; count the retried ones.
            for entry in entries:
                if entry.not_before:
                    entry.not_before = 0.0
                    self._count(topic, entry, now)
            topic.urgent = True

    def next_wakeup(self, now: float) -> Optional[float]:
        """The next time something becomes sendable without new input."""
        when = self.delayed[0][0] if self.delayed else None
        for topic in self.topics.values():
            if topic.ready and topic.since is not None:
                t = now if topic.urgent or not topic.inflight else topic.since + self.linger
                when = t if when is None else min(when, t)
        return when

    def sendable(self, now: float, force: bool) -> List[str]:
        """Topics that have a batch to send now."""
        result = []
        for topic in self.topics.values():
            if not topic.ready:
                continue
            if (force or topic.urgent or not topic.inflight
                    or topic.count >= self.max_batch_messages
                    or topic.bytes >= self.max_batch_bytes
                    or (topic.since is not None and now - topic.since >= self.linger)):
                result.append(topic.name)
        return result

    def take_batch(self, name: str, now: float) -> Tuple[Optional[Batch], List[Entry]]:
        """Forms the next batch of a topic; also returns messages whose
        delivery deadline passed while queued (to be failed)."""
        topic = self.topics[name]
        entries: List[Entry] = []
        expired: List[Entry] = []
        size = count = 0
        limit = self.max_batch_messages
        ready = topic.ready
        while ready and count < limit:
            item = ready[0]
            if isinstance(item, Entry):
                if entries and (size + item.size > self.max_batch_bytes
                                or count + item.count > limit):
                    break
                ready.popleft()
                self._uncount(topic, item)
                if now > item.deadline:
                    expired.append(item)
                else:
                    entries.append(item)
                    size += item.size
                    count += item.count
                continue
            key = item
            took = False
            queue = key.queue
            while queue and count < limit:
                entry = queue[0]
                if entries and (size + entry.size > self.max_batch_bytes
                                or count + entry.count > limit):
                    break
                queue.popleft()
                self._uncount(topic, entry)
                if now > entry.deadline:
                    expired.append(entry)
                else:
                    entries.append(entry)
                    size += entry.size
                    count += entry.count
                    took = True
            if took:
                key.busy = True
                key.in_ready = False
                ready.popleft()
            elif not queue:
                key.in_ready = False
                ready.popleft()
                if not key.busy:
                    topic.keys.pop(key.key, None)
            else:
                break  # the batch is full
        if topic.count == 0:
            topic.since = None
            topic.urgent = False
        elif not ready:
            topic.urgent = False
        elif topic.since is not None and not topic.urgent:
            topic.since = now
        if not entries:
            return None, expired
        topic.inflight += 1
        return Batch(name, entries, count), expired

    def _uncount(self, topic, entry):
        topic.count -= entry.count
        topic.bytes -= entry.size

    # -- completion -------------------------------------------------------

    def backoff(self, attempts: int) -> float:
        return min(self.backoff_initial * (2 ** max(0, attempts - 1)), self.backoff_max)

    def complete(self, batch: Batch, outcomes, now: float):
        """Applies a batch's outcome.

        ``outcomes`` has one item per message of the batch, in order: a result
        object (success) or a FerryError (failure; retried when
        ``retryable`` and time allows). Returns ``(finished, parts)``:
        ``finished`` is a list of (entry, its outcomes) to resolve;
        ``parts`` a list of (Part, size): the finished messages of chunks
        whose other messages go again.
        """
        topic = self.topics[batch.topic]
        topic.inflight = max(0, topic.inflight - 1)
        finished, parts = [], []
        retry_by_key: Dict[bytes, List[Entry]] = {}
        keys_in_batch: Dict[bytes, _Key] = {}
        start = 0
        for entry in batch.entries:
            count = entry.count
            mine = outcomes[start:start + count]
            if entry.okey is not None and entry.okey not in keys_in_batch:
                keys_in_batch[entry.okey] = topic.keys[entry.okey]
            if entry.done:
                start += count
                continue
            failures = [i for i, o in enumerate(mine) if isinstance(o, FerryError)]
            if not failures:
                start += count
                finished.append((entry, mine))
                continue
            entry.last_error = mine[failures[0]]
            entry.attempts += 1
            due = now + self.backoff(entry.attempts)
            retry = ([i for i in failures if mine[i].retryable]
                     if due <= entry.deadline else [])
            if not retry:
                start += count
                finished.append((entry, mine))
                continue
            if len(retry) < count:
                parts.append(entry.keep_only(retry, mine))
            start += count
            entry.not_before = due
            if entry.okey is None:
                heapq.heappush(self.delayed, (due, next(_tiebreak), topic, entry))
            else:
                retry_by_key.setdefault(entry.okey, []).append(entry)
        for okey, key in keys_in_batch.items():
            retries = retry_by_key.get(okey)
            if retries:
                key.queue.extendleft(reversed(retries))
                due = max(e.not_before for e in retries)
                heapq.heappush(self.delayed, (due, next(_tiebreak), topic, key))
                continue
            key.busy = False
            if key.queue:
                if not key.in_ready:
                    key.in_ready = True
                    topic.ready.appendleft(key)
                    topic.urgent = topic.urgent or topic.count >= self.max_batch_messages
            else:
                topic.keys.pop(okey, None)
        return finished, parts

    def drain(self) -> List[Entry]:
        """Removes and returns every queued or delayed entry (on close)."""
        out = []
        for topic in self.topics.values():
            for item in topic.ready:
                if isinstance(item, Entry):
                    out.append(item)
            for key in topic.keys.values():
                out.extend(key.queue)
            topic.ready.clear()
            topic.keys.clear()
            topic.count = topic.bytes = 0
            topic.since = None
        for _, _, _, item in self.delayed:
            if isinstance(item, Entry):
                out.append(item)
        self.delayed.clear()
        return out


def expired_error(entry: Entry) -> FerryError:
    if entry.last_error is not None:
        return entry.last_error
    return DeadlineExceeded("message not sent within delivery_timeout (queued behind "
                            "earlier messages of its key or a full publisher)",
                            retryable=True)
