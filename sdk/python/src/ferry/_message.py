"""Plain values of the subscribers: messages, counters, stream failures."""
import datetime
import os
import re
import sys
from abc import ABCMeta
from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter
from typing import Dict, List, Optional, Tuple

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


#: Message.ack and Subscriber.receive go without a lock only where CPython
#: cannot switch threads between ack's test of a flag and its set: 3.11 and
#: later check for a switch on backward jumps and calls, not on the forward
#: jump between them (3.10 does), and only with the GIL on. Elsewhere they
#: take the subscriber's lock, one ack at a time; so they do with
#: FERRY_LOCKED_ACKS=1 in the environment (the tests run both ways).
LOCK_FREE = (sys.version_info >= (3, 11) and getattr(sys, "_is_gil_enabled", lambda: True)()
             and os.environ.get("FERRY_LOCKED_ACKS") != "1")

#: A message's settled flag: 0 unsettled; 1 settled (its ack, nack or
#: drop recorded); ACKED: acked by Message.ack without a lock, not yet
#: recorded (SubscriberCore collects a stream's ACKED flags in one step).
ACKED = 2
_ACKED_STRETCHES = re.compile(b"\x02+")


class Received:
    """The messages of one response of one stream, kept until each is
    settled: the response's repeated ``ReceivedMessage`` as gRPC parsed it
    (upb; nothing is copied out until read), its receipt runs, one settled
    flag per message (0, 1 or ACKED), and one deadline for those not
    extended on their own. Handing out and settling a whole response is one
    step, not one per message (issue 18). ``unsettled`` counts the flags
    that are not 1: the response stays in its stream's ``unsettled`` until
    every ack is recorded.
    """
    __slots__ = ("pbs", "size", "runs", "stream", "owner", "delivered", "expires", "next",
                 "settled", "unsettled", "extended", "_views")

    def __init__(self, pbs, stream, now, ack_deadline, runs=(), owner=None):
        self.pbs = pbs
        self.size = len(pbs)
        self.runs = receipt_runs(runs, len(pbs))
        self.stream = stream
        self.owner = owner  # the shell: its messages' ack/nack/extend land there
        self.delivered = now
        self.expires = now + ack_deadline
        self.next = 0                           # the first not handed out
        self.settled = bytearray(len(pbs))      # see ACKED
        self.unsettled = len(pbs)
        self.extended: Optional[Dict[int, float]] = None  # index -> own deadline
        self._views = None

    def views(self) -> list:
        """The messages as upb views, built once: indexing the repeated field
        builds a new view at every access (0.3-0.4 µs), one pass over it
        about a third of that."""
        if self._views is None:
            self._views = list(self.pbs)
        return self._views

    def slice(self, start: int, stop: int):
        """Views of messages [start, stop), without keeping them."""
        if self._views is not None:
            return self._views[start:stop]
        if start == 0 and stop == len(self.pbs):
            return self.pbs
        return self.pbs[start:stop]

    def receipts(self, pieces) -> List[bytes]:
        """The receipts of the messages in ``pieces`` ((start, stop) pairs)."""
        return [pb.receipt for start, stop in pieces for pb in self.slice(start, stop)]

    def ack_items(self, pieces):
        """(spans, receipts) acking the messages in ``pieces``: a span
        ``(run, first, count)`` for each part of a piece inside a receipt run,
        a receipt for each message in none."""
        if not self.runs:
            return [], self.receipts(pieces)
        spans, loose = [], []
        for start, stop in pieces:
            at = start
            for first, count, run in self.runs:
                low, high = max(at, first), min(stop, first + count)
                if low >= high:
                    continue
                if at < low:
                    loose.append((at, low))
                spans.append((run, low - first, high - low))
                at = high
            if at < stop:
                loose.append((at, stop))
        return spans, self.receipts(loose) if loose else []

    def drop(self) -> None:
        """Its stream ended: every receipt is void."""
        self.settled[:] = b"\x01" * len(self.settled)
        self.unsettled = 0

    def take_acked(self) -> List[Tuple[int, int]]:
        """The stretches of ACKED messages as (start, stop) pairs, now marked
        settled (the caller records their acks)."""
        flags = self.settled
        pieces = [m.span() for m in _ACKED_STRETCHES.finditer(flags)]
        for start, stop in pieces:
            flags[start:stop] = b"\x01" * (stop - start)
            self.unsettled -= stop - start
        return pieces

    def messages(self, start: int, stop: int):
        """An iterator of the Messages [start, stop), built as they are taken
        (each ``next`` is one C call up to Message's constructor, so threads
        taking from one iterator each get a different message)."""
        return map(Message, repeat(self), range(start, stop))


def receipt_runs(runs, size: int) -> List[Tuple[int, int, bytes]]:
    """A batch's ReceiptRuns as sorted (first_message, count, run) tuples;
    a run outside the batch or overlapping another is ignored (its messages
    are acked by receipt), so a bad run costs compactness, not correctness."""
    if not runs:
        return []
    ordered = sorted((r.first_message, r.count, r.run) for r in runs)
    kept, end = [], 0
    for first, count, run in ordered:
        if count > 0 and first >= end and first + count <= size:
            kept.append((first, count, run))
            end = first + count
    return kept


def unsettled_pieces(flags: bytearray, start: int, stop: int) -> List[Tuple[int, int]]:
    """The runs of unsettled messages in [start, stop) as (start, stop) pairs."""
    if flags.count(0, start, stop) == stop - start:
        return [(start, stop)]
    pieces = []
    at = flags.find(0, start, stop)
    while at >= 0:
        end = min((e for e in (flags.find(1, at, stop), flags.find(ACKED, at, stop)) if e >= 0),
                  default=stop)
        pieces.append((at, end))
        at = flags.find(0, end, stop)
    return pieces


class Message(metaclass=ABCMeta):
    """A delivered message: a view of the received record, read when asked.

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
    __slots__ = ("_pb", "_received", "_index", "_headers")  # _headers: set when first read

    def __init__(self, received: Received, index: int):
        self._pb = (received._views or received.views())[index]
        self._received = received
        self._index = index

    # attrgetter reads the field without a Python frame.
    topic = property(attrgetter("_pb.topic"))
    partition = property(attrgetter("_pb.partition"))
    offset = property(attrgetter("_pb.offset"))
    key = property(lambda self: self._pb.key or None)
    value = property(attrgetter("_pb.value"))
    delivery_attempt = property(attrgetter("_pb.delivery_attempt"))
    cluster = property(attrgetter("_pb.cluster"))
    id = property(attrgetter("_pb.id"))

    @property
    def header_list(self) -> List[Tuple[str, bytes]]:
        return [(h.key, h.value) for h in self._pb.headers]

    @property
    def headers(self) -> Dict[str, bytes]:
        try:
            return self._headers
        except AttributeError:
            self._headers = dict(self.header_list)
            return self._headers

    @property
    def publish_time(self) -> Optional[datetime.datetime]:
        if not self._pb.HasField("publish_time"):
            return None
        return self._pb.publish_time.ToDatetime(tzinfo=datetime.timezone.utc)

    def ack(self) -> None:
        """The message was processed: the node may commit past it."""
        # No lock per ack (issue 18): the flag says ACKED, and the
        # subscriber records a stream's ACKED flags in one step when a batch
        # is full, when the ack batch delay passed (the first ack since the
        # last step wakes its timer) or at close. The test and the set have
        # no call or loop between them, where CPython could switch threads
        # (see LOCK_FREE), so of two threads acking one message only one
        # sets the flag.
        received = self._received
        flags = received.settled
        if flags[self._index]:
            return
        flags[self._index] = ACKED
        stream = received.stream
        stream.acked += 1
        if not stream.acks_waiting or stream.acked >= stream.ack_batch:
            received.owner._acks_pending(stream)

    if not LOCK_FREE:
        def ack(self) -> None:  # noqa: F811 (see LOCK_FREE)
            """The message was processed: the node may commit past it."""
            self._received.owner._settle(self, "ack", 0.0)

    def nack(self, delay: Optional[float] = None) -> None:
        """Redeliver the message, no sooner than ``delay`` seconds (or a
        timedelta; None: as soon as possible)."""
        seconds = 0.0 if delay is None else _types.seconds_of(delay, "delay")
        self._received.owner._settle(self, "nack", seconds)

    def extend(self, deadline: Optional[float] = None) -> None:
        """Sets the node's deadline for this message to now + ``deadline``
        seconds (default: the subscription's ack_deadline). Automatic
        extension continues afterwards, so this is needed only to ask for
        more than ack_deadline at once."""
        self._received.owner._settle(self, "extend", deadline)

    @property
    def settled(self) -> bool:
        """True once acked or nacked (or dropped with its stream)."""
        return self._received.settled[self._index] != 0

    def __repr__(self):
        return "Message(topic=%r, partition=%d, offset=%d, key=%r, value=%r)" % (
            self.topic, self.partition, self.offset, self.key, self.value[:40])


class MessageBatch(Sequence):
    """Messages of one response, handed out at once by ``receive_batch``: a
    sequence of :class:`Message` (built when read), with :meth:`ack` and
    :meth:`nack` for all of them in one call. Settling single messages
    (``batch[i].nack()``) first and then the batch settles the rest."""
    __slots__ = ("_received", "_start", "_stop")

    def __init__(self, received: Received, start: int, stop: int):
        self._received = received
        self._start = start
        self._stop = stop

    def __len__(self) -> int:
        return self._stop - self._start

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("MessageBatch index out of range")
        return Message(self._received, self._start + index)

    def __iter__(self):
        return self._received.messages(self._start, self._stop)

    def _part(self, start: int, stop: int) -> "MessageBatch":
        """Messages [start, stop) of this batch as a batch of their own."""
        stop = min(stop, len(self))
        return MessageBatch(self._received, self._start + start, self._start + stop)

    @property
    def values(self) -> List[bytes]:
        """Every message's value, in order (without building the messages)."""
        return [pb.value for pb in self._received.slice(self._start, self._stop)]

    def ack(self) -> None:
        """Acks every message of the batch not settled yet."""
        self._received.owner._settle_batch(self, "ack", 0.0)

    def nack(self, delay: Optional[float] = None) -> None:
        """Nacks every message of the batch not settled yet (see
        :meth:`Message.nack`)."""
        seconds = 0.0 if delay is None else _types.seconds_of(delay, "delay")
        self._received.owner._settle_batch(self, "nack", seconds)

    def __repr__(self):
        return "MessageBatch(%d messages)" % len(self)
