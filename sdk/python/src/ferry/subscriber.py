"""ferry.Subscriber: at-least-once consumption of a consumer group (threads)."""
import collections
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import grpc

from ferry import _common, _types
from ferry._subscribe_core import (Message, SettlementBook, Settlements, Stats, SubscriberError,
                                   default_client_id, open_request)
from ferry.errors import Unavailable, error_from_rpc_error, error_from_status
from ferry.v1 import subscriber_pb2_grpc

log = logging.getLogger("ferry")
_END = object()


class _Stream:
    """One connection attempt to one endpoint. Receipts are valid on it only."""

    def __init__(self, index):
        self.index = index
        self.requests = queue.SimpleQueue()
        self.call = None
        self.alive = True
        self.pending = Settlements()
        self.unsettled = {}  # receipt -> Message

    def request_iterator(self):
        while True:
            item = self.requests.get()
            if item is _END:
                return
            yield item


class Subscriber(SettlementBook):
    """Consumes a consumer group's messages from Ferry nodes, at least once.

    Iterator API::

        with ferry.Subscriber(["127.0.0.1:7400"], "billing", ["orders"],
                              start="earliest") as subscriber:
            for message in subscriber:
                process(message.value)
                message.ack()

    Callback API (handlers run on ``handler_threads`` threads; in key mode the
    calls of one key are serial, in partition mode those of one partition)::

        subscriber = ferry.Subscriber(endpoints, "billing", ["orders"],
                                      ordering="key", callback=handle)
        ...
        subscriber.close()

    With ``auto_ack=True`` (the default) a callback that returns without
    settling acks its message, and one that raises nacks it.

    The subscriber opens one stream to every endpoint (each node serves some
    partitions of the group) and reopens a broken stream with exponential
    backoff (``reconnect_backoff``). INVALID_ARGUMENT, NOT_FOUND and
    UNIMPLEMENTED are fatal: the subscriber stops and the iterator (or
    :meth:`receive`) raises the typed error; :attr:`failure` holds it.

    Acks, nacks and extensions are batched per stream (``ack_batch``: count,
    delay in seconds) and flushed by :meth:`close`. While a message is not
    settled its deadline is extended automatically when about 2/3 of
    ``ack_deadline`` has passed, for at most ``max_extension`` seconds.

    Args:
        endpoints: Ferry nodes, ``"host:port"``.
        group: consumer group.
        topics: one or more topics.
        ordering: ``ferry.Ordering`` or ``"none"`` (default), ``"key"``, ``"partition"``.
        ack_deadline: seconds (or timedelta) a message may stay unsettled
            before redelivery, unless extended (1 to 600; default 30).
        max_outstanding_messages / max_outstanding_bytes: per stream flow
            control (default 1000 and 10 MiB).
        start: ``"latest"`` (default), ``"earliest"`` or a datetime: where a
            group without committed offsets starts.
        callback: ``callable(Message)``; None for the iterator API.
        handler_threads: threads running the callback (default 4).
        auto_ack: see above (callback API only).
        filter, max_delivery_attempts, dead_letter_topic, client_id: see
            ``SubscriptionOpen`` in proto/ferry/v1/subscriber.proto.
        on_error: ``callable(SubscriberError)``, called on a stream thread
            for every stream failure.
        on_receipt_failure: ``callable(FerryError)`` for acks/nacks the node
            could not apply (e.g. FAILED_PRECONDITION "receipt expired").
        ack_batch: ``(max_receipts, max_delay_seconds)``, default (500, 0.005).
        max_extension: seconds after delivery when automatic extension stops
            (default 3600).
        reconnect_backoff: ``(initial, max)`` seconds (default 0.1, 5).
        close_timeout: how long ``close`` waits for running handlers (30 s).
    """

    def __init__(self, endpoints, group: str, topics, *, ordering="none",
                 ack_deadline=30.0, max_outstanding_messages: int = 1000,
                 max_outstanding_bytes: int = 10 << 20, start="latest",
                 callback: Optional[Callable[[Message], None]] = None,
                 handler_threads: int = 4, auto_ack: bool = True,
                 filter: str = "", max_delivery_attempts: int = 0,
                 dead_letter_topic: str = "", client_id: Optional[str] = None,
                 on_error: Optional[Callable[[SubscriberError], None]] = None,
                 on_receipt_failure=None, ack_batch=(500, 0.005),
                 max_extension=3600.0, reconnect_backoff=(0.1, 5.0),
                 close_timeout=30.0, credentials=None, channel_options=None):
        self._targets = _common.check_endpoints(endpoints)
        if not isinstance(group, str) or not group:
            raise ValueError("group must be a non-empty string")
        if isinstance(topics, str):
            topics = [topics]
        topics = list(topics or [])
        if not topics:
            raise ValueError("topics must name at least one topic")
        self._ordering = _types.ordering_of(ordering)
        self._ack_deadline = _types.seconds_of(ack_deadline, "ack_deadline")
        if max_outstanding_messages < 1 or max_outstanding_bytes < 1:
            raise ValueError("max_outstanding_messages and max_outstanding_bytes must be >= 1")
        if handler_threads < 1:
            raise ValueError("handler_threads must be >= 1")
        self._ack_batch_count = int(ack_batch[0])
        self._ack_batch_delay = _types.seconds_of(ack_batch[1], "ack_batch delay")
        self._max_extension = _types.seconds_of(max_extension, "max_extension")
        self._backoff_initial, self._backoff_max = (
            _types.seconds_of(v, "reconnect_backoff") for v in reconnect_backoff)
        self._close_timeout = _types.seconds_of(close_timeout, "close_timeout")
        self._open = open_request(group, topics, self._ordering, self._ack_deadline,
                                  max_outstanding_messages, max_outstanding_bytes, start,
                                  filter, max_delivery_attempts, dead_letter_topic,
                                  client_id or default_client_id())
        self._callback = callback
        self._auto_ack = auto_ack
        self._on_error = on_error
        self._on_receipt_failure = on_receipt_failure

        options = _common.channel_options(channel_options)
        if credentials is None:
            self._channels = [grpc.insecure_channel(t, options=options) for t in self._targets]
        else:
            self._channels = [grpc.secure_channel(t, credentials, options=options)
                              for t in self._targets]
        self._stubs = [subscriber_pb2_grpc.SubscriberStub(c) for c in self._channels]

        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)   # delivery queue changes
        self._maint = threading.Condition(self._lock)   # pending settlements
        self._delivery = collections.deque()
        self._streams = [None] * len(self._targets)
        self._stats = Stats()
        self._failure = None
        self._closing = False
        self._closed = threading.Event()
        self._close_lock = threading.Lock()
        self._running = 0      # callbacks running or queued
        self._chains = {}      # ordering key -> deque of waiting messages (callback API)

        self._threads = [threading.Thread(target=self._stream_loop, args=(i,),
                                          name="ferry-sub-%d" % i, daemon=True)
                         for i in range(len(self._targets))]
        self._threads.append(threading.Thread(target=self._maintain, name="ferry-sub-maint",
                                              daemon=True))
        self._pool = None
        if callback is not None:
            self._pool = ThreadPoolExecutor(handler_threads, thread_name_prefix="ferry-handler")
            self._threads.append(threading.Thread(target=self._dispatch,
                                                  name="ferry-sub-dispatch", daemon=True))
        for t in self._threads:
            t.start()

    # -- public API -------------------------------------------------------

    def receive(self, timeout: Optional[float] = None) -> Optional[Message]:
        """Iterator API: the next message, waiting up to ``timeout`` seconds
        (None: until one arrives). Returns None on timeout and after close;
        raises the fatal :class:`ferry.FerryError` after a fatal failure."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
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
                self._ready.wait(remaining)

    def __iter__(self):
        return self

    def __next__(self) -> Message:
        message = self.receive()
        if message is None:
            raise StopIteration
        return message

    @property
    def failure(self):
        """The fatal FerryError that stopped the subscriber, if any."""
        return self._failure

    def stats(self) -> Stats:
        """A snapshot of the counters."""
        with self._lock:
            stats = self._stats.copy()
            stats.open_streams = sum(1 for s in self._streams if s is not None and s.alive
                                     and s.call is not None)
            return stats

    def close(self, timeout: Optional[float] = None) -> bool:
        """Stops delivering (messages received but not handed out are
        nacked), waits up to ``timeout`` (default ``close_timeout``) for
        running callbacks, sends every pending ack and nack, half-closes the
        streams and waits for the nodes to end them (cancelling after 5 s).
        Returns False if callbacks were still running at the timeout.
        Idempotent."""
        timeout = self._close_timeout if timeout is None else timeout
        with self._close_lock:
            if self._closed.is_set():
                return True
            deadline = time.monotonic() + timeout
            with self._lock:
                self._closing = True
                leftovers = list(self._delivery)
                self._delivery.clear()
                for chain in self._chains.values():
                    leftovers.extend(chain)
                    self._running -= len(chain)
                    chain.clear()
                self._ready.notify_all()
            for message in leftovers:
                self._settle(message, "nack", 0.0, closing=True)
            handlers_done = True
            if self._pool is not None:
                with self._lock:
                    while self._running > 0:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            handlers_done = False
                            break
                        self._ready.wait(remaining)
            with self._lock:
                streams = [s for s in self._streams if s is not None]
                for stream in streams:
                    self._flush(stream)
                    stream.requests.put(_END)
                self._maint.notify_all()
            self._closed.set()
            end = time.monotonic() + 5.0
            for thread in self._threads[:len(self._targets)]:
                thread.join(max(0.0, end - time.monotonic()))
            with self._lock:
                streams = [s for s in self._streams if s is not None]
            for stream in streams:
                if stream.call is not None:
                    stream.call.cancel()
            for thread in self._threads:
                thread.join(5.0)
            if self._pool is not None:
                self._pool.shutdown(wait=handlers_done)
            for channel in self._channels:
                channel.close()
            return handlers_done

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- settlements ------------------------------------------------------

    def _settle(self, message, kind, seconds, closing=False):
        with self._lock:
            self._record(message, kind, seconds,
                         accepting=closing or not self._closed.is_set())

    def _put(self, stream, request):
        stream.requests.put(request)

    def _wake_maintenance(self):
        self._maint.notify()

    def _maintain(self):
        """Timed ack flushes and automatic deadline extensions."""
        next_scan = time.monotonic() + self._maintenance_scan_every()
        with self._lock:
            while not self._closed.is_set():
                now = time.monotonic()
                wake, next_scan = self._maintenance_step(now, next_scan)
                self._maint.wait(max(0.0, wake - now))

    # -- streams ----------------------------------------------------------

    def _stream_loop(self, index):
        backoff = self._backoff_initial
        endpoint = self._targets[index]
        while True:
            with self._lock:
                if self._closing:
                    return
                stream = _Stream(index)
                self._streams[index] = stream
                stream.requests.put(self._open)
            opened = False
            error = None
            try:
                call = self._stubs[index].Subscribe(stream.request_iterator())
                stream.call = call
                if self._closing:
                    call.cancel()
                for response in call:
                    kind = response.WhichOneof("response")
                    if kind == "messages":
                        self._receive(stream, response.messages.messages)
                    elif kind == "opened":
                        opened = True
                        backoff = self._backoff_initial
                        log.debug("ferry: stream to %s opened (node %s, stream %s)", endpoint,
                                  response.opened.node_id, response.opened.stream_id)
                    elif kind == "receipt_results":
                        self._receipt_results(response.receipt_results.results, endpoint)
            except grpc.RpcError as e:
                error = error_from_rpc_error(e, endpoint)
            except Exception as e:  # noqa: BLE001 - keep the subscriber alive
                error = Unavailable("stream failed: %r" % (e,), endpoint=endpoint)
            self._stream_ended(stream)
            if self._closing:
                return
            if error is None:
                error = Unavailable("stream ended by the node", endpoint=endpoint)
            fatal = error.code in _common.FATAL_STREAM_CODES
            if not fatal:
                with self._lock:
                    self._stats.reconnects += 1
            self._report(SubscriberError(error, endpoint, fatal))
            if fatal:
                self._fail(error)
                return
            if self._closed.wait(backoff):
                return
            backoff = min(backoff * 2, self._backoff_max)

    def _receive(self, stream, batch):
        now = time.monotonic()
        with self._lock:
            if self._closing:
                return  # not acked: the node redelivers once the stream ends
            self._stats.received += len(batch)
            for pb in batch:
                message = Message(pb, stream, self, now, self._ack_deadline)
                stream.unsettled[message._receipt] = message
                self._delivery.append(message)
            self._ready.notify_all()

    def _stream_ended(self, stream):
        with self._lock:
            stream.alive = False
            dropped = stream.pending.count
            stream.pending.take()
            self._stats.dropped_settlements += dropped
            for message in stream.unsettled.values():
                message._settled = True
            stream.unsettled.clear()
            if self._delivery:
                self._delivery = collections.deque(m for m in self._delivery
                                                   if m._stream is not stream)
        stream.requests.put(_END)

    def _receipt_results(self, results, endpoint):
        with self._lock:
            self._stats.receipt_failures += len(results)
        for result in results:
            error = error_from_status(result.status.code, result.status.message,
                                      retryable=result.status.retryable, endpoint=endpoint)
            log.debug("ferry: receipt not applied: %s", error)
            if self._on_receipt_failure is not None:
                try:
                    self._on_receipt_failure(error)
                except Exception:  # noqa: BLE001
                    log.exception("ferry: on_receipt_failure raised")

    def _report(self, error):
        if error.fatal:
            log.error("ferry: subscriber stopped: %s (%s)", error.error, error.endpoint)
        else:
            log.info("ferry: stream to %s failed: %s; reconnecting", error.endpoint, error.error)
        if self._on_error is not None:
            try:
                self._on_error(error)
            except Exception:  # noqa: BLE001
                log.exception("ferry: on_error raised")

    def _fail(self, error):
        with self._lock:
            if self._failure is None:
                self._failure = error
            self._closing = True
            self._ready.notify_all()
            streams = [s for s in self._streams if s is not None and s.alive]
            for stream in streams:
                self._flush(stream)
                stream.requests.put(_END)

    # -- callback API -----------------------------------------------------

    def _chain_key(self, message):
        if self._ordering is _types.Ordering.KEY and message.key is not None:
            return (message.topic, message.key)
        if self._ordering is _types.Ordering.PARTITION:
            return (message.topic, message.partition)
        return None

    def _dispatch(self):
        while True:
            try:
                message = self.receive()
            except Exception:  # fatal failure: stop dispatching
                return
            if message is None:
                return
            key = self._chain_key(message)
            with self._lock:
                if self._closing:
                    self._delivery.appendleft(message)
                    return
                self._running += 1
                if key is not None:
                    chain = self._chains.get(key)
                    if chain is not None:
                        chain.append(message)
                        continue
                    self._chains[key] = collections.deque()
            self._pool.submit(self._handle, message, key)

    def _handle(self, message, key):
        while True:
            try:
                self._callback(message)
            except Exception:  # noqa: BLE001 - a failing handler nacks
                log.exception("ferry: message handler raised; nacking %r", message)
                message.nack()
            else:
                if self._auto_ack and not message._settled:
                    message.ack()
            with self._lock:
                self._running -= 1
                following = None
                if key is not None:
                    chain = self._chains.get(key)
                    if chain:
                        following = chain.popleft()
                    else:
                        self._chains.pop(key, None)
                self._ready.notify_all()
            if following is None:
                return
            message = following
