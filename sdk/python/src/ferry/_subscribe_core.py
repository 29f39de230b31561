"""I/O-free parts of the subscribers: messages, settlement batching, requests."""
import datetime
import os
import socket
import time
from typing import Dict, List, Optional

from google.protobuf import duration_pb2

from ferry import _types
from ferry.v1 import subscriber_pb2

try:
    from importlib.metadata import version as _version
    VERSION = _version("ferry-client")
except Exception:  # pragma: no cover - running from a source tree
    VERSION = "0"


def duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromMilliseconds(int(round(seconds * 1000)))
    return d


def default_client_id() -> str:
    return "ferry-python/%s %s:%d" % (VERSION, socket.gethostname(), os.getpid())


def open_request(group, topics, ordering, ack_deadline, max_messages, max_bytes, start,
                 filter, max_delivery_attempts, dead_letter_topic, client_id):
    return subscriber_pb2.SubscribeRequest(open=subscriber_pb2.SubscriptionOpen(
        group=group, topics=list(topics), ordering=ordering.value,
        ack_deadline=duration(ack_deadline),
        flow=subscriber_pb2.FlowControl(max_outstanding_messages=max_messages,
                                        max_outstanding_bytes=max_bytes),
        start=_types.position_of(start), filter=filter or "",
        max_delivery_attempts=max_delivery_attempts,
        dead_letter_topic=dead_letter_topic or "", client_id=client_id))


class Settlements:
    """Acks, nacks and extensions of one stream waiting to be sent."""
    __slots__ = ("acks", "nacks", "extensions", "since", "count")

    def __init__(self):
        self.acks: List[bytes] = []
        self.nacks: Dict[float, List[bytes]] = {}
        self.extensions: Dict[float, List[bytes]] = {}
        self.since: Optional[float] = None  # when the oldest pending one was added
        self.count = 0

    def add(self, kind: str, receipt: bytes, seconds: float, now: float) -> None:
        if kind == "ack":
            self.acks.append(receipt)
        elif kind == "nack":
            self.nacks.setdefault(seconds, []).append(receipt)
        else:
            self.extensions.setdefault(seconds, []).append(receipt)
        if self.since is None:
            self.since = now
        self.count += 1

    def take(self):
        """Returns the requests to send and (acks, nacks, extensions) counts."""
        requests = []
        counts = (len(self.acks), sum(map(len, self.nacks.values())),
                  sum(map(len, self.extensions.values())))
        if self.acks:
            requests.append(subscriber_pb2.SubscribeRequest(
                ack=subscriber_pb2.Acks(receipts=self.acks)))
        for delay, receipts in self.nacks.items():
            requests.append(subscriber_pb2.SubscribeRequest(
                nack=subscriber_pb2.Nacks(receipts=receipts, delay=duration(delay))))
        for deadline, receipts in self.extensions.items():
            requests.append(subscriber_pb2.SubscribeRequest(
                extend=subscriber_pb2.Extensions(receipts=receipts,
                                                 deadline=duration(deadline))))
        self.acks = []
        self.nacks = {}
        self.extensions = {}
        self.since = None
        self.count = 0
        return requests, counts


class SettlementBook:
    """Settlement bookkeeping shared by the sync and asyncio subscribers.

    The subscriber holds its lock (sync) or runs on its event loop (asyncio)
    around every call, and provides ``_stats``, ``_streams``, ``_ack_deadline``,
    ``_ack_batch_count``, ``_ack_batch_delay``, ``_max_extension``,
    ``_put(stream, request)`` (queue a request on a stream) and
    ``_wake_maintenance()``.
    """

    def _record(self, message, kind, seconds, accepting):
        """Queues an ack, nack or extension; only the first ack/nack counts."""
        stream = message._stream
        if message._settled:
            return
        if kind != "extend":
            message._settled = True
            stream.unsettled.pop(message._receipt, None)
        if not stream.alive or not accepting:
            if kind != "extend":
                self._stats.dropped_settlements += 1
            return
        now = time.monotonic()
        if kind == "extend":
            seconds = self._ack_deadline if seconds is None else _types.seconds_of(
                seconds, "deadline")
            message._expires = now + seconds
        first = stream.pending.count == 0
        stream.pending.add(kind, message._receipt, seconds, now)
        if stream.pending.count >= self._ack_batch_count:
            self._flush(stream)
        elif first:
            self._wake_maintenance()

    def _flush(self, stream):
        """Sends a stream's pending settlements."""
        if stream.pending.count == 0:
            return
        requests, (acks, nacks, extensions) = stream.pending.take()
        if not stream.alive:
            self._stats.dropped_settlements += acks + nacks
            return
        for request in requests:
            self._put(stream, request)
        self._stats.acks_sent += acks
        self._stats.nacks_sent += nacks
        self._stats.extensions_sent += extensions

    def _maintenance_scan_every(self):
        return min(1.0, max(0.05, self._ack_deadline / 6))

    def _maintenance_step(self, now, next_scan):
        """Flushes settlements that waited ack_batch_delay and, every scan,
        extends deadlines of messages still being processed. Returns when to
        run again and the next scan time."""
        wake = next_scan
        for stream in self._streams:
            if stream is None or stream.pending.since is None:
                continue
            due = stream.pending.since + self._ack_batch_delay
            if due <= now:
                self._flush(stream)
            else:
                wake = min(wake, due)
        if now >= next_scan:
            self._extend_due(now)
            next_scan = now + self._maintenance_scan_every()
            wake = min(wake, next_scan)
        return wake, next_scan

    def _extend_due(self, now):
        threshold = self._ack_deadline / 3
        for stream in self._streams:
            if stream is None or not stream.alive:
                continue
            for message in stream.unsettled.values():
                if (message._expires - now <= threshold
                        and now - message._delivered < self._max_extension):
                    message._expires = now + self._ack_deadline
                    stream.pending.add("extend", message._receipt, self._ack_deadline, now)
            self._flush(stream)


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
    __slots__ = ("topic", "partition", "offset", "key", "value", "headers", "header_list",
                 "publish_time", "delivery_attempt", "cluster", "id", "_receipt",
                 "_stream", "_owner", "_settled", "_delivered", "_expires")

    def __init__(self, pb, stream, owner, now, ack_deadline):
        self.topic = pb.topic
        self.partition = pb.partition
        self.offset = pb.offset
        self.key = pb.key or None
        self.value = pb.value
        self.header_list = [(h.key, h.value) for h in pb.headers]
        self.headers = dict(self.header_list)
        self.publish_time = (pb.publish_time.ToDatetime(tzinfo=datetime.timezone.utc)
                             if pb.HasField("publish_time") else None)
        self.delivery_attempt = pb.delivery_attempt
        self.cluster = pb.cluster
        self.id = pb.id
        self._receipt = pb.receipt
        self._stream = stream
        self._owner = owner
        self._settled = False
        self._delivered = now
        self._expires = now + ack_deadline

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
