"""ferry.Subscriber's native path: the C++ SDK's subscriber (sdk/cpp) through
the extension ``ferry._native`` (sdk/python/native), for the iterator,
``receive``, ``receive_batch`` and the callback API (with or without
ordering).

:class:`ferry.Subscriber` builds a :class:`NativeSubscriber` when the
extension imported, ``FERRY_NATIVE`` is not ``0``, and the options are ones it
serves (see :func:`serves`); otherwise, and when the C++ SDK refuses the
options, the pure-Python subscriber, with the same API and semantics. Options
are checked by the pure path's own code (``SubscriberCore``), so both raise
the same errors.
"""
import atexit
import importlib
import inspect
import os
import queue
import threading
import time
import warnings
import weakref
from typing import Optional

from ferry import _common, _types
from ferry._message import Message, MessageBatch, Stats, SubscriberError
from ferry._subscriber_core import SubscriberCore
from ferry.errors import error_from_status
from ferry.subscriber import Subscriber, call_each

try:  # (from ferry import _native would make a missing module an ImportError)
    _native = importlib.import_module("ferry._native")
except ImportError as error:
    _native = None
    if not (isinstance(error, ModuleNotFoundError) and error.name == "ferry._native"):
        # Built but not loadable (say a wheel on a machine without the gRPC
        # it linked): the pure path works, but the user should know why.
        warnings.warn("ferry: the native extension ferry._native did not load (%s); "
                      "subscribers take the pure-Python path" % error, RuntimeWarning)
else:
    # isinstance(m, ferry.Message) holds on both paths (ABCs: registered).
    Message.register(_native.Message)
    MessageBatch.register(_native.MessageBatch)

#: Options only the pure path serves: raw grpcio channel options (and
#: credentials not made by ferry.credentials()).
PURE_ONLY = ("channel_options",)

#: Most messages a handler thread takes at a time (as the pure dispatcher's
#: MAX_HANDLER_CHUNK): its unsettled messages keep being extended meanwhile.
MAX_HANDLER_CHUNK = 32


def available() -> bool:
    """True when new subscribers take the native path (options permitting)."""
    return (_native is not None and os.environ.get("FERRY_NATIVE", "1") != "0"
            and _native.usable())


def serves(kwargs) -> bool:
    if not available() or any(kwargs.get(name) is not None for name in PURE_ONLY):
        return False
    credentials = kwargs.get("credentials")
    return credentials is None or hasattr(credentials, "_ferry_security")


_SIGNATURE = inspect.signature(Subscriber.__init__)
#: The options SubscriberCore checks (all but the shell's).
_CORE_OPTIONS = [name for name in inspect.signature(SubscriberCore.__init__).parameters
                 if name not in ("self", "owner")]
_open = weakref.WeakSet()


@atexit.register
def _close_open_subscribers():
    """Closes what the application left open, before the interpreter (and
    the C++ SDK's statics) go: their threads must not outlive them. A close
    started from on_error (the ferry-close thread) is waited for, up to the
    close timeout it was given: exiting under it would race those statics."""
    try:
        for subscriber in list(_open):
            try:
                subscriber.close(0.0)
            except Exception:  # the others are closed all the same
                _common.log.exception("ferry: closing a subscriber at exit failed")
    finally:
        if _native is not None:
            _native.join_detached()


def _start_ms(position) -> tuple:
    which = position.WhichOneof("at")
    if which == "earliest":
        return 1, 0
    if which == "timestamp":
        return 2, position.timestamp.ToMilliseconds()
    return 0, 0


class NativeSubscriber(Subscriber):
    """ferry.Subscriber over the C++ SDK (see the module doc). The callback
    API's handler threads are Python threads: without ordering each takes
    its messages from the C++ SDK; with key or partition ordering a
    dispatcher thread admits each response to the pure path's handler
    chains (see :meth:`_start_handlers`). Differences from the pure path:
    messages are ``ferry._native.Message`` (same attributes and methods,
    registered as a ferry.Message); a message dropped unsettled together
    with every other reference to its response is nacked (the pure path
    keeps extending it until ``max_extension``); ``Message.settled`` does
    not turn True when the delivering stream breaks."""

    native = True

    def __init__(self, *args, **kwargs):
        given = _SIGNATURE.bind(self, *args, **kwargs)
        given.apply_defaults()
        options = dict(given.arguments)
        options.pop("self")
        if options["handler_threads"] < 1:
            raise ValueError("handler_threads must be >= 1")
        core = SubscriberCore(None, **{name: options[name] for name in _CORE_OPTIONS})
        on_error, on_receipt_failure = options["on_error"], options["on_receipt_failure"]
        close_timeout = options["close_timeout"]
        self._close_timeout = _types.seconds_of(close_timeout, "close_timeout")
        opened = core.open_request.open
        credentials = options["credentials"]
        ca_file, cert_file, key_file, token = (
            ("", "", "", "") if credentials is None else credentials._ferry_security)
        start_kind, start_ms = _start_ms(opened.start)

        def report_error(code, reason, endpoint, fatal):
            error = error_from_status(code, reason, endpoint=endpoint)
            _common.report_stream_failure(on_error, SubscriberError(error, endpoint, fatal))

        def report_receipt_failure(code, reason, endpoint):
            _common.report_receipt_failure(
                on_receipt_failure, error_from_status(code, reason, endpoint=endpoint))

        try:
            self._native = _native.Subscriber(
                endpoints=core.targets, group=opened.group, topics=list(opened.topics),
                ordering=max(0, opened.ordering - 1), ack_deadline_ms=ms(core.ack_deadline),
                max_outstanding_messages=opened.flow.max_outstanding_messages,
                max_outstanding_bytes=opened.flow.max_outstanding_bytes,
                start=start_kind, start_ms=start_ms, filter=opened.filter,
                max_delivery_attempts=opened.max_delivery_attempts,
                dead_letter_topic=opened.dead_letter_topic, client_id=opened.client_id,
                ack_batch_count=core.ack_batch_count, ack_batch_delay_ms=ms(core.ack_batch_delay),
                max_extension_ms=ms(core.max_extension),
                backoff_initial_ms=ms(core.backoff_initial), backoff_max_ms=ms(core.backoff_max),
                close_timeout_ms=ms(self._close_timeout),
                tls=credentials is not None, ca_file=ca_file, cert_file=cert_file,
                key_file=key_file, token=token,
                make_error=lambda code, reason, endpoint: error_from_status(
                    code, reason, endpoint=endpoint),
                report_error=report_error,
                report_receipt_failure=None if on_receipt_failure is None
                else report_receipt_failure)
        except ValueError:
            # Options the C++ SDK checks more strictly than the pure path
            # (which leaves them to the node): the pure path, as before.
            self.__class__ = Subscriber
            Subscriber.__init__(self, *args, **kwargs)
            return
        # The hot calls go straight to C: no Python frame per message.
        self.receive = self._native.receive
        self.receive_batch = self._native.receive_batch
        self._threads = []  # the C++ SDK's threads are not Python threads
        self._close_lock = threading.Lock()
        self._callback, self._auto_ack = options["callback"], options["auto_ack"]
        self._handlers = []
        self._dispatcher = None
        if self._callback is not None:
            self._start_handlers(core, options["handler_threads"])
        _open.add(self)

    def _start_handlers(self, core, count):
        """The callback API. Without ordering each handler thread takes its
        messages from the native subscriber itself (_take_loop). With key or
        partition ordering it is the pure path's: one dispatcher thread takes
        a response at a time and admits its messages to the handler chains
        of ``core`` (per key or partition: one call at a time, in delivery
        order), and the handler threads run what it queues (Subscriber's
        _dispatch, _handler_loop, _call_chained and _call_all)."""
        loop = self._take_loop
        if core.ordering is not _types.Ordering.NONE:
            self._core = core  # its chains only: the C++ SDK does the rest
            self._lock = threading.Lock()  # guards the chains
            self._ready = threading.Condition(self._lock)  # notified at close; unused here
            self._pool = queue.SimpleQueue()
            self._handlers_stopping = False
            self._dispatcher = threading.Thread(target=self._dispatch_until_stopped,
                                                name="ferry-sub-dispatch", daemon=True)
            loop = self._handler_loop
        self._handlers = [threading.Thread(target=loop, name="ferry-handler-%d" % i,
                                           daemon=True) for i in range(count)]
        for thread in self._callback_threads():
            thread.start()

    def _callback_threads(self):
        """The dispatcher (if any) first: close joins it before the handlers."""
        return self._handlers if self._dispatcher is None else [self._dispatcher] + self._handlers

    def __iter__(self):
        return self._native

    def __next__(self):
        return next(self._native)

    @property
    def failure(self):
        return self._native.failure()

    def stats(self) -> Stats:
        stats = Stats()
        for name, value in zip(Stats.__slots__, self._native.stats()):
            setattr(stats, name, value)
        return stats

    def close(self, timeout: Optional[float] = None) -> bool:
        timeout = self._close_timeout if timeout is None else timeout
        if _native.in_callback():
            return self._close_elsewhere(timeout)
        me = threading.current_thread()
        from_handler = me in self._handlers
        # From a callback while another thread's close is under way: that
        # close waits for this thread, so do not wait for it.
        if not self._close_lock.acquire(blocking=not from_handler):
            return False
        try:
            deadline = time.monotonic() + timeout
            self._native.stop()
            if self._dispatcher is not None:
                self._stop_chains()
            handlers_done = not from_handler
            if self._handlers and not from_handler:
                for thread in self._callback_threads():
                    thread.join(max(0.0, deadline - time.monotonic()))
                handlers_done = not any(thread.is_alive() for thread in self._handlers)
            closed = self._native.close(float(max(0.0, deadline - time.monotonic())))
            return closed and handlers_done
        finally:
            self._close_lock.release()

    def _close_elsewhere(self, timeout: float) -> bool:
        """close() from on_error, on the C++ SDK's one background thread,
        which every stream's deadline extensions, ack flushes and reconnects
        wait for: the close (its wait for handlers included) goes on on a new
        thread and this returns at once, as the C++ SDK's own close from a
        callback; False while another close is under way (it waits for this
        thread)."""
        if self._close_lock.locked():
            return False
        self._native.stop()  # receive() returns None from now on, as after close
        threading.Thread(target=self.close, args=(timeout,), name="ferry-close",
                         daemon=True).start()
        return True

    def _take_loop(self):
        """The callback API without ordering: each handler thread takes up to
        MAX_HANDLER_CHUNK messages of the oldest response and calls the
        callback on each; a call that returns without settling its message
        acks it (auto_ack), one that raises nacks it."""
        take, callback, auto_ack = self._native.receive_batch, self._callback, self._auto_ack
        while True:
            try:
                batch = take(None, MAX_HANDLER_CHUNK)
            except Exception:  # noqa: BLE001 - a fatal failure ends delivery
                return
            if batch is None:
                return
            call_each(batch, callback, auto_ack)

    # -- the callback API with ordering --------------------------------------

    def _dispatch_until_stopped(self):
        """Subscriber._dispatch until stop() or a fatal failure, then one
        None per handler thread, queued after every chunk queued so far, so
        each admitted message is called before its handler thread ends."""
        try:
            self._dispatch()
        finally:
            self._stop_handlers()

    def _stop_chains(self):
        """As the pure path's close: no chain call starts any more; the
        messages waiting in chains are nacked (calls already admitted run)."""
        with self._lock:
            leftovers = self._core.begin_close()
        for message in leftovers:
            message.nack()


def ms(seconds: float) -> int:
    return int(round(seconds * 1000))
