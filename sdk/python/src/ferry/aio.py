"""asyncio flavour of the Ferry SDK (grpc.aio).

::

    import ferry.aio

    async with ferry.aio.Publisher(["127.0.0.1:7400"]) as publisher:
        cluster, partition, offset = await publisher.publish("orders", b"hello", key="k")

    async with ferry.aio.Subscriber(["127.0.0.1:7400"], "billing", ["orders"],
                                    start="earliest") as subscriber:
        async for message in subscriber:
            print(message.value)
            message.ack()

Same semantics and options as :class:`ferry.Publisher` and
:class:`ferry.Subscriber` (batching, retries of retryable failures only,
failover, per-key order across retries; one stream per endpoint, ack batching
per stream, automatic deadline extension, reconnect with backoff, fatal
INVALID_ARGUMENT / NOT_FOUND / UNIMPLEMENTED, close flushes acks). Objects
must be used from the event loop that first used them; they are not
thread-safe.
"""
import asyncio
import collections
import itertools
import logging
import time
from typing import Optional

import grpc
import grpc.aio

from ferry import _common, _types
from ferry._publish_core import Endpoints, Entry, PublishCore, expired_error
from ferry._subscribe_core import (Message, SettlementBook, Settlements, Stats, SubscriberError,
                                   default_client_id, open_request)
from ferry.errors import ResourceExhausted, Unavailable, error_from_rpc_error, error_from_status
from ferry.v1 import publisher_pb2, publisher_pb2_grpc, subscriber_pb2_grpc

__all__ = ["Publisher", "Subscriber"]
log = logging.getLogger("ferry")


def _channels(targets, credentials, channel_options):
    options = _common.channel_options(channel_options)
    if credentials is None:
        return [grpc.aio.insecure_channel(t, options=options) for t in targets]
    return [grpc.aio.secure_channel(t, credentials, options=options) for t in targets]


class Publisher:
    """Asyncio publisher; see :class:`ferry.Publisher` for the options.

    ``await publish(...)`` waits for the message's result (use
    ``asyncio.gather`` to publish many at once; they are batched), and
    ``publish_nowait(...)`` queues a message and returns an
    ``asyncio.Future`` at once.
    """

    def __init__(self, endpoints, *, max_batch_messages: int = 500,
                 max_batch_bytes: int = 1 << 20, linger: float = 0.005,
                 max_outstanding_bytes: int = 64 << 20, request_timeout: float = 30.0,
                 delivery_timeout: float = 120.0, retry_backoff=(0.05, 2.0),
                 close_timeout: float = 30.0, max_inflight_batches: int = 32,
                 credentials=None, channel_options=None):
        self._targets = _common.check_endpoints(endpoints)
        if max_batch_messages < 1 or max_batch_bytes < 1 or max_outstanding_bytes < 1:
            raise ValueError("max_batch_messages, max_batch_bytes and "
                             "max_outstanding_bytes must be >= 1")
        linger = _types.seconds_of(linger, "linger")
        initial, maximum = (_types.seconds_of(v, "retry_backoff") for v in retry_backoff)
        if linger < 0 or request_timeout <= 0 or delivery_timeout <= 0 or not 0 < initial <= maximum:
            raise ValueError("need linger >= 0, request_timeout > 0, delivery_timeout > 0 "
                             "and 0 < retry_backoff[0] <= retry_backoff[1]")
        self._request_timeout = float(request_timeout)
        self._delivery_timeout = float(delivery_timeout)
        self._close_timeout = float(close_timeout)
        self._max_outstanding_bytes = max_outstanding_bytes
        self._max_inflight = max(1, max_inflight_batches)
        self._core = PublishCore(max_batch_messages, max_batch_bytes, linger, initial, maximum)
        self._endpoints = Endpoints(self._targets, initial, maximum)
        self._channel_args = (credentials, channel_options)
        self._channels = None
        self._stubs = None
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._outstanding = {}
        self._outstanding_bytes = 0
        self._inflight = set()
        self._flushers = 0
        self._closing = False
        self._task = None
        self._wake = None
        self._progress = None

    def _start(self):
        if self._task is None:
            self._channels = _channels(self._targets, *self._channel_args)
            self._stubs = [publisher_pb2_grpc.PublisherStub(c) for c in self._channels]
            self._wake = asyncio.Event()
            self._progress = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())

    def publish_nowait(self, topic: str, value, key=None, headers=None, ordering_key=None, *,
                       id: Optional[str] = None, timestamp=None) -> "asyncio.Future":
        """Queues one message; returns an ``asyncio.Future`` of
        :class:`ferry.PublishResult` (or a FerryError). Raises
        ``ResourceExhausted`` at once when ``max_outstanding_bytes`` is in use."""
        _common.validate_topic(topic)
        message, size, okey = _common.build_message(key, value, headers, ordering_key, id,
                                                    timestamp)
        if size > self._max_outstanding_bytes:
            raise _common.too_big(size, self._max_outstanding_bytes)
        if self._closing:
            raise Unavailable("publisher closed", retryable=False)
        if self._outstanding_bytes + size > self._max_outstanding_bytes:
            raise ResourceExhausted("max_outstanding_bytes %d reached" % self._max_outstanding_bytes)
        self._start()
        future = asyncio.get_running_loop().create_future()
        now = time.monotonic()
        seq = next(self._seq)
        self._last_seq = seq
        entry = Entry(seq, topic, message, size, okey, now + self._delivery_timeout, future)
        self._outstanding[seq] = entry
        self._outstanding_bytes += size
        if self._core.add(entry, now):
            self._wake.set()
        return future

    async def publish(self, topic: str, value, key=None, headers=None, ordering_key=None, *,
                      id: Optional[str] = None, timestamp=None) -> _types.PublishResult:
        """Publishes one message and returns its :class:`ferry.PublishResult`
        once the broker acknowledged it; raises a :class:`ferry.FerryError`
        otherwise. Waits for room when ``max_outstanding_bytes`` is in use."""
        while True:
            try:
                future = self.publish_nowait(topic, value, key, headers, ordering_key,
                                             id=id, timestamp=timestamp)
                break
            except ResourceExhausted:
                self._progress.clear()
                await self._progress.wait()
        return await future

    async def flush(self, timeout: Optional[float] = None) -> bool:
        """Sends queued messages at once and waits until every message
        published before the call has its result; False on timeout."""
        if self._task is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        watermark = self._last_seq
        self._flushers += 1
        self._wake.set()
        try:
            while self._outstanding and next(iter(self._outstanding)) <= watermark:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._progress.clear()
                try:
                    await asyncio.wait_for(self._progress.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
            return True
        finally:
            self._flushers -= 1

    async def close(self, timeout: Optional[float] = None) -> bool:
        """Flushes (up to ``timeout``, default close_timeout), then fails what
        is left with ``Unavailable("publisher closed")`` and closes the
        channels. Idempotent."""
        if self._closing:
            return True
        flushed = await self.flush(self._close_timeout if timeout is None else timeout)
        self._closing = True
        if self._task is None:
            return flushed
        error = Unavailable("publisher closed", retryable=False)
        for entry in list(self._outstanding.values()):
            self._resolve(entry, error)
        self._core.drain()
        self._task.cancel()
        for batch in list(self._inflight):
            if batch.call is not None:
                batch.call.cancel()
        await asyncio.gather(self._task, *[b.call for b in self._inflight if b.call],
                             return_exceptions=True)
        for channel in self._channels:
            await channel.close()
        return flushed

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    def _resolve(self, entry, outcome):
        if entry.done:
            return
        entry.done = True
        self._outstanding.pop(entry.seq, None)
        self._outstanding_bytes -= entry.size
        if not entry.handle.done():
            if isinstance(outcome, Exception):
                entry.handle.set_exception(outcome)
            else:
                entry.handle.set_result(outcome)
        self._progress.set()

    async def _run(self):
        core = self._core
        while not self._closing:
            self._wake.clear()
            now = time.monotonic()
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
                        self._resolve(entry, expired_error(entry))
                    if batch is not None:
                        batch.endpoint = self._endpoints.pick(now)
                        self._inflight.add(batch)
                        batch.call = asyncio.ensure_future(self._send(batch))
            wake = core.next_wakeup(now)
            if len(self._inflight) >= self._max_inflight:
                wake = None
            timeout = None if wake is None else max(0.0, wake - time.monotonic())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    async def _send(self, batch):
        endpoint = self._targets[batch.endpoint]
        count = len(batch.entries)
        request = publisher_pb2.PublishRequest(
            topic=batch.topic, messages=[e.message for e in batch.entries])
        try:
            response = await self._stubs[batch.endpoint].Publish(
                request, timeout=self._request_timeout)
        except asyncio.CancelledError:
            outcomes = [Unavailable("publisher closed", retryable=False)] * count
        except grpc.RpcError as e:
            error, node_failed = _common.call_error(e, endpoint)
            if node_failed:
                self._endpoints.failed(batch.endpoint, time.monotonic())
            outcomes = [error] * count
        else:
            self._endpoints.succeeded(batch.endpoint)
            outcomes = _common.result_outcomes(response, count, endpoint)
        self._inflight.discard(batch)
        succeeded, failed = self._core.complete(batch, outcomes, time.monotonic())
        for entry, outcome in succeeded + failed:
            self._resolve(entry, outcome)
        self._wake.set()


class _Stream:
    def __init__(self, index):
        self.index = index
        self.requests = asyncio.Queue()
        self.call = None
        self.alive = True
        self.pending = Settlements()
        self.unsettled = {}

    async def request_iterator(self):
        while True:
            item = await self.requests.get()
            if item is None:
                return
            yield item


class Subscriber(SettlementBook):
    """Asyncio subscriber (iterator API); see :class:`ferry.Subscriber` for
    the semantics and options::

        async with ferry.aio.Subscriber(endpoints, "group", ["topic"]) as sub:
            async for message in sub:
                message.ack()

    ``message.ack()``, ``nack()`` and ``extend()`` are plain (non-async)
    calls; settlements are batched per stream and flushed by :meth:`close`.
    """

    def __init__(self, endpoints, group: str, topics, *, ordering="none", ack_deadline=30.0,
                 max_outstanding_messages: int = 1000, max_outstanding_bytes: int = 10 << 20,
                 start="latest", filter: str = "", max_delivery_attempts: int = 0,
                 dead_letter_topic: str = "", client_id: Optional[str] = None,
                 on_error=None, on_receipt_failure=None, ack_batch=(500, 0.005),
                 max_extension=3600.0, reconnect_backoff=(0.1, 5.0),
                 credentials=None, channel_options=None):
        self._targets = _common.check_endpoints(endpoints)
        if not isinstance(group, str) or not group:
            raise ValueError("group must be a non-empty string")
        if isinstance(topics, str):
            topics = [topics]
        topics = list(topics or [])
        if not topics:
            raise ValueError("topics must name at least one topic")
        if max_outstanding_messages < 1 or max_outstanding_bytes < 1:
            raise ValueError("max_outstanding_messages and max_outstanding_bytes must be >= 1")
        ordering = _types.ordering_of(ordering)
        self._ack_deadline = _types.seconds_of(ack_deadline, "ack_deadline")
        self._open = open_request(group, topics, ordering, self._ack_deadline,
                                  max_outstanding_messages, max_outstanding_bytes, start,
                                  filter, max_delivery_attempts, dead_letter_topic,
                                  client_id or default_client_id())
        self._ack_batch_count = int(ack_batch[0])
        self._ack_batch_delay = _types.seconds_of(ack_batch[1], "ack_batch delay")
        self._max_extension = _types.seconds_of(max_extension, "max_extension")
        self._backoff_initial, self._backoff_max = (
            _types.seconds_of(v, "reconnect_backoff") for v in reconnect_backoff)
        self._on_error = on_error
        self._on_receipt_failure = on_receipt_failure
        self._channel_args = (credentials, channel_options)
        self._streams = [None] * len(self._targets)
        self._delivery = collections.deque()
        self._stats = Stats()
        self._failure = None
        self._closing = False
        self._closed = False
        self._tasks = []
        self._ready = None
        self._maint_wake = None
        self._stop = None

    def _start(self):
        if self._tasks or self._closing:
            return
        self._channels = _channels(self._targets, *self._channel_args)
        self._stubs = [subscriber_pb2_grpc.SubscriberStub(c) for c in self._channels]
        self._ready = asyncio.Event()
        self._maint_wake = asyncio.Event()
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._stream_loop(i)) for i in range(len(self._targets))]
        self._tasks.append(loop.create_task(self._maintain()))

    async def receive(self, timeout: Optional[float] = None) -> Optional[Message]:
        """The next message within ``timeout`` seconds (None: wait); None on
        timeout or after close; raises the fatal FerryError after a fatal
        failure."""
        self._start()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._failure is not None:
                raise self._failure
            if self._closing:
                return None
            while self._delivery:
                message = self._delivery.popleft()
                if message._stream.alive:
                    return message
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def __aiter__(self):
        return self

    async def __anext__(self) -> Message:
        message = await self.receive()
        if message is None:
            raise StopAsyncIteration
        return message

    @property
    def failure(self):
        return self._failure

    def stats(self) -> Stats:
        stats = self._stats.copy()
        stats.open_streams = sum(1 for s in self._streams
                                 if s is not None and s.alive and s.call is not None)
        return stats

    async def close(self) -> None:
        """Nacks messages not handed out, sends pending acks and nacks,
        half-closes the streams and waits for the nodes to end them
        (cancelling after 5 s). Idempotent."""
        if self._closed:
            return
        self._closing = True
        if not self._tasks:
            self._closed = True
            return
        leftovers = list(self._delivery)
        self._delivery.clear()
        for message in leftovers:
            self._settle(message, "nack", 0.0)
        for stream in self._streams:
            if stream is not None and stream.alive:
                self._flush(stream)
                stream.requests.put_nowait(None)
        self._closed = True
        self._ready.set()
        streams = self._tasks[:-1]
        done, pending = await asyncio.wait(streams, timeout=5.0)
        for stream in self._streams:
            if stream is not None and stream.call is not None and pending:
                stream.call.cancel()
        self._stop.set()
        self._maint_wake.set()
        for task in self._tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for channel in self._channels:
            await channel.close()

    async def __aenter__(self):
        self._start()
        return self

    async def __aexit__(self, *exc):
        await self.close()

    # -- settlements ------------------------------------------------------

    def _settle(self, message, kind, seconds):
        self._record(message, kind, seconds, accepting=not self._closed)

    def _put(self, stream, request):
        stream.requests.put_nowait(request)

    def _wake_maintenance(self):
        self._maint_wake.set()

    async def _maintain(self):
        next_scan = time.monotonic() + self._maintenance_scan_every()
        while not self._stop.is_set():
            self._maint_wake.clear()
            wake, next_scan = self._maintenance_step(time.monotonic(), next_scan)
            try:
                await asyncio.wait_for(self._maint_wake.wait(), max(0.0, wake - time.monotonic()))
            except asyncio.TimeoutError:
                pass

    # -- streams ----------------------------------------------------------

    async def _stream_loop(self, index):
        backoff = self._backoff_initial
        endpoint = self._targets[index]
        while not self._closing:
            stream = _Stream(index)
            self._streams[index] = stream
            stream.requests.put_nowait(self._open)
            error = None
            try:
                call = self._stubs[index].Subscribe(stream.request_iterator())
                stream.call = call
                async for response in call:
                    kind = response.WhichOneof("response")
                    if kind == "messages":
                        self._receive(stream, response.messages.messages)
                    elif kind == "opened":
                        backoff = self._backoff_initial
                    elif kind == "receipt_results":
                        self._receipt_results(response.receipt_results.results, endpoint)
            except grpc.RpcError as e:
                error = error_from_rpc_error(e, endpoint)
            except asyncio.CancelledError:
                self._stream_ended(stream)
                raise
            except Exception as e:  # noqa: BLE001
                error = Unavailable("stream failed: %r" % (e,), endpoint=endpoint)
            self._stream_ended(stream)
            if self._closing:
                return
            if error is None:
                error = Unavailable("stream ended by the node", endpoint=endpoint)
            fatal = error.code in _common.FATAL_STREAM_CODES
            report = SubscriberError(error, endpoint, fatal)
            if self._on_error is not None:
                try:
                    self._on_error(report)
                except Exception:  # noqa: BLE001
                    log.exception("ferry: on_error raised")
            if fatal:
                log.error("ferry: subscriber stopped: %s (%s)", error, endpoint)
                self._failure = error
                self._closing = True
                self._ready.set()
                for other in self._streams:
                    if other is not None and other.alive:
                        self._flush(other)
                        other.requests.put_nowait(None)
                return
            self._stats.reconnects += 1
            log.info("ferry: stream to %s failed: %s; reconnecting", endpoint, error)
            try:
                await asyncio.wait_for(self._stop.wait(), backoff)
                return
            except asyncio.TimeoutError:
                pass
            backoff = min(backoff * 2, self._backoff_max)

    def _receive(self, stream, batch):
        if self._closing:
            return
        now = time.monotonic()
        self._stats.received += len(batch)
        for pb in batch:
            message = Message(pb, stream, self, now, self._ack_deadline)
            stream.unsettled[message._receipt] = message
            self._delivery.append(message)
        self._ready.set()

    def _stream_ended(self, stream):
        stream.alive = False
        self._stats.dropped_settlements += stream.pending.count
        stream.pending.take()
        for message in stream.unsettled.values():
            message._settled = True
        stream.unsettled.clear()
        if self._delivery:
            self._delivery = collections.deque(m for m in self._delivery if m._stream is not stream)
        stream.requests.put_nowait(None)

    def _receipt_results(self, results, endpoint):
        self._stats.receipt_failures += len(results)
        for result in results:
            error = error_from_status(result.status.code, result.status.message,
                                      retryable=result.status.retryable, endpoint=endpoint)
            if self._on_receipt_failure is not None:
                try:
                    self._on_receipt_failure(error)
                except Exception:  # noqa: BLE001
                    log.exception("ferry: on_receipt_failure raised")
