"""ferry.Subscriber: at-least-once consumption of a consumer group (threads).

A thin shell: the state machine is :class:`ferry._subscriber_core.SubscriberCore`;
this file adds a lock, one thread per stream, a maintenance thread and the
handler pool of the callback API."""
import logging
import queue
import threading
import time
from typing import Callable, Optional

import grpc

from ferry import _common, _types
from ferry._message import LOCK_FREE, Message, MessageBatch, Stats, SubscriberError
from ferry._subscriber_core import SubscriberCore
from ferry.errors import Unavailable, error_from_rpc_error
from ferry.v1 import subscriber_pb2_grpc

log = logging.getLogger("ferry")

#: Most messages one handler thread takes from the dispatcher at a time.
MAX_HANDLER_CHUNK = 32


def _others(threads):
    """The threads but the caller's: close() may run on a stream thread
    (from on_error) or a handler thread, which ends once close returns."""
    me = threading.current_thread()
    return [thread for thread in threads if thread is not me]


def call_each(messages, callback, auto_ack) -> None:
    """The callback on each message: one that returns without settling its
    message acks it (with auto_ack), one that raises nacks it."""
    for message in messages:
        try:
            callback(message)
        except Exception:  # noqa: BLE001 - a failing handler nacks
            log.exception("ferry: message handler raised; nacking %r", message)
            message.nack()
            continue
        if auto_ack:
            message.ack()  # nothing when the handler settled it


class Subscriber:
    """Consumes a consumer group's messages from Ferry nodes, at least once.

    Iterator API::

        with ferry.Subscriber(["127.0.0.1:7400"], "billing", ["orders"],
                              start="earliest") as subscriber:
            for message in subscriber:
                process(message.value)
                message.ack()

    A response at a time (one call hands out its messages, one acks them)::

        while (batch := subscriber.receive_batch(timeout=5)) is not None:
            process(batch.values)
            batch.ack()

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

    #: True on the native path (ferry._native over the C++ SDK).
    native = False

    def __new__(cls, *args, **kwargs):
        if cls is Subscriber:
            from ferry import _native_subscriber
            if _native_subscriber.serves(kwargs):
                cls = _native_subscriber.NativeSubscriber
        return object.__new__(cls)

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
        if handler_threads < 1:
            raise ValueError("handler_threads must be >= 1")
        self._core = SubscriberCore(
            self, endpoints, group, topics, ordering=ordering, ack_deadline=ack_deadline,
            max_outstanding_messages=max_outstanding_messages,
            max_outstanding_bytes=max_outstanding_bytes, start=start, filter=filter,
            max_delivery_attempts=max_delivery_attempts, dead_letter_topic=dead_letter_topic,
            client_id=client_id, ack_batch=ack_batch, max_extension=max_extension,
            reconnect_backoff=reconnect_backoff)
        self._close_timeout = _types.seconds_of(close_timeout, "close_timeout")
        self._callback = callback
        self._auto_ack = auto_ack
        self._on_error = on_error
        self._on_receipt_failure = on_receipt_failure
        targets = self._core.targets
        self._channels = _common.sync_channels(targets, credentials, channel_options)
        self._stubs = [subscriber_pb2_grpc.SubscriberStub(c) for c in self._channels]

        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)   # delivery queue changes
        self._maint = threading.Condition(self._lock)   # pending settlements
        self._closed = threading.Event()
        self._close_lock = threading.Lock()

        self._threads = [threading.Thread(target=self._stream_loop, args=(i,),
                                          name="ferry-sub-%d" % i, daemon=True)
                         for i in range(len(targets))]
        self._threads.append(threading.Thread(target=self._maintain, name="ferry-sub-maint",
                                              daemon=True))
        # Callback API: handler threads take (function, chunk of calls) from
        # a plain queue (a ThreadPoolExecutor built a Future and a Condition
        # per message); None stops one of them.
        self._pool = None
        self._handlers = []
        self._handlers_stopping = False
        if callback is not None:
            self._pool = queue.SimpleQueue()
            self._handlers = [threading.Thread(target=self._handler_loop,
                                               name="ferry-handler-%d" % i, daemon=True)
                              for i in range(handler_threads)]
            self._threads.append(threading.Thread(target=self._dispatch,
                                                  name="ferry-sub-dispatch", daemon=True))
        for t in self._threads + self._handlers:
            t.start()

    # -- public API -------------------------------------------------------

    def receive(self, timeout: Optional[float] = None) -> Optional[Message]:
        """Iterator API: the next message, waiting up to ``timeout`` seconds
        (None: until one arrives). Returns None on timeout and after close;
        raises the fatal :class:`ferry.FerryError` after a fatal failure."""
        # The common case, a message of the response being handed out: no
        # lock (see SubscriberCore.next_message and LOCK_FREE).
        if LOCK_FREE:
            message = next(self._core.hand, None)
        else:
            with self._lock:
                message = next(self._core.hand, None)
        if message is None:
            message = self._wait_for(self._core.next_message, timeout)
        return message

    def receive_batch(self, timeout: Optional[float] = None,
                      max_messages: Optional[int] = None) -> Optional[MessageBatch]:
        """Iterator API, a response at a time: the messages of the oldest
        response not handed out yet (at most ``max_messages``) as one
        :class:`ferry.MessageBatch`, waiting up to ``timeout`` seconds for
        one. ``batch.ack()`` settles them all in one call. Returns None on
        timeout and after close; raises the fatal error like
        :meth:`receive`. Mixes with :meth:`receive` (each message is handed
        out once)."""
        return self._wait_for(lambda: self._core.next_batch(max_messages), timeout)

    def _wait_for(self, take, timeout):
        """``take()`` under the lock until it returns something, the
        subscriber closes or ``timeout`` passes (None)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                taken = take()
                if taken is not None or self._core.closing:
                    return taken
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
        return self._core.failure

    def stats(self) -> Stats:
        """A snapshot of the counters."""
        with self._lock:
            return self._core.snapshot()

    def close(self, timeout: Optional[float] = None) -> bool:
        """Stops delivering (messages received but not handed out are
        nacked), waits up to ``timeout`` (default ``close_timeout``) for
        running callbacks, sends every pending ack and nack, half-closes the
        streams and waits for the nodes to end them (cancelling after 5 s).
        Returns False if callbacks were still running at the timeout.
        Idempotent. From a callback it does not wait for callbacks (the
        caller is one) and returns False. From a callback or ``on_error``
        while another thread's close is under way it returns False at once
        (that close waits for the caller's thread)."""
        timeout = self._close_timeout if timeout is None else timeout
        me = threading.current_thread()
        own_thread = me in self._threads or me in self._handlers
        if not self._close_lock.acquire(blocking=not own_thread):
            return False
        try:
            return self._close(timeout, me in self._handlers)
        finally:
            self._close_lock.release()

    def _close(self, timeout: float, from_handler: bool) -> bool:
        """close() under the close lock."""
        core = self._core
        if self._closed.is_set():
            return True
        deadline = time.monotonic() + timeout
        with self._lock:
            leftovers = core.begin_close()
            self._ready.notify_all()
        for message in leftovers:
            self._settle(message, "nack", 0.0)
        handlers_done = True
        if self._pool is not None and from_handler:
            handlers_done = False
        elif self._pool is not None:
            with self._lock:
                while core.running > 0:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        handlers_done = False
                        break
                    self._ready.wait(remaining)
        with self._lock:
            core.end_close()
            self._maint.notify_all()
        self._closed.set()
        end = time.monotonic() + 5.0
        for thread in _others(self._threads[:len(core.targets)]):
            thread.join(max(0.0, end - time.monotonic()))
        with self._lock:
            calls = [s.call for s in core.streams if s is not None and s.call is not None]
        for call in calls:
            call.cancel()
        for thread in _others(self._threads):
            thread.join(5.0)
        if self._pool is not None:
            self._stop_handlers()
            if handlers_done:
                for thread in _others(self._handlers):
                    thread.join()
        for channel in self._channels:
            channel.close()
        return handlers_done

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- settlements ------------------------------------------------------

    def _settle(self, message, kind, seconds):
        with self._lock:
            if self._core.settle(message, kind, seconds, time.monotonic()):
                self._maint.notify()

    def _acks_pending(self, stream):
        with self._lock:
            if self._core.acks_pending(stream, time.monotonic()):
                self._maint.notify()

    def _settle_batch(self, batch, kind, seconds):
        with self._lock:
            if self._core.settle_batch(batch, kind, seconds, time.monotonic()):
                self._maint.notify()

    def _maintain(self):
        """Timed ack flushes and automatic deadline extensions."""
        with self._lock:
            while not self._closed.is_set():
                now = time.monotonic()
                wake = self._core.maintain(now)
                self._maint.wait(max(0.0, wake - now))

    # -- streams ----------------------------------------------------------

    def _stream_loop(self, index):
        core = self._core
        endpoint = core.targets[index]
        while True:
            requests = queue.SimpleQueue()
            with self._lock:
                stream = core.open_stream(index, requests.put)
            if stream is None:
                return
            error = None
            try:
                call = self._stubs[index].Subscribe(iter(requests.get, None))
                stream.call = call
                if core.closing:
                    call.cancel()
                for response in call:
                    now = time.monotonic()
                    with self._lock:
                        delivered, receipt_errors = core.on_response(stream, response, now)
                        if delivered:
                            self._ready.notify_all()
                    for receipt_error in receipt_errors:
                        _common.report_receipt_failure(self._on_receipt_failure, receipt_error)
            except grpc.RpcError as e:
                error = error_from_rpc_error(e, endpoint)
            except Exception as e:  # noqa: BLE001 - keep the subscriber alive
                error = Unavailable("stream failed: %r" % (e,), endpoint=endpoint)
            with self._lock:
                report, delay = core.on_stream_end(stream, error)
                self._ready.notify_all()
            if report is not None:
                _common.report_stream_failure(self._on_error, report)
                if report.fatal:
                    with self._lock:
                        core.fail(report.error)
                        self._ready.notify_all()
            if delay is None or self._closed.wait(delay):
                return

    # -- callback API -----------------------------------------------------

    def _dispatch(self):
        """Hands out a response at a time: its messages are admitted under
        one lock and go to the handlers in chunks, an even share of the
        response per handler thread (at most MAX_HANDLER_CHUNK), so a
        thread hand-off serves many messages when many are waiting and one
        when few are. Without ordering a chunk is a slice of the response
        (a MessageBatch): the handler builds its messages, so the
        dispatcher does nothing per message. With ordering the keyless
        messages go in chunks of their own, behind no chained call."""
        core = self._core
        unordered = core.ordering is _types.Ordering.NONE
        while True:
            try:
                batch = self.receive_batch()
            except Exception:  # fatal failure: stop dispatching
                return
            if batch is None:
                return
            if not unordered:
                keyed = core.chain_keys(list(batch))
            with self._lock:
                closing = core.closing
                if not closing:
                    if unordered:
                        core.handlers_admitted(len(batch))
                    else:
                        ready, loose = core.admit_handlers(keyed)
            if closing:
                batch.nack()  # as close() did with the messages still queued
                return
            if unordered:
                self._queue_chunks(self._call_all, len(batch), batch._part)
            else:
                self._queue_chunks(self._call_all, len(loose), lambda i, j: loose[i:j])
                self._queue_chunks(self._call_chained, len(ready), lambda i, j: ready[i:j])

    def _queue_chunks(self, handle, count, part):
        """Queues ``handle`` on even chunks of ``count`` items; ``part(i, j)``
        is items i to j."""
        chunk = min(MAX_HANDLER_CHUNK, max(1, count // len(self._handlers)))
        for start in range(0, count, chunk):
            self._pool.put((handle, part(start, start + chunk)))

    def _handler_loop(self):
        while True:
            work = self._pool.get()
            if work is None:
                return
            work[0](work[1])

    def _stop_handlers(self):
        """One None per handler thread, queued after every chunk queued so
        far; from then on a chain's next message is run by the thread whose
        call released it (_call_chained), not queued behind the Nones."""
        with self._lock:
            self._handlers_stopping = True
            for _ in self._handlers:
                self._pool.put(None)

    def _call_all(self, messages):
        """Runs calls outside any chain. A call that returns without settling
        its message auto-acks it as Message.ack does, without a lock (the
        acks of a stream are recorded in one step per batch or per ack
        delay); the calls end under one lock."""
        call_each(messages, self._callback, self._auto_ack)
        core = self._core
        with self._lock:
            core.handlers_done(len(messages))
            if core.closing:
                self._ready.notify_all()

    def _call_chained(self, keyed):
        """Runs the calls of (message, chain key) pairs, as _call_all, each
        ending its chain's turn as soon as it returns: the message waiting
        next in its chain, if any, is queued for any idle handler thread,
        so a key never waits behind another key's call (only close() waits
        for handler calls to end: only it is woken)."""
        callback, auto_ack, core, lock = self._callback, self._auto_ack, self._core, self._lock
        keyed = list(keyed)
        for message, key in keyed:  # grows by the chains' next messages once stopping
            call_each((message,), callback, auto_ack)
            with lock:
                following = core.handler_done(key)
                if following is not None:
                    if self._handlers_stopping:
                        keyed.append((following, key))
                    else:
                        self._pool.put((self._call_chained, ((following, key),)))
                if core.closing:
                    self._ready.notify_all()
