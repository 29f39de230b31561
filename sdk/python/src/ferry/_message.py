"""Plain values of the subscribers: messages, counters, stream failures."""
import datetime
from typing import Dict, Optional

from google.protobuf import timestamp_pb2

from ferry import _types

try:
    from importlib.metadata import version as _version
    VERSION = _version("ferry-client")
except Exception:  # pragma: no cover - running from a source tree
    VERSION = "0"


class Stats:
    """Counters since the subscriber started (a snapshot)."""
    __slots__ = ("received", "acks_sent", "nacks_sent", "extensions_sent",
                 "dropped_settlements", "receipt_failures", "reconnects", "open_streams")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, 0)

    def copy(self) -> "Stats":
        other = Stats()
        for name in self.__slots__:
            setattr(other, name, getattr(self, name))
        return other

    def __repr__(self):
        return "Stats(%s)" % ", ".join("%s=%d" % (n, getattr(self, n)) for n in self.__slots__)


class SubscriberError:
    """A stream failure reported to ``on_error``: ``error`` (a FerryError),
    ``endpoint`` and ``fatal`` (True when the subscriber stops)."""
    __slots__ = ("error", "endpoint", "fatal")

    def __init__(self, error, endpoint, fatal):
        self.error = error
        self.endpoint = endpoint
        self.fatal = fatal

    def __repr__(self):
        return "SubscriberError(%r, endpoint=%r, fatal=%s)" % (self.error, self.endpoint, self.fatal)


class Message:
    """A delivered message.

    Attributes: ``topic``, ``partition``, ``offset``, ``key`` (bytes, None when
    the record has none), ``value`` (bytes), ``headers`` (dict str → bytes,
    the last value of a repeated header), ``header_list`` (every header as
    ``(str, bytes)`` in order), ``publish_time`` (aware datetime or None),
    ``delivery_attempt`` (1 on first delivery), ``cluster``, ``id`` (the
    publisher's ``ferry.id``, to drop duplicates).

    Settle it with :meth:`ack` or :meth:`nack`; only the first call counts.
    A receipt is valid only on the stream that delivered the message: after
    that stream broke, ack/nack do nothing and the node redelivers.
    """
    __slots__ = ("topic", "partition", "offset", "key", "value", "header_list",
                 "delivery_attempt", "cluster", "id", "_headers", "_time", "_receipt",
                 "_stream", "_owner", "_settled", "_delivered", "_expires")

    def __init__(self, pb, stream, owner, now, ack_deadline):
        self.topic = pb.topic
        self.partition = pb.partition
        self.offset = pb.offset
        self.key = pb.key or None
        self.value = pb.value
        self.header_list = [(h.key, h.value) for h in pb.headers]
        # headers and publish_time are built when first read: ToDatetime alone
        # cost more than the rest of the message (py-spy, issue 18).
        self._headers = None
        if pb.HasField("publish_time"):
            time = pb.publish_time
            self._time = (time.seconds, time.nanos)
        else:
            self._time = None
        self.delivery_attempt = pb.delivery_attempt
        self.cluster = pb.cluster
        self.id = pb.id
        self._receipt = pb.receipt
        self._stream = stream
        self._owner = owner
        self._settled = False
        self._delivered = now
        self._expires = now + ack_deadline

    @property
    def headers(self) -> Dict[str, bytes]:
        if self._headers is None:
            self._headers = dict(self.header_list)
        return self._headers

    @property
    def publish_time(self) -> Optional[datetime.datetime]:
        if self._time is None:
            return None
        seconds, nanos = self._time
        return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos).ToDatetime(
            tzinfo=datetime.timezone.utc)

    def ack(self) -> None:
        """The message was processed: the node may commit past it."""
        self._owner._settle(self, "ack", 0.0)

    def nack(self, delay: Optional[float] = None) -> None:
        """Redeliver the message, no sooner than ``delay`` seconds (or a
        timedelta; None: as soon as possible)."""
        seconds = 0.0 if delay is None else _types.seconds_of(delay, "delay")
        self._owner._settle(self, "nack", seconds)

    def extend(self, deadline: Optional[float] = None) -> None:
        """Sets the node's deadline for this message to now + ``deadline``
        seconds (default: the subscription's ack_deadline). Automatic
        extension continues afterwards, so this is needed only to ask for
        more than ack_deadline at once."""
        self._owner._settle(self, "extend", deadline)

    @property
    def settled(self) -> bool:
        """True once acked or nacked (or dropped with its stream)."""
        return self._settled

    def __repr__(self):
        return "Message(topic=%r, partition=%d, offset=%d, key=%r, value=%r)" % (
            self.topic, self.partition, self.offset, self.key, self.value[:40])
