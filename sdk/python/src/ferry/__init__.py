"""Ferry Python SDK: publish and consume through ferryd nodes over gRPC.

* :class:`ferry.Publisher` — batched, retrying, failing-over publishing with
  ``concurrent.futures.Future`` results; with ``fallback=True`` straight to
  Kafka while no node answers (extra ``ferry-client[fallback]``).
* :class:`ferry.Subscriber` — at-least-once consumption, iterator or callback API.
* :mod:`ferry.aio` — the same for asyncio (grpc.aio).
* :mod:`ferry.errors` — typed exceptions (``ferry.NotFound``, ...), all
  subclasses of :class:`ferry.FerryError`.
* :func:`ferry.credentials` — TLS, client certificate and token for both
  (``credentials=`` argument).
* :func:`ferry.keep_freed_memory` — an explicit, process-wide glibc setting
  for heavy consumers (not set by the SDK).
* :mod:`ferry.v1` — the generated wire API (protobuf + gRPC stubs).
"""
from ferry._allocator import keep_freed_memory
from ferry._message import VERSION as __version__
from ferry._message import Message, MessageBatch, Stats, SubscriberError
from ferry._fallback import PublisherStats
from ferry._types import Ordering, PublishResult, Start
from ferry.errors import *  # noqa: F401,F403
from ferry.errors import __all__ as _errors_all
from ferry.publisher import Publisher
from ferry.security import credentials
from ferry.subscriber import Subscriber


def native_available() -> bool:
    """True when ``ferry.Subscriber`` takes the native path (the extension
    ``ferry._native`` over the C++ SDK) for the options it serves; False
    without the extension, with ``FERRY_NATIVE=0`` or in a child forked
    after the parent used it. ``subscriber.native`` tells per subscriber."""
    from ferry import _native_subscriber
    return _native_subscriber.available()

__all__ = ["Publisher", "Subscriber", "credentials", "native_available", "keep_freed_memory",
           "Message", "MessageBatch", "PublishResult", "PublisherStats", "Ordering", "Start",
           "Stats", "SubscriberError", "__version__"] + list(_errors_all)
