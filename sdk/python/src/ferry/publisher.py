"""ferry.Publisher: batched, retrying, failing-over publishing (threads)."""
import concurrent.futures
import itertools
import threading
import time
from typing import Optional

import grpc

from ferry import _common, _types
from ferry._publish_core import Endpoints, Entry, PublishCore, expired_error
from ferry.errors import ResourceExhausted, Unavailable
from ferry.v1 import publisher_pb2, publisher_pb2_grpc


class _SendFailed:
    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error


class Publisher:
    """Publishes messages to Ferry nodes; thread-safe.

    ::

        with ferry.Publisher(["127.0.0.1:7400", "127.0.0.1:7410"]) as publisher:
            future = publisher.publish("orders", b'{"total": 12}', key="customer-42")
            cluster, partition, offset = future.result()

    Messages are batched per topic (``max_batch_messages``, ``max_batch_bytes``,
    ``linger``) and sent round-robin to the healthy endpoints. A future
    resolves to a :class:`ferry.PublishResult` only after the broker
    acknowledged the message; otherwise it raises a :class:`ferry.FerryError`
    subclass (``InvalidArgument``, ``NotFound``, ``Unavailable``, ...).

    Failed messages are retried only when the node says a retry may succeed
    (per-message ``retryable``, or the call failed with UNAVAILABLE,
    DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED or ABORTED), with exponential
    backoff (``retry_backoff``) until ``delivery_timeout``; a node that failed
    with UNAVAILABLE or DEADLINE_EXCEEDED is avoided for a while, so retries
    fail over to the other endpoints. Messages with the same ordering key
    (``ordering_key``, else ``key``) keep their publish order across retries:
    a key is in at most one in-flight batch, and while one of its messages
    waits for a retry its later messages wait too.

    Each message carries an id (``id=`` or a generated one) that the node
    stores as header ``ferry.id``; a retry after a node failure can store a
    message twice, and consumers use the id to drop such duplicates.

    Args:
        endpoints: Ferry nodes, ``"host:port"`` (any gRPC target).
        max_batch_messages: most messages in one batch (default 500).
        max_batch_bytes: most bytes in one batch (default 1 MiB).
        linger: seconds a message may wait for companions while an earlier
            batch of its topic is in flight (default 0.005); with none in
            flight it is sent at once.
        max_outstanding_bytes: bytes of messages whose futures are not done
            (default 64 MiB); at the cap ``publish`` blocks
            (``block_when_full=True``) or raises ``ResourceExhausted``.
        request_timeout: deadline of each batch call, seconds (default 30).
        delivery_timeout: no attempt starts later than this after publish
            (default 120 s).
        retry_backoff: ``(initial, max)`` seconds (default 0.05, 2).
        close_timeout: how long ``close`` flushes (default 30 s).
        max_inflight_batches: batch calls in flight at once (default 32).
        credentials: ``grpc.ChannelCredentials`` for TLS; plaintext if None.
        channel_options: extra gRPC channel options.
    """

    def __init__(self, endpoints, *, max_batch_messages: int = 500,
                 max_batch_bytes: int = 1 << 20, linger: float = 0.005,
                 max_outstanding_bytes: int = 64 << 20, block_when_full: bool = True,
                 request_timeout: float = 30.0, delivery_timeout: float = 120.0,
                 retry_backoff=(0.05, 2.0), close_timeout: float = 30.0,
                 max_inflight_batches: int = 32,
                 credentials: Optional[grpc.ChannelCredentials] = None,
                 channel_options=None):
        self._targets = _common.check_endpoints(endpoints)
        if max_batch_messages < 1 or max_batch_bytes < 1 or max_outstanding_bytes < 1:
            raise ValueError("max_batch_messages, max_batch_bytes and "
                             "max_outstanding_bytes must be >= 1")
        linger = _types.seconds_of(linger, "linger")
        initial, maximum = (_types.seconds_of(v, "retry_backoff") for v in retry_backoff)
        if linger < 0 or request_timeout <= 0 or delivery_timeout <= 0 or not 0 < initial <= maximum:
            raise ValueError("need linger >= 0, request_timeout > 0, delivery_timeout > 0 "
                             "and 0 < retry_backoff[0] <= retry_backoff[1]")
        self._request_timeout = _types.seconds_of(request_timeout, "request_timeout")
        self._delivery_timeout = _types.seconds_of(delivery_timeout, "delivery_timeout")
        self._close_timeout = _types.seconds_of(close_timeout, "close_timeout")
        self._max_outstanding_bytes = max_outstanding_bytes
        self._block_when_full = block_when_full
        self._max_inflight = max(1, max_inflight_batches)
        self._core = PublishCore(max_batch_messages, max_batch_bytes, linger, initial, maximum)
        self._endpoints = Endpoints(self._targets, initial, maximum)
        options = _common.channel_options(channel_options)
        if credentials is None:
            self._channels = [grpc.insecure_channel(t, options=options) for t in self._targets]
        else:
            self._channels = [grpc.secure_channel(t, credentials, options=options)
                              for t in self._targets]
        self._stubs = [publisher_pb2_grpc.PublisherStub(c) for c in self._channels]

        self._cond = threading.Condition()
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._outstanding = {}          # seq -> Entry, in seq order
        self._outstanding_bytes = 0
        self._inflight = set()          # Batch
        self._completions = []          # (Batch, grpc future)
        self._flushers = 0
        self._closing = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ferry-publisher", daemon=True)
        self._thread.start()

    # -- public API -------------------------------------------------------

    def publish(self, topic: str, value, key=None, headers=None, ordering_key=None, *,
                id: Optional[str] = None, timestamp=None) -> concurrent.futures.Future:
        """Queues one message; returns a Future of :class:`PublishResult`.

        Args:
            topic: the topic; an empty or invalid name fails the future with
                ``InvalidArgument``, an unknown topic with ``NotFound``.
            value: bytes (str is UTF-8 encoded).
            key: partitioning key (bytes or str; None: no key).
            headers: dict or iterable of ``(str, bytes|str)`` pairs.
            ordering_key: partition and order by this instead of ``key``.
            id: message id stored as header ``ferry.id`` (default: random).
            timestamp: record time (``datetime``); default the node's clock.

        Raises (at once, not through the future): TypeError for values of the
        wrong type, ``ResourceExhausted`` when full and
        ``block_when_full=False``, ``Unavailable`` after ``close``.
        """
        _common.validate_topic(topic)
        message, size, okey = _common.build_message(key, value, headers, ordering_key, id,
                                                    timestamp)
        if size > self._max_outstanding_bytes:
            raise _common.too_big(size, self._max_outstanding_bytes)
        future = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        with self._cond:
            if self._closing:
                raise Unavailable("publisher closed", retryable=False)
            while self._outstanding_bytes + size > self._max_outstanding_bytes:
                if not self._block_when_full:
                    raise ResourceExhausted("max_outstanding_bytes %d reached" %
                                            self._max_outstanding_bytes)
                self._cond.wait()
                if self._closing:
                    raise Unavailable("publisher closed", retryable=False)
            now = time.monotonic()
            seq = next(self._seq)
            self._last_seq = seq
            entry = Entry(seq, topic, message, size, okey, now + self._delivery_timeout, future)
            self._outstanding[seq] = entry
            self._outstanding_bytes += size
            if self._core.add(entry, now):
                self._cond.notify_all()
        return future

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Sends queued messages at once and waits until every message
        published before this call has its final result. Returns False when
        ``timeout`` (seconds) passed first; nothing is cancelled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            watermark = self._last_seq
            self._flushers += 1
            self._cond.notify_all()
            try:
                while self._outstanding and next(iter(self._outstanding)) <= watermark:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flushers -= 1

    def close(self, timeout: Optional[float] = None) -> bool:
        """Flushes (up to ``timeout``, default ``close_timeout``), then fails
        every remaining future with ``Unavailable("publisher closed")`` (a
        message already in flight may still have been stored) and closes the
        channels. Returns whether the flush completed. Idempotent."""
        with self._cond:
            if self._closed:
                return True
        flushed = self.flush(self._close_timeout if timeout is None else timeout)
        with self._cond:
            if self._closed:
                return flushed
            self._closing = True
            self._closed = True
            leftovers = list(self._outstanding.values())
            for entry in leftovers:
                self._forget(entry)
            self._core.drain()
            inflight = list(self._inflight)
            self._cond.notify_all()
        for batch in inflight:
            if batch.call is not None:
                batch.call.cancel()
        error = Unavailable("publisher closed", retryable=False)
        for entry in leftovers:
            entry.handle.set_exception(error)
        self._thread.join()
        for channel in self._channels:
            channel.close()
        return flushed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- sender thread ----------------------------------------------------

    def _run(self):
        core = self._core
        while True:
            to_resolve = []
            to_send = []
            with self._cond:
                while True:
                    if self._closed:
                        return
                    now = time.monotonic()
                    if self._completions:
                        completions, self._completions = self._completions, []
                        for batch, call in completions:
                            self._apply(batch, call, now, to_resolve)
                    core.release_due(now)
                    force = self._flushers > 0
                    while len(self._inflight) < self._max_inflight:
                        names = core.sendable(now, force)
                        if not names:
                            break
                        for name in names:
                            if len(self._inflight) >= self._max_inflight:
                                break
                            batch, expired = core.take_batch(name, now)
                            for entry in expired:
                                to_resolve.append((entry, expired_error(entry)))
                            if batch is not None:
                                batch.endpoint = self._endpoints.pick(now)
                                self._inflight.add(batch)
                                to_send.append(batch)
                    to_resolve = [(e, o) for e, o in to_resolve if self._forget(e)]
                    if to_resolve or to_send:
                        if to_resolve:
                            self._cond.notify_all()
                        break
                    wake = core.next_wakeup(now)
                    if len(self._inflight) >= self._max_inflight:
                        wake = None
                    self._cond.wait(None if wake is None else max(0.0, wake - now))
            for batch in to_send:
                self._send(batch)
            for entry, outcome in to_resolve:
                if isinstance(outcome, Exception):
                    entry.handle.set_exception(outcome)
                else:
                    entry.handle.set_result(outcome)

    def _forget(self, entry):
        """Marks an entry done (under the lock); False if it already was."""
        if entry.done:
            return False
        entry.done = True
        self._outstanding.pop(entry.seq, None)
        self._outstanding_bytes -= entry.size
        return True

    def _send(self, batch):
        request = publisher_pb2.PublishRequest(
            topic=batch.topic, messages=[e.message for e in batch.entries])
        try:
            call = self._stubs[batch.endpoint].Publish.future(
                request, timeout=self._request_timeout)
        except Exception as e:  # e.g. channel closed during close()
            with self._cond:
                self._completions.append((batch, _SendFailed(e)))
                self._cond.notify_all()
            return
        batch.call = call
        call.add_done_callback(lambda c, b=batch: self._on_done(b, c))

    def _on_done(self, batch, call):
        with self._cond:
            self._completions.append((batch, call))
            self._cond.notify_all()

    def _apply(self, batch, call, now, to_resolve):
        self._inflight.discard(batch)
        endpoint = self._targets[batch.endpoint]
        count = len(batch.entries)
        if isinstance(call, _SendFailed):
            outcomes = [Unavailable("could not start the call: %r" % (call.error,),
                                    endpoint=endpoint)] * count
        else:
            try:
                response = call.result()
            except grpc.RpcError as e:
                error, node_failed = _common.call_error(e, endpoint)
                if node_failed:
                    self._endpoints.failed(batch.endpoint, now)
                outcomes = [error] * count
            except concurrent.futures.CancelledError:
                outcomes = [Unavailable("publisher closed", retryable=False)] * count
            else:
                self._endpoints.succeeded(batch.endpoint)
                outcomes = _common.result_outcomes(response, count, endpoint)
        succeeded, failed = self._core.complete(batch, outcomes, now)
        to_resolve.extend(succeeded)
        to_resolve.extend(failed)
