"""ferry.Publisher over the C++ SDK (ferry._native.Publisher, sdk/python/native).

``publish`` and ``publish_many`` go straight to C: the message is handed to
ferry::client::Publisher with the GIL released, and the SDK's results are
delivered by one thread per publisher that takes the GIL once per batch of
results, completing the concurrent.futures.Future objects ``publish``
returned (running from the start, as on the pure path) or calling the
callbacks. ``fallback=True``, ``channel_options``, credentials
not made by ferry.credentials() and a non-default ``max_inflight_batches``
take the pure path (ferry.publisher), as does FERRY_NATIVE=0."""
import atexit
import inspect
import logging
import threading
import weakref
from typing import Optional

from ferry import _futures, _native_subscriber
from ferry._fallback import PublisherStats
from ferry._native_subscriber import _native, ms
from ferry._publisher_core import CORE_OPTIONS, PublisherCore
from ferry._types import PublishResult
from ferry.errors import error_from_status
from ferry.publisher import Publisher

#: Options only the pure path serves (anything but None).
PURE_ONLY = ("channel_options",)

_SIGNATURE = inspect.signature(Publisher.__init__)
_DEFAULT_INFLIGHT = _SIGNATURE.parameters["max_inflight_batches"].default


def serves(kwargs) -> bool:
    if (not _native_subscriber.available() or not hasattr(_native, "Publisher")
            or kwargs.get("fallback")
            or any(kwargs.get(name) is not None for name in PURE_ONLY)
            or kwargs.get("max_inflight_batches", _DEFAULT_INFLIGHT) != _DEFAULT_INFLIGHT):
        return False
    credentials = kwargs.get("credentials")
    return credentials is None or hasattr(credentials, "_ferry_security")


log = logging.getLogger("ferry")


def _report_raised(error):
    """What a publish callback or a future's done callback raised: logged,
    as on the pure path; delivery goes on."""
    log.error("ferry: publish callback raised", exc_info=error)


def _make_error(code, reason, retryable, endpoint):
    return error_from_status(code, reason, retryable=retryable, endpoint=endpoint)


def _refuse_publish_arguments(self, topic, value, key=None, headers=None, ordering_key=None,
                              *, id=None, timestamp=None, callback=None):
    """Called by the native publish with arguments it does not take: binding
    them raises the pure path's TypeError (same signature, same name)."""


_refuse_publish_arguments.__qualname__ = Publisher.publish.__qualname__


if _native is not None and hasattr(_native, "set_publish_hooks"):
    _native.set_publish_hooks(PublishResult, _make_error, _report_raised,
                              _refuse_publish_arguments)


_open = weakref.WeakSet()


@atexit.register
def _close_open_publishers():
    """Closes what the application left open, before the interpreter (and
    the C++ SDK's statics) go: their threads must not outlive them; then
    waits for those let go in their own callbacks, ending on threads of
    their own."""
    for publisher in list(_open):
        try:
            publisher.close(0.0)
        except Exception:  # one that cannot close must not keep the rest open
            log.exception("ferry: closing a publisher at exit")
    if _native is not None and _native.usable():
        _native.join_detached()


def _optional_ms(seconds) -> int:
    return -1 if seconds is None else ms(seconds)


class NativePublisher(Publisher):
    """ferry.Publisher over the C++ SDK (see the module doc)."""

    native = True

    def __init__(self, *args, **kwargs):
        given = _SIGNATURE.bind(self, *args, **kwargs)
        given.apply_defaults()
        options = dict(given.arguments)
        core = PublisherCore(options["endpoints"],
                             **{name: options[name] for name in CORE_OPTIONS})
        explicit = core.explicit
        credentials = options["credentials"]
        ca_file, cert_file, key_file, token = (
            ("", "", "", "") if credentials is None else credentials._ferry_security)
        self._core = core
        self._fallback = None
        self._closed = False
        self._closing = threading.Lock()
        future_type = _futures.for_thread(None)
        self._native = _native.Publisher(
            endpoints=core.targets,
            max_batch_messages=-1 if explicit.max_batch_messages is None
            else explicit.max_batch_messages,
            max_batch_bytes=-1 if explicit.max_batch_bytes is None else explicit.max_batch_bytes,
            linger_ms=_optional_ms(explicit.linger),
            max_outstanding_bytes=core.max_outstanding_bytes,
            block_when_full=bool(options["block_when_full"]),
            request_timeout_ms=_optional_ms(explicit.request_timeout),
            delivery_timeout_ms=_optional_ms(explicit.delivery_timeout),
            backoff_initial_ms=ms(core.batcher.backoff_initial),
            backoff_max_ms=ms(core.batcher.backoff_max),
            close_timeout_ms=ms(core.close_timeout),
            pushed_settings=bool(options["pushed_settings"]),
            client_id=options["client_id"] or "",
            tls=credentials is not None, ca_file=ca_file, cert_file=cert_file,
            key_file=key_file, token=token,
            future_type=future_type)
        self._delivery_thread = future_type._completer = self._native.delivery_thread()
        # The hot calls go straight to C: no Python frame per message (the
        # methods below serve help() and NativePublisher.publish(pub, ...)).
        self.publish = self._native.publish
        self.publish_many = self._native.publish_many
        _open.add(self)

    def publish(self, *args, **kwargs):
        return self._native.publish(*args, **kwargs)

    def publish_many(self, topic, messages):
        return self._native.publish_many(topic, messages)

    publish.__doc__ = Publisher.publish.__doc__
    publish.__signature__ = inspect.signature(Publisher.publish)
    publish_many.__doc__ = Publisher.publish_many.__doc__

    def flush(self, timeout: Optional[float] = None) -> bool:
        if self._closed or not _native.usable():  # a forked child: the parent's
            return True
        return self._native.flush(timeout)

    def close(self, timeout: Optional[float] = None) -> bool:
        if not _native.usable():  # a forked child: the parent's to close
            return True
        if self._closed:
            return True
        if threading.get_ident() == self._delivery_thread:
            raise RuntimeError("ferry: close from this publisher's callback would wait "
                               "for itself")
        with self._closing:  # a second close returns once the first one ended
            if self._closed:
                return True
            flushed = self.flush(self._core.close_timeout if timeout is None else timeout)
            self._closed = True
            self._native.close()
            return flushed

    def stats(self) -> PublisherStats:
        (ferry_messages, direct, active, fetched, batches, linger, max_messages,
         delivery_timeout) = self._native.stats()
        settings = self._core.settings()
        return PublisherStats(ferry_messages, direct, active, fetched, batches, linger,
                              max_messages, settings.max_batch_bytes,
                              settings.request_timeout, delivery_timeout)
