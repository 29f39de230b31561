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

Like the threaded classes, these are thin shells around the I/O-free state
machines :class:`ferry._publisher_core.PublisherCore` and
:class:`ferry._subscriber_core.SubscriberCore`; only the waiting differs.
"""
import asyncio
import logging
import time
from typing import Optional

import grpc
import grpc.aio

from ferry import _common, _outgoing, _types
from ferry._client_config import NO_ANSWER, ConfigSchedule
from ferry._fallback import PublisherStats
from ferry._message import Message, MessageBatch, Stats
from ferry._publisher_core import CORE_OPTIONS, PublisherCore, acked, deliver
from ferry._subscriber_core import SubscriberCore
from ferry.errors import ResourceExhausted, Unavailable, error_from_rpc_error
from ferry.publisher import Publisher as _ThreadedPublisher
from ferry._settings import FETCH_TIMEOUT
from ferry.v1 import admin_pb2, admin_pb2_grpc, publisher_pb2_grpc, subscriber_pb2_grpc

__all__ = ["Publisher", "Subscriber"]

log = logging.getLogger("ferry")


def _channels(targets, credentials, channel_options):
    options = _common.channel_options(channel_options)
    if credentials is None:
        return [grpc.aio.insecure_channel(t, options=options) for t in targets]
    return [grpc.aio.secure_channel(t, credentials, options=options) for t in targets]


async def _wait(event: asyncio.Event, timeout: Optional[float]) -> None:
    """Waits for ``event`` or ``timeout`` seconds (None: no limit)."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        pass


class Publisher:
    """Asyncio publisher; see :class:`ferry.Publisher` for the options.

    ``await publish(...)`` waits for the message's result (use
    ``asyncio.gather`` to publish many at once; they are batched), and
    ``publish_nowait(...)`` queues a message and returns an
    ``asyncio.Future`` at once. Pushed settings are followed from the first
    publish on (the publisher's tasks start on the event loop then).
    """

    def __init__(self, endpoints, *, max_batch_messages: Optional[int] = None,
                 max_batch_bytes: Optional[int] = None, linger: Optional[float] = None,
                 max_outstanding_bytes: int = 64 << 20, request_timeout: Optional[float] = None,
                 delivery_timeout: Optional[float] = None, retry_backoff=(0.05, 2.0),
                 close_timeout: float = 30.0, max_inflight_batches: int = 32,
                 credentials=None, channel_options=None, fallback: bool = False,
                 fallback_after: float = 10.0, client_id: Optional[str] = None,
                 pushed_settings: bool = True):
        arguments = locals()
        options = {name: arguments[name] for name in CORE_OPTIONS}
        self._core = PublisherCore(endpoints, **options)
        # fallback=True runs the threaded engine (ferry.Publisher) underneath:
        # its futures are bridged to the loop. Construction waits up to 2 s
        # for the nodes' first answer, so that pushed settings apply at once.
        self._threaded = None
        if fallback:
            self._threaded = _ThreadedPublisher(
                endpoints, block_when_full=False, credentials=credentials,
                channel_options=channel_options, fallback=True,
                fallback_after=fallback_after, client_id=client_id,
                pushed_settings=pushed_settings, **options)
        self._channel_args = (credentials, channel_options)
        self._channels = None
        self._stubs = None
        self._task = None
        self._client_id = client_id or ""
        self._follow = pushed_settings
        self._schedule = ConfigSchedule()
        self._settings_task = None
        self._settings_wake = None
        self._fetched = False
        self._wake = None
        self._progress = None
        self._acked = 0
        self._batches = 0

    def _start(self):
        if self._task is None:
            self._channels = _channels(self._core.targets, *self._channel_args)
            self._stubs = [publisher_pb2_grpc.PublisherStub(c) for c in self._channels]
            self._wake = asyncio.Event()
            self._progress = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())
            if self._follow:
                self._settings_wake = asyncio.Event()
                self._settings_task = asyncio.get_running_loop().create_task(
                    self._follow_settings())

    def publish_nowait(self, topic: str, value, key=None, headers=None, ordering_key=None, *,
                       id: Optional[str] = None, timestamp=None) -> "asyncio.Future":
        """Queues one message; returns an ``asyncio.Future`` of
        :class:`ferry.PublishResult` (or a FerryError). Raises
        ``ResourceExhausted`` at once when ``max_outstanding_bytes`` is in use."""
        if self._threaded is not None:
            return asyncio.wrap_future(self._threaded.publish(
                topic, value, key, headers, ordering_key, id=id, timestamp=timestamp))
        core = self._core
        message, size, okey = core.prepare(topic, value, key, headers, ordering_key, id,
                                           timestamp)
        if not core.admit(size):
            raise core.full_error()
        self._start()
        future = asyncio.get_running_loop().create_future()
        if core.enqueue(message, size, okey, topic, future, time.monotonic()):
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
                if self._threaded is not None:
                    await asyncio.sleep(0.005)  # the threaded engine has no loop event
                    continue
                self._progress.clear()
                await self._progress.wait()
        return await future

    def publish_many_nowait(self, topic: str, messages) -> "asyncio.Future":
        """Queues many messages of one topic (items as in
        :meth:`ferry.Publisher.publish_many`); returns one ``asyncio.Future``
        of the list of outcomes (PublishResult or FerryError per message).
        Raises ``ResourceExhausted`` at once when they do not fit now."""
        if self._threaded is not None:
            return asyncio.wrap_future(self._threaded.publish_many(topic, messages))
        core = self._core
        chunks, count, size = core.prepare_many(topic, messages)
        if not core.admit(size):
            raise core.full_error()
        future = asyncio.get_running_loop().create_future()
        if not chunks:
            future.set_result([])
            return future
        self._start()
        if core.enqueue_many(topic, chunks, _outgoing.ManyResults(future, count),
                             time.monotonic()):
            self._wake.set()
        return future

    async def publish_many(self, topic: str, messages) -> list:
        """Publishes many messages of one topic and returns each one's
        outcome (see :meth:`ferry.Publisher.publish_many`); waits for room
        when ``max_outstanding_bytes`` is in use."""
        messages = list(messages)  # tried again while waiting for room
        while True:
            try:
                future = self.publish_many_nowait(topic, messages)
                break
            except ResourceExhausted:
                if self._threaded is not None:
                    await asyncio.sleep(0.005)
                    continue
                self._progress.clear()
                await self._progress.wait()
        return await future

    async def flush(self, timeout: Optional[float] = None) -> bool:
        """Sends queued messages at once and waits until every message
        published before the call has its result; False on timeout."""
        if self._threaded is not None:
            return await asyncio.get_running_loop().run_in_executor(
                None, self._threaded.flush, timeout)
        if self._task is None:
            return True
        core = self._core
        deadline = None if timeout is None else time.monotonic() + timeout
        watermark = core.last_seq
        core.flushers += 1
        self._wake.set()
        try:
            while not core.flushed(watermark):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._progress.clear()
                await _wait(self._progress, remaining)
            return True
        finally:
            core.flushers -= 1

    async def close(self, timeout: Optional[float] = None) -> bool:
        """Flushes (up to ``timeout``, default close_timeout), then fails what
        is left with ``Unavailable("publisher closed")`` and closes the
        channels. Idempotent."""
        if self._threaded is not None:
            return await asyncio.get_running_loop().run_in_executor(
                None, self._threaded.close, timeout)
        core = self._core
        if core.closing:
            return True
        flushed = await self.flush(core.close_timeout if timeout is None else timeout)
        leftovers, inflight = core.close()
        if self._task is None:
            return flushed
        self._resolve(leftovers)
        self._task.cancel()
        calls = [b.call for b in inflight if b.call is not None]
        for call in calls:
            call.cancel()
        tasks = [self._task] + ([self._settings_task] if self._settings_task else [])
        if self._settings_task:
            self._settings_task.cancel()
        await asyncio.gather(*tasks, *calls, return_exceptions=True)
        for channel in self._channels:
            await channel.close()
        return flushed

    def stats(self) -> PublisherStats:
        """Counters of both paths and the pushable settings in effect (see
        :meth:`ferry.Publisher.stats`)."""
        if self._threaded is not None:
            return self._threaded.stats()
        return PublisherStats(self._acked, 0, False, self._fetched, self._batches,
                              *self._core.settings())

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    def _resolve(self, resolutions):
        self._acked += acked(resolutions)
        for entry, outcomes in resolutions:
            if not entry.handle.done():  # the caller may have cancelled it
                deliver(entry, outcomes)
        if resolutions:
            self._progress.set()

    async def _run(self):
        core = self._core
        while not core.closing:
            self._wake.clear()
            now = time.monotonic()
            to_send, expired = core.step(now)
            self._resolve(expired)
            self._batches += len(to_send)
            for batch in to_send:
                batch.call = asyncio.ensure_future(self._send(batch))
            await _wait(self._wake, core.wakeup(now))

    async def _send(self, batch):
        core = self._core
        try:
            response = await self._stubs[batch.endpoint].Publish(
                core.request(batch), timeout=core.request_timeout)
        except asyncio.CancelledError:
            self._resolve(core.on_not_sent(batch, None, time.monotonic()))
            return
        except grpc.RpcError as e:
            self._resolve(core.on_call_error(batch, e, time.monotonic()))
        else:
            self._resolve(core.on_response(batch, response, time.monotonic()))
            if core.reconnected:
                core.reconnected = False
                if self._settings_wake is not None:
                    self._schedule.reconnected(time.monotonic())
                    self._settings_wake.set()
        self._wake.set()

    async def _follow_settings(self):
        """Fetches the pushed settings when the schedule says (see
        ferry._settings, the threaded twin) and applies them."""
        admins = [admin_pb2_grpc.AdminStub(c) for c in self._channels]
        request = admin_pb2.GetClientConfigRequest(client_id=self._client_id)
        schedule = self._schedule
        while not self._core.closing:
            self._settings_wake.clear()
            if not schedule.due(time.monotonic()):
                await _wait(self._settings_wake, schedule.wait(time.monotonic()))
                continue
            for admin in admins:
                try:
                    response = await admin.GetClientConfig(request, timeout=FETCH_TIMEOUT)
                except grpc.RpcError as e:
                    warning = schedule.failed(e.code(), e.details(), time.monotonic())
                    if warning:
                        log.warning("%s", warning)
                    if e.code() in NO_ANSWER:
                        continue
                    break
                config = schedule.answered(response, time.monotonic())
                self._core.apply_settings(config.settings)
                self._fetched = True
                self._wake.set()
                break


class Subscriber:
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
        self._core = SubscriberCore(
            self, endpoints, group, topics, ordering=ordering, ack_deadline=ack_deadline,
            max_outstanding_messages=max_outstanding_messages,
            max_outstanding_bytes=max_outstanding_bytes, start=start, filter=filter,
            max_delivery_attempts=max_delivery_attempts, dead_letter_topic=dead_letter_topic,
            client_id=client_id, ack_batch=ack_batch, max_extension=max_extension,
            reconnect_backoff=reconnect_backoff)
        self._on_error = on_error
        self._on_receipt_failure = on_receipt_failure
        self._channel_args = (credentials, channel_options)
        self._closed = False
        self._tasks = []
        self._ready = None
        self._maint_wake = None
        self._stop = None

    def _start(self):
        if self._tasks or self._core.closing:
            return
        self._channels = _channels(self._core.targets, *self._channel_args)
        self._stubs = [subscriber_pb2_grpc.SubscriberStub(c) for c in self._channels]
        self._ready = asyncio.Event()
        self._maint_wake = asyncio.Event()
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._stream_loop(i))
                       for i in range(len(self._core.targets))]
        self._tasks.append(loop.create_task(self._maintain()))

    async def receive(self, timeout: Optional[float] = None) -> Optional[Message]:
        """The next message within ``timeout`` seconds (None: wait); None on
        timeout or after close; raises the fatal FerryError after a fatal
        failure."""
        message = next(self._core.hand, None)  # a message of the response being handed out
        if message is None:
            message = await self._wait_for(self._core.next_message, timeout)
        return message

    async def receive_batch(self, timeout: Optional[float] = None,
                            max_messages: Optional[int] = None) -> Optional[MessageBatch]:
        """The messages of the oldest response not handed out yet, as one
        batch (see :meth:`ferry.Subscriber.receive_batch`); None on timeout
        or after close."""
        return await self._wait_for(lambda: self._core.next_batch(max_messages), timeout)

    async def _wait_for(self, take, timeout):
        """``take()`` until it returns something, the subscriber closes or
        ``timeout`` passes (None)."""
        self._start()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            taken = take()
            if taken is not None or self._core.closing:
                return taken
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            self._ready.clear()
            await _wait(self._ready, remaining)

    def __aiter__(self):
        return self

    async def __anext__(self) -> Message:
        message = await self.receive()
        if message is None:
            raise StopAsyncIteration
        return message

    @property
    def failure(self):
        return self._core.failure

    def stats(self) -> Stats:
        return self._core.snapshot()

    async def close(self) -> None:
        """Nacks messages not handed out, sends pending acks and nacks,
        half-closes the streams and waits for the nodes to end them
        (cancelling after 5 s). Idempotent."""
        if self._closed:
            return
        core = self._core
        leftovers = core.begin_close()
        if not self._tasks:
            self._closed = True
            return
        for message in leftovers:
            self._settle(message, "nack", 0.0)
        core.end_close()
        self._closed = True
        self._ready.set()
        streams = self._tasks[:-1]
        _, pending = await asyncio.wait(streams, timeout=5.0)
        if pending:
            for stream in core.streams:
                if stream is not None and stream.call is not None:
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
        if self._core.settle(message, kind, seconds, time.monotonic()):
            self._maint_wake.set()

    def _settle_batch(self, batch, kind, seconds):
        if self._core.settle_batch(batch, kind, seconds, time.monotonic()):
            self._maint_wake.set()

    def _acks_pending(self, stream):
        if self._core.acks_pending(stream, time.monotonic()):
            self._maint_wake.set()

    async def _maintain(self):
        while not self._stop.is_set():
            self._maint_wake.clear()
            wake = self._core.maintain(time.monotonic())
            await _wait(self._maint_wake, max(0.0, wake - time.monotonic()))

    # -- streams ----------------------------------------------------------

    async def _stream_loop(self, index):
        core = self._core
        endpoint = core.targets[index]
        while True:
            requests = asyncio.Queue()
            stream = core.open_stream(index, requests.put_nowait)
            if stream is None:
                return
            error = None
            try:
                call = self._stubs[index].Subscribe(_requests(requests))
                stream.call = call
                async for response in call:
                    delivered, receipt_errors = core.on_response(stream, response,
                                                                 time.monotonic())
                    if delivered:
                        self._ready.set()
                    for receipt_error in receipt_errors:
                        _common.report_receipt_failure(self._on_receipt_failure, receipt_error)
            except grpc.RpcError as e:
                error = error_from_rpc_error(e, endpoint)
            except asyncio.CancelledError:
                core.on_stream_end(stream, None)
                raise
            except Exception as e:  # noqa: BLE001
                error = Unavailable("stream failed: %r" % (e,), endpoint=endpoint)
            report, delay = core.on_stream_end(stream, error)
            self._ready.set()
            if report is not None:
                _common.report_stream_failure(self._on_error, report)
                if report.fatal:
                    core.fail(report.error)
                    self._ready.set()
            if delay is None:
                return
            await _wait(self._stop, delay)
            if self._stop.is_set():
                return


async def _requests(queue: asyncio.Queue):
    """A stream's requests until ``None`` (half-close)."""
    while True:
        item = await queue.get()
        if item is None:
            return
        yield item
