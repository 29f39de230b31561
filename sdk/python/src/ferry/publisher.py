"""ferry.Publisher: batched, retrying, failing-over publishing (threads).

A thin shell: the state machine is :class:`ferry._publisher_core.PublisherCore`;
this file adds a lock, one sender thread and gRPC futures."""
import concurrent.futures
import threading
import time
from typing import Optional

import grpc

from ferry import _common, _futures, _outgoing, _types
from ferry._fallback import FallbackPublisher, PublisherStats
from ferry._publisher_core import CORE_OPTIONS, PublisherCore, acked, deliver
from ferry._settings import SettingsFollower
from ferry.v1 import publisher_pb2_grpc


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

    With ``fallback=True`` (off by default) the publisher keeps publishing
    when no node answers: it asks the nodes for its client configuration
    (``Admin.GetClientConfig``) at start, every refresh interval and when a
    node answers again, and once no node answered for ``fallback_after``
    seconds, a topic whose route allows it (``ferry routes put --fallback``)
    is published straight to its write cluster with confluent-kafka
    (``pip install 'ferry-client[fallback]'``): acks=all, idempotent, the
    Java client's partitioner, header ``ferry.id``, a key's order kept across
    the switch both ways. ``PublishResult.direct`` and :meth:`stats` tell the
    paths apart.

    Settings the operator pushes (``ferry client-settings set``, ferryd's
    ``client.*`` keys) replace the defaults of the options marked *pushable*
    below that the application did not pass, also while running: the
    publisher asks the nodes (``Admin.GetClientConfig``) at start, every
    refresh interval they name (30 s by default), a second after no node
    answered, and when it reconnects to a node (with fallback: when a node
    answers its probe again). An option passed here always wins; a node
    without GetClientConfig (older ferryd) leaves the defaults.
    ``pushed_settings=False`` opts out.

    Args:
        endpoints: Ferry nodes, ``"host:port"`` (any gRPC target).
        max_batch_messages: most messages in one batch (default 500;
            pushable).
        max_batch_bytes: most bytes in one batch (default 1 MiB; pushable).
        linger: seconds a message may wait for companions while an earlier
            batch of its topic is in flight (default 0.005; pushable); with
            none in flight it is sent at once.
        max_outstanding_bytes: bytes of messages whose futures are not done
            (default 64 MiB); at the cap ``publish`` blocks
            (``block_when_full=True``) or raises ``ResourceExhausted``.
        request_timeout: deadline of each batch call, seconds (default 30;
            pushable).
        delivery_timeout: no attempt starts later than this after publish
            (default 120 s; pushable). With fallback, a message sent to a
            node just before the tier died waits up to this long before it
            goes directly: keep it close to ``fallback_after``.
        retry_backoff: ``(initial, max)`` seconds (default 0.05, 2).
        close_timeout: how long ``close`` flushes (default 30 s).
        max_inflight_batches: batch calls in flight at once (default 32).
        credentials: ``grpc.ChannelCredentials`` for TLS; plaintext if None.
        channel_options: extra gRPC channel options.
        fallback: publish straight to the cluster when no node answers.
        fallback_after: seconds without any node answering before that
            (default 10).
        client_id: names this client in the nodes' logs (fallback reports).
        pushed_settings: follow the settings the nodes push (default True).
    """

    #: True on the native path (ferry._native over the C++ SDK).
    native = False

    def __new__(cls, *args, **kwargs):
        if cls is Publisher:
            from ferry import _native_publisher
            if _native_publisher.serves(kwargs):
                cls = _native_publisher.NativePublisher
        return object.__new__(cls)

    def __init__(self, endpoints, *, max_batch_messages: Optional[int] = None,
                 max_batch_bytes: Optional[int] = None, linger: Optional[float] = None,
                 max_outstanding_bytes: int = 64 << 20, block_when_full: bool = True,
                 request_timeout: Optional[float] = None,
                 delivery_timeout: Optional[float] = None,
                 retry_backoff=(0.05, 2.0), close_timeout: float = 30.0,
                 max_inflight_batches: int = 32,
                 credentials: Optional[grpc.ChannelCredentials] = None,
                 channel_options=None, fallback: bool = False,
                 fallback_after: float = 10.0, client_id: Optional[str] = None,
                 pushed_settings: bool = True):
        arguments = locals()
        options = {name: arguments[name] for name in CORE_OPTIONS}
        self._core = PublisherCore(endpoints, **options)
        self._fallback = None
        if fallback:
            # This object is the facade; a plain Publisher carries the Ferry path.
            # Its probe fetches the settings: the node path does not follow itself.
            self._fallback = FallbackPublisher(
                lambda: _pure_publisher(endpoints, block_when_full=block_when_full,
                                        credentials=credentials,
                                        channel_options=channel_options,
                                        pushed_settings=False, **options),
                self._core.targets, _types.seconds_of(fallback_after, "fallback_after"),
                client_id, self._core.explicit, credentials, channel_options,
                pushed_settings)
            return
        self._block_when_full = block_when_full
        self._channels = _common.sync_channels(self._core.targets, credentials, channel_options)
        self._stubs = [publisher_pb2_grpc.PublisherStub(c) for c in self._channels]
        self._cond = threading.Condition()
        self._completions = []          # (Batch, grpc future, None) or (Batch, None, exception)
        self._closed = False
        self._acked = 0                 # messages the broker acknowledged
        self._batches = 0               # batch calls sent
        self._follower = (SettingsFollower(self._channels, client_id, self.apply_settings)
                          if pushed_settings else None)
        self._thread = threading.Thread(target=self._run, name="ferry-publisher", daemon=True)
        self._thread.start()
        # Its futures refuse a wait on this thread (see _futures).
        self._future_type = _futures.for_thread(self._thread.ident)

    # -- public API -------------------------------------------------------

    def publish(self, topic: str, value, key=None, headers=None, ordering_key=None, *,
                id: Optional[str] = None, timestamp=None,
                callback=None) -> Optional[concurrent.futures.Future]:
        """Queues one message; returns a Future of :class:`PublishResult`,
        or with ``callback`` None and no future is made.

        Args:
            topic: the topic; an empty or invalid name fails the future with
                ``InvalidArgument``, an unknown topic with ``NotFound``.
            value: bytes (str is UTF-8 encoded).
            key: partitioning key (bytes or str; None: no key).
            headers: dict or iterable of ``(str, bytes|str)`` pairs.
            ordering_key: partition and order by this instead of ``key``.
            id: message id stored as header ``ferry.id`` (default: random).
            timestamp: record time (``datetime``); default the node's clock.
            callback: ``callable(outcome)`` called once with the
                PublishResult or FerryError instead of a future (cheaper);
                it runs on the publisher's thread: it must return quickly
                and not wait for this publisher (``flush``, or ``publish``
                while full). What it raises is logged.

        Raises (at once, not through the future): TypeError for values of the
        wrong type, ``ResourceExhausted`` when full and
        ``block_when_full=False``, ``Unavailable`` after ``close``.
        """
        message, size, okey = self._core.prepare(topic, value, key, headers, ordering_key, id,
                                                 timestamp)
        if self._fallback is not None:
            future = self._fallback.publish(topic, message, size, okey)
            if callback is None:
                return future
            handle = _outgoing.Callback(callback)
            future.add_done_callback(lambda f: handle.set_result(f.exception() or f.result()))
            return None
        if callback is None:
            future = self._future_type()  # running from the start
            self._enqueue(topic, message, size, okey, future)
            return future
        self._enqueue(topic, message, size, okey, _outgoing.Callback(callback))
        return None

    def publish_many(self, topic: str, messages) -> concurrent.futures.Future:
        """Queues many messages of one topic; returns one Future of a list
        with each message's outcome at its position: a
        :class:`PublishResult` or the :class:`ferry.FerryError` it failed
        with (the future itself does not fail).

        Each item of ``messages`` is a value (bytes or str), or a tuple of
        :meth:`publish`'s positional arguments after the topic: ``(value[,
        key[, headers[, ordering_key]]])``. The messages get fresh ids and
        are sent, retried and ordered per key exactly as if published one by
        one in this order; without the per-message future and with their ids
        drawn at once, it costs a fraction of a ``publish`` per message.

        Raises (at once): TypeError for a bad item, ``InvalidArgument`` when
        the call is larger than ``max_outstanding_bytes`` (split it),
        ``ResourceExhausted`` when it does not fit now and
        ``block_when_full=False``, ``Unavailable`` after ``close``.
        """
        if self._fallback is not None:
            future = concurrent.futures.Future()
            future.set_running_or_notify_cancel()
            return self._fallback.publish_many(self._core, topic, messages, future)
        future = self._future_type()  # running from the start
        core = self._core
        chunks, count, size = core.prepare_many(topic, messages)
        handle = _outgoing.ManyResults(future, count)
        if not chunks:
            future.set_result([])
            return future
        with self._cond:
            self._admit(size)
            if core.enqueue_many(topic, chunks, handle, time.monotonic()):
                self._cond.notify_all()
        return future

    def publish_prepared_callback(self, topic, record, size, okey, fn) -> None:
        """Queues a message PublisherCore.prepare built; ``fn(outcome)`` on
        the sending thread (the fallback's Ferry path: no future to watch)."""
        self._enqueue(topic, record, size, okey, _outgoing.Callback(fn))

    def _enqueue(self, topic, record, size, okey, handle):
        with self._cond:
            self._admit(size)
            if self._core.enqueue(record, size, okey, topic, handle, time.monotonic()):
                self._cond.notify_all()

    def _admit(self, size):
        """Waits (under the lock) until ``size`` bytes fit, or raises."""
        core = self._core
        while not core.admit(size):
            if not self._block_when_full:
                raise core.full_error()
            self._cond.wait()

    def apply_settings(self, pushed) -> None:
        """Settings an operator pushed (None: none) replace the defaults of
        those the application did not set (see PublisherCore.apply_settings)."""
        with self._cond:
            self._core.apply_settings(pushed)
            self._cond.notify_all()

    def stats(self) -> PublisherStats:
        """Counters of both paths (direct ones only with ``fallback=True``)
        and the pushable settings in effect."""
        if self._fallback is not None:
            return self._fallback.stats()
        fetched = self._follower is not None and self._follower.fetched
        with self._cond:
            return PublisherStats(self._acked, 0, False, fetched, self._batches,
                                  *self._core.settings())

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Sends queued messages at once and waits until every message
        published before this call has its final result. Returns False when
        ``timeout`` (seconds) passed first; nothing is cancelled."""
        if self._fallback is not None:
            return self._fallback.flush(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        core = self._core
        with self._cond:
            watermark = core.last_seq
            core.flushers += 1
            self._cond.notify_all()
            try:
                while not core.flushed(watermark):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                core.flushers -= 1

    def close(self, timeout: Optional[float] = None) -> bool:
        """Flushes (up to ``timeout``, default ``close_timeout``), then fails
        every remaining future with ``Unavailable("publisher closed")`` (a
        message already in flight may still have been stored) and closes the
        channels. Returns whether the flush completed. Idempotent."""
        if self._fallback is not None:
            return self._fallback.close(self._core.close_timeout if timeout is None else timeout)
        with self._cond:
            if self._closed:
                return True
        flushed = self.flush(self._core.close_timeout if timeout is None else timeout)
        with self._cond:
            if self._closed:
                return flushed
            self._closed = True
            leftovers, inflight = self._core.close()
            self._cond.notify_all()
        for batch in inflight:
            if batch.call is not None:
                batch.call.cancel()
        for entry, outcomes in leftovers:
            deliver(entry, outcomes)
        self._thread.join()
        if self._follower is not None:
            self._follower.close()
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
            with self._cond:
                while True:
                    if self._closed:
                        return
                    now = time.monotonic()
                    to_resolve = []
                    if self._completions:
                        completions, self._completions = self._completions, []
                        for batch, call, start_error in completions:
                            to_resolve.extend(self._complete(batch, call, start_error, now))
                    to_send, expired = core.step(now)
                    to_resolve.extend(expired)
                    self._acked += acked(to_resolve)
                    self._batches += len(to_send)
                    reconnected, core.reconnected = core.reconnected, False
                    if to_resolve or to_send or reconnected:
                        if to_resolve:
                            self._cond.notify_all()
                        break
                    self._cond.wait(core.wakeup(now))
            for batch in to_send:
                self._send(batch)
            for entry, outcomes in to_resolve:
                deliver(entry, outcomes)
            if reconnected and self._follower is not None:
                self._follower.reconnected()

    def _send(self, batch):
        try:
            call = self._stubs[batch.endpoint].Publish.future(
                self._core.request(batch), timeout=self._core.request_timeout)
        except Exception as e:  # e.g. channel closed during close()
            self._on_done(batch, None, e)
            return
        batch.call = call
        call.add_done_callback(lambda c, b=batch: self._on_done(b, c))

    def _on_done(self, batch, call, start_error=None):
        with self._cond:
            self._completions.append((batch, call, start_error))
            self._cond.notify_all()

    def _complete(self, batch, call, start_error, now):
        """Hands a finished call to the core. (A grpc call future is itself
        an Exception: it is never told apart from an error by its type.)"""
        core = self._core
        if start_error is not None:
            return core.on_not_sent(batch, start_error, now)
        try:
            response = call.result()
        except grpc.RpcError as e:
            return core.on_call_error(batch, e, now)
        except concurrent.futures.CancelledError:
            return core.on_not_sent(batch, None, now)
        return core.on_response(batch, response, now)


def _pure_publisher(*args, **kwargs) -> Publisher:
    """A pure-Python Publisher whatever the native path: the fallback's Ferry
    path drives its internals (publish_prepared_callback, apply_settings)."""
    publisher = object.__new__(Publisher)
    publisher.__init__(*args, **kwargs)
    return publisher
