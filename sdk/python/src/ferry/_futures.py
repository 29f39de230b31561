"""The futures ``publish`` and ``publish_many`` return, on both paths.

A ``concurrent.futures.Future`` builds a ``threading.Condition`` (an RLock,
a deque, bound methods) and two lists per instance: about ten objects the
cyclic collector walks for as long as the future lives, most of a
``publish()``'s cost. A PublishFuture makes them on first use instead (the
``_sync`` slot) and is completed without them while nobody made them.

Why that is the stdlib's behaviour (read concurrent/futures/_base.py):
every stdlib path that waits for a future, registers a waiter
(``wait``, ``as_completed``) or a done callback takes ``_condition`` first,
and reads ``_state`` only while holding it. Making ``_sync`` and completing
without it (``_complete_alone``: check ``_sync`` is None, then store the
outcome and FINISHED) exclude each other: on a Python thread both hold
``_install``; the native completer (sdk/python/native/future.cc) checks
and stores holding the GIL with no Python code in between. So either the
completion came first, and whoever makes ``_sync`` afterwards finds FINISHED
under the condition (nothing to wait for, callbacks run inline), or ``_sync``
exists and the completion is the stdlib's own ``set_result`` under the
condition (waiters told, ``notify_all``, callbacks on the completing
thread). Once made, ``_sync`` never changes, so the state changes only under
the condition while anyone can hold it. The read-only methods (``done``,
``result`` of a finished future, ...) read one slot without the condition:
under the GIL a slot read is atomic, and the outcome is stored before
FINISHED is. Without a GIL (free-threaded CPython) that does not hold:
``for_thread`` then gives a class with the stdlib's locked methods.

``_install`` is one lock for the process, not reentrant: on Python 3.9 and
3.10 (whose ``threading.Lock`` acquire can run a signal handler) a Python
signal handler that touches a pending PublishFuture (waits on it, adds a
callback) while the main thread holds ``_install`` deadlocks. Keep futures
out of signal handlers there (hand them to another thread).
"""
import concurrent.futures
import os
import sys
import threading
from concurrent.futures import _base

RUNNING = _base.RUNNING
FINISHED = _base.FINISHED
_CANCELLED = (_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED)
_DONE = (FINISHED,) + _CANCELLED

# Held while a future's _sync is made and while a Python thread completes a
# future without it (see the module doc), for a few slot reads and stores;
# no other lock is taken under it.
_install = threading.Lock()


def _new_install_lock():
    global _install
    _install = threading.Lock()  # a forked child: another thread may have held it


os.register_at_fork(after_in_child=_new_install_lock)


class PublishFuture(concurrent.futures.Future):
    """A concurrent.futures.Future, running from the start (a queued message
    cannot be taken back: ``cancel()`` returns False), whose condition and
    lists are made on first use. ``result`` and ``exception`` raise
    RuntimeError, instead of waiting forever, when called while it is
    pending on the thread that completes it (in a publish callback or a done
    callback of the same publisher). Each publisher has its own subclass
    (``for_thread``) naming that thread."""

    # sdk/python/native/future.cc reads and writes these slots by offset.
    __slots__ = ("_sync", "_state", "_result", "_exception")

    _completer = None  # threading.get_ident() of the completing thread

    def __init__(self):
        self._sync = None  # (Condition, waiters, done callbacks) once needed
        self._state = RUNNING
        self._result = None
        self._exception = None

    # -- what the stdlib's methods and wait()/as_completed() use -----------

    @property
    def _condition(self):
        return (self._sync or self._make_sync())[0]

    @property
    def _waiters(self):
        return (self._sync or self._make_sync())[1]

    @property
    def _done_callbacks(self):
        return (self._sync or self._make_sync())[2]

    def _make_sync(self):
        made = (threading.Condition(), [], [])
        with _install:
            if self._sync is None:
                self._sync = made
            return self._sync

    # -- completion ----------------------------------------------------------

    # A _sync once made stays: seen without _install, the stdlib's way at once.
    def set_result(self, result):
        if self._sync is not None or not self._complete_alone(result, None):
            self._complete_synced(result, False)

    def set_exception(self, exception):
        if self._sync is not None or not self._complete_alone(None, exception):
            self._complete_synced(exception, True)

    def _complete_synced(self, outcome, failed):
        """The stdlib's set_result / set_exception, reading ``_sync`` once
        (no property call per member)."""
        condition, waiters, callbacks = self._sync or self._make_sync()
        with condition:
            if self._state in _DONE:
                raise _base.InvalidStateError("{}: {!r}".format(self._state, self))
            if failed:
                self._exception = outcome
            else:
                self._result = outcome
            self._state = FINISHED
            for waiter in waiters:
                if failed:
                    waiter.add_exception(self)
                else:
                    waiter.add_result(self)
            condition.notify_all()
        for fn in callbacks:
            self._run_callback(fn)

    def _complete_alone(self, result, exception) -> bool:
        """Completes a running future nobody waits on or watches; False
        when someone may (or it is done): the stdlib's way then."""
        with _install:
            if self._sync is not None or self._state is not RUNNING:
                return False
            self._result = result
            self._exception = exception
            self._state = FINISHED
            return True

    # -- reading (one slot, no condition) --------------------------------------

    def done(self):
        return self._state in _DONE

    def running(self):
        return self._state == RUNNING

    def cancelled(self):
        return self._state in _CANCELLED

    def cancel(self):
        if self._state in (RUNNING, FINISHED):
            return False
        return super().cancel()

    def result(self, timeout=None):
        if self._state != FINISHED:
            self._refuse_self_wait()
            return super().result(timeout)
        if self._exception:
            try:
                raise self._exception
            finally:
                self = None  # as the stdlib: the traceback must not keep the future
        return self._result

    def exception(self, timeout=None):
        if self._state == FINISHED:
            return self._exception
        self._refuse_self_wait()
        return super().exception(timeout)

    def add_done_callback(self, fn):
        if self._state not in _DONE:
            condition, _, callbacks = self._sync or self._make_sync()
            with condition:  # as the stdlib's: runs fn below if done meanwhile
                if self._state not in _DONE:
                    callbacks.append(fn)
                    return
        self._run_callback(fn)

    def _run_callback(self, fn):
        try:
            fn(self)
        except Exception:
            _base.LOGGER.exception("exception calling callback for %r", self)

    def __repr__(self):
        state = self._state
        described = "<%s at %#x state=%s" % (type(self).__name__, id(self),
                                              _base._STATE_TO_DESCRIPTION_MAP[state])
        if state != FINISHED:
            return described + ">"
        if self._exception:
            return "%s raised %s>" % (described, type(self._exception).__name__)
        return "%s returned %s>" % (described, type(self._result).__name__)

    def __reduce_ex__(self, protocol):
        raise TypeError("cannot pickle %r object" % type(self).__name__)

    def _refuse_self_wait(self):
        if self._completer == threading.get_ident() and not self.done():
            raise RuntimeError("ferry: waiting in a publish callback for a pending future "
                               "of the same publisher would wait forever")


class LockedPublishFuture(PublishFuture):
    """A PublishFuture for a CPython without the GIL: the condition is made
    with the future (so it is always completed the stdlib's way) and each
    method takes it, as the stdlib's do."""

    __slots__ = ()

    def __init__(self):
        super().__init__()
        self._sync = (threading.Condition(), [], [])

    done = concurrent.futures.Future.done
    running = concurrent.futures.Future.running
    cancelled = concurrent.futures.Future.cancelled
    __repr__ = concurrent.futures.Future.__repr__

    def cancel(self):
        with self._condition:
            if self._state in (RUNNING, FINISHED):
                return False
        return super().cancel()

    def result(self, timeout=None):
        self._refuse_self_wait()
        return concurrent.futures.Future.result(self, timeout)

    def exception(self, timeout=None):
        self._refuse_self_wait()
        return concurrent.futures.Future.exception(self, timeout)

    def add_done_callback(self, fn):
        concurrent.futures.Future.add_done_callback(self, fn)


def _gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)  # 3.13+
    return check is None or check()


def for_thread(ident) -> type:
    """The PublishFuture subclass of one publisher, completed on ``ident``."""
    base = PublishFuture if _gil_enabled() else LockedPublishFuture
    return type("PublishFuture", (base,), {"_completer": ident})
