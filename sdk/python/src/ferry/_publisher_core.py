"""The publisher's state machine, without I/O: the one core of both flavours.

:class:`ferry.Publisher` (threads) and :class:`ferry.aio.Publisher` (asyncio)
are thin shells around :class:`PublisherCore`. A shell owns the clock reads,
the locking (or the event loop), the gRPC calls and the futures; the core owns
everything else: options, the outstanding-bytes bound, batching, per-key order,
retries with backoff, node failover and flush watermarks. Every method is
plain, single-threaded and returns what the shell must do next, so the core is
tested without a server (tests/test_core.py) and a new language copies one
shape: state machine + shell.

How a shell drives it::

    record, size, okey = core.prepare(topic, value, ...)    # any thread, no lock
    wait while not core.admit(size)                         # under the lock
    if core.enqueue(record, size, okey, topic, future, now): wake the sender
    # or, publish_many: chunks, count, size = core.prepare_many(topic, items),
    # then admit(size) and core.enqueue_many(topic, chunks, ManyResults(...), now)
    # sender loop, under the lock:
    to_send, to_resolve = core.step(now)
    for batch in to_send: start Publish(core.request(batch)) on
        channel batch.endpoint; its outcome goes to core.on_response /
        on_call_error / on_not_sent, which return more (entry, outcomes) pairs
    deliver(entry, outcomes) for each (outside the lock)
    sleep core.wakeup(now) seconds (None: until new input)

Resolved entries have already left the outstanding set when the core returns
them, so the bound and flush() see them as done at once. An entry is one
message (its handle a future) or a chunk of a publish_many call (its handle
an _outgoing.ManyResults: one future for the call).
"""
import itertools
from typing import Dict, List, Optional, Set, Tuple

import grpc

from ferry import _common, _outgoing, _types
from ferry._batcher import Batch, Batcher, Entry, expired_error
from ferry._client_config import PushedSettings
from ferry._fallback_core import effective_settings
from ferry.errors import FerryError, ResourceExhausted, Unavailable
from ferry.v1 import publisher_pb2

#: (entry or Part, one PublishResult or FerryError per message of it)
Resolution = Tuple[object, list]


class Endpoints:
    """Round-robin over endpoints, skipping ones that failed recently."""

    def __init__(self, targets, backoff_initial, backoff_max):
        self.targets = list(targets)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.down_until = [0.0] * len(self.targets)
        self.failures = [0] * len(self.targets)
        self.next = 0

    def pick(self, now: float) -> int:
        n = len(self.targets)
        for i in range(n):
            index = (self.next + i) % n
            if self.down_until[index] <= now:
                self.next = index + 1
                return index
        index = min(range(n), key=lambda j: self.down_until[j])
        self.next = index + 1
        return index

    def failed(self, index: int, now: float) -> None:
        self.failures[index] += 1
        backoff = min(self.backoff_initial * 2 ** (self.failures[index] - 1), self.backoff_max)
        self.down_until[index] = now + backoff

    def succeeded(self, index: int) -> bool:
        """Returns whether the endpoint had failed before (a reconnect)."""
        had_failed = self.failures[index] > 0
        self.failures[index] = 0
        self.down_until[index] = 0.0
        return had_failed


#: PublisherCore's options, named as the shells' keyword arguments.
CORE_OPTIONS = ("max_batch_messages", "max_batch_bytes", "linger", "max_outstanding_bytes",
                "request_timeout", "delivery_timeout", "retry_backoff", "close_timeout",
                "max_inflight_batches")


class PublisherCore:
    """Options and delivery state of one publisher (see the module doc)."""

    def __init__(self, endpoints, *, max_batch_messages, max_batch_bytes, linger,
                 max_outstanding_bytes, request_timeout, delivery_timeout, retry_backoff,
                 close_timeout, max_inflight_batches):
        """The five settings an operator may push (linger, max_batch_messages,
        max_batch_bytes, request_timeout, delivery_timeout) may be None: the
        application left them to the pushed value or the SDK default."""
        self.targets = _common.check_endpoints(endpoints)
        self.explicit = PushedSettings(
            None if linger is None else _types.seconds_of(linger, "linger"),
            max_batch_messages, max_batch_bytes,
            None if request_timeout is None else _types.seconds_of(request_timeout,
                                                                   "request_timeout"),
            None if delivery_timeout is None else _types.seconds_of(delivery_timeout,
                                                                    "delivery_timeout"))
        settings = effective_settings(self.explicit, None)
        if max_outstanding_bytes < 1:
            raise ValueError("max_outstanding_bytes must be >= 1")
        initial, maximum = (_types.seconds_of(v, "retry_backoff") for v in retry_backoff)
        self.close_timeout = _types.seconds_of(close_timeout, "close_timeout")
        if not 0 < initial <= maximum:
            raise ValueError("need 0 < retry_backoff[0] <= retry_backoff[1]")
        check_settings(settings)
        self.max_outstanding_bytes = max_outstanding_bytes
        self.max_inflight = max(1, max_inflight_batches)
        self.batcher = Batcher(settings.max_batch_messages, settings.max_batch_bytes,
                               settings.linger, initial, maximum)
        self.request_timeout = settings.request_timeout
        self.delivery_timeout = settings.delivery_timeout
        self.endpoints = Endpoints(self.targets, initial, maximum)
        self._seq = itertools.count(1)
        self.last_seq = 0
        self.outstanding: Dict[int, Entry] = {}  # seq -> Entry, in seq order
        self.outstanding_bytes = 0
        self.inflight: Set[Batch] = set()
        self.flushers = 0       # flush() calls waiting: send without lingering
        self.closing = False
        # A node answered after a call to it had failed: the shell tells its
        # settings follower (the pushed settings may have changed) and clears it.
        self.reconnected = False

    def apply_settings(self, pushed: Optional[PushedSettings]) -> PushedSettings:
        """Settings an operator pushed (None: none) replace the SDK defaults
        of the ones the application did not set, from the next batch (and,
        for delivery_timeout, the next message) on. Returns those in effect.
        Out-of-bounds pushed values are ignored (the node checks them)."""
        settings = effective_settings(self.explicit, pushed)
        try:
            check_settings(settings)
        except ValueError:
            settings = effective_settings(self.explicit, None)
        self.batcher.max_batch_messages = settings.max_batch_messages
        self.batcher.max_batch_bytes = settings.max_batch_bytes
        self.batcher.linger = settings.linger
        self.request_timeout = settings.request_timeout
        self.delivery_timeout = settings.delivery_timeout
        return settings

    def settings(self) -> PushedSettings:
        """The pushable settings in effect."""
        return PushedSettings(self.batcher.linger, self.batcher.max_batch_messages,
                              self.batcher.max_batch_bytes, self.request_timeout,
                              self.delivery_timeout)

    # -- publishing -------------------------------------------------------

    def prepare(self, topic, value, key, headers, ordering_key, message_id, timestamp):
        """Validates one message: (Outgoing, size, ordering key or None).
        Needs no lock. Raises TypeError / InvalidArgument."""
        _common.validate_topic(topic)
        record, size = _outgoing.build(value, key, headers, ordering_key, message_id, timestamp)
        if size > self.max_outstanding_bytes:
            raise _common.too_big(size, self.max_outstanding_bytes)
        return record, size, _outgoing.ordering_key_of(record)

    def prepare_many(self, topic, messages):
        """Validates a publish_many call's items (see _outgoing.items_of):
        (chunks, message count, size). Needs no lock. Raises TypeError /
        InvalidArgument (the call is larger than max_outstanding_bytes)."""
        _common.validate_topic(topic)
        batcher = self.batcher
        chunks, count, size = _outgoing.items_of(messages, batcher.max_batch_messages,
                                                 batcher.max_batch_bytes)
        if size > self.max_outstanding_bytes:
            raise _common.too_big(size, self.max_outstanding_bytes, "publish_many call")
        return chunks, count, size

    def admit(self, size: int) -> bool:
        """Whether a message of ``size`` bytes fits the outstanding bound now.
        Raises Unavailable once the publisher is closed."""
        if self.closing:
            raise Unavailable("publisher closed", retryable=False)
        return self.outstanding_bytes + size <= self.max_outstanding_bytes

    def full_error(self) -> ResourceExhausted:
        return ResourceExhausted("max_outstanding_bytes %d reached" % self.max_outstanding_bytes)

    def enqueue(self, record, size, okey, topic, handle, now) -> bool:
        """Queues a prepared message; True when the sender should wake up."""
        seq = next(self._seq)
        self.last_seq = seq
        entry = Entry(seq, topic, [record], size, okey, now + self.delivery_timeout, handle)
        self.outstanding[seq] = entry
        self.outstanding_bytes += size
        return self.batcher.add(entry, now)

    def enqueue_many(self, topic, chunks, handle, now) -> bool:
        """Queues a prepared publish_many call (its size admitted); True when
        the sender should wake up."""
        wake = False
        deadline = now + self.delivery_timeout
        outstanding, add = self.outstanding, self.batcher.add
        for okey, positions, values, ids, records, size in chunks:
            seq = next(self._seq)
            entry = Entry(seq, topic, records, size, okey, deadline, handle, values, ids,
                          positions)
            outstanding[seq] = entry
            self.outstanding_bytes += size
            wake = add(entry, now) or wake
        self.last_seq = seq
        return wake

    def flushed(self, watermark: int) -> bool:
        """True once every message up to sequence ``watermark`` is resolved."""
        return not self.outstanding or next(iter(self.outstanding)) > watermark

    # -- sending ----------------------------------------------------------

    def step(self, now: float) -> Tuple[List[Batch], List[Resolution]]:
        """Batches to send now (each with its ``endpoint`` index picked) and
        messages that expired while queued."""
        batcher = self.batcher
        batcher.release_due(now)
        force = self.flushers > 0
        to_send: List[Batch] = []
        to_resolve: List[Resolution] = []
        while len(self.inflight) < self.max_inflight:
            names = batcher.sendable(now, force)
            if not names:
                break
            for name in names:
                if len(self.inflight) >= self.max_inflight:
                    break
                batch, expired = batcher.take_batch(name, now)
                for entry in expired:
                    if self._forget(entry):
                        to_resolve.append((entry, [expired_error(entry)] * entry.count))
                if batch is not None:
                    batch.endpoint = self.endpoints.pick(now)
                    self.inflight.add(batch)
                    to_send.append(batch)
        return to_send, to_resolve

    def wakeup(self, now: float) -> Optional[float]:
        """Seconds until step() has work without new input; None: none."""
        if len(self.inflight) >= self.max_inflight:
            return None
        when = self.batcher.next_wakeup(now)
        return None if when is None else max(0.0, when - now)

    def request(self, batch: Batch) -> publisher_pb2.PublishRequest:
        # compact_results: a fully written batch is answered with packed
        # arrays instead of a PublishResult per message (less for the node to
        # build and for result_outcomes to read); older nodes ignore it.
        request = publisher_pb2.PublishRequest(topic=batch.topic, compact_results=True)
        messages = request.messages
        for entry in batch.entries:
            _outgoing.write(messages, entry)
        return request

    def on_response(self, batch: Batch, response, now: float) -> List[Resolution]:
        """The node answered the batch's Publish call."""
        if self.endpoints.succeeded(batch.endpoint):
            self.reconnected = True
        outcomes = _common.result_outcomes(response, batch.count, self.targets[batch.endpoint])
        return self._complete(batch, outcomes, now)

    def on_call_error(self, batch: Batch, error: grpc.RpcError, now: float) -> List[Resolution]:
        """The batch's Publish call failed; a failed node is avoided a while."""
        ferry_error, node_failed = _common.call_error(error, self.targets[batch.endpoint])
        if node_failed:
            self.endpoints.failed(batch.endpoint, now)
        return self._complete(batch, [ferry_error] * batch.count, now)

    def on_not_sent(self, batch: Batch, cause, now: float) -> List[Resolution]:
        """The call could not start (``cause``: the exception) or was
        cancelled by close (``cause`` None)."""
        if cause is None:
            error = Unavailable("publisher closed", retryable=False)
        else:
            error = Unavailable("could not start the call: %r" % (cause,),
                                endpoint=self.targets[batch.endpoint])
        return self._complete(batch, [error] * batch.count, now)

    def _complete(self, batch, outcomes, now):
        self.inflight.discard(batch)
        finished, parts = self.batcher.complete(batch, outcomes, now)
        resolutions = [(e, o) for e, o in finished if self._forget(e)]
        for part, size in parts:
            self.outstanding_bytes -= size
            resolutions.append((part, part.outcomes))
        return resolutions

    # -- closing ----------------------------------------------------------

    def close(self) -> Tuple[List[Resolution], List[Batch]]:
        """Stops publishing: returns every unresolved message with the
        "publisher closed" error, and the batches in flight (to cancel)."""
        self.closing = True
        error = Unavailable("publisher closed", retryable=False)
        leftovers = [(e, [error] * e.count) for e in list(self.outstanding.values())
                     if self._forget(e)]
        self.batcher.drain()
        return leftovers, list(self.inflight)

    def _forget(self, entry: Entry) -> bool:
        """Marks an entry resolved; False if it already was."""
        if entry.done:
            return False
        entry.done = True
        self.outstanding.pop(entry.seq, None)
        self.outstanding_bytes -= entry.size
        return True


def check_settings(settings: PushedSettings) -> None:
    if settings.max_batch_messages < 1 or settings.max_batch_bytes < 1:
        raise ValueError("max_batch_messages and max_batch_bytes must be >= 1")
    if (settings.linger < 0 or settings.request_timeout <= 0
            or settings.delivery_timeout <= 0):
        raise ValueError("need linger >= 0, request_timeout > 0 and delivery_timeout > 0")


def deliver(target, outcomes) -> None:
    """Completes what a resolution stands for: one message's future, or its
    messages' places in a publish_many call's result."""
    handle = target.handle
    if handle.__class__ is _outgoing.ManyResults:
        handle.fill(target.positions, outcomes)
    else:
        resolve(handle, outcomes[0])


def acked(resolutions) -> int:
    """Messages the broker acknowledged among ``resolutions``."""
    return sum(1 for _, outcomes in resolutions for o in outcomes
               if isinstance(o, _types.PublishResult))


def resolve(handle, outcome) -> None:
    """Completes a future (concurrent or asyncio, not done yet) with a
    result or error."""
    if isinstance(outcome, FerryError):
        handle.set_exception(outcome)
    else:
        handle.set_result(outcome)
