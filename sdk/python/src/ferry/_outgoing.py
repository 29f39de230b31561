"""Messages on their way out: how the publishers keep them until sent, their
ids, how a batch call's request is written, and the handles that stand in
for a future per message (``publish(callback=)``, ``publish_many``).

A message is kept as its fields (an :class:`Outgoing`, or for a
``publish_many`` item that is only a value, the value and its id) and
written into the request's repeated field with ``messages.add`` when its
batch is sent: building an ``OutgoingMessage`` per message and copying it
into the request was most of a publish call (py-spy, issue 18).
"""
import datetime
import logging
import os
import threading
from typing import List, NamedTuple, Optional, Tuple

from ferry import _types

log = logging.getLogger("ferry")

#: Bytes counted per message beyond its payload (the C++ and Go SDKs count
#: the payload; 16 keeps tiny messages from being free).
OVERHEAD = 16
#: Length of a message id: 16 random bytes as hex digits.
ID_LENGTH = 32


class Outgoing(NamedTuple):
    """One message as ``publish`` took it (ids set)."""
    value: bytes
    key: bytes
    ordering_key: bytes
    headers: List[Tuple[str, bytes]]
    id: str
    timestamp: Optional[datetime.datetime]


# -- ids ------------------------------------------------------------------

_ID_POOL_SIZE = 256
_id_pool: List[str] = []
_id_refill = threading.Lock()


def new_ids(count: int) -> List[str]:
    """``count`` random 128-bit ids as 32 hex digits (like the Go and C++
    SDKs), from one ``os.urandom`` call: a ``getrandom`` syscall per message
    was a tenth of a publish call."""
    digits = os.urandom(16 * count).hex()
    return [digits[i:i + ID_LENGTH] for i in range(0, ID_LENGTH * count, ID_LENGTH)]


def new_id() -> str:
    """One random id, taken from a pool filled ``_ID_POOL_SIZE`` at a time."""
    try:
        return _id_pool.pop()   # atomic under the GIL
    except IndexError:
        with _id_refill:
            if not _id_pool:
                _id_pool.extend(new_ids(_ID_POOL_SIZE))
        return new_id()


# A forked child must not hand out the parent's pooled ids again.
os.register_at_fork(after_in_child=_id_pool.clear)


# -- building -------------------------------------------------------------

def build(value, key, headers, ordering_key, message_id, timestamp) -> Tuple[Outgoing, int]:
    """Validates one message: (Outgoing, size counted against the limits).
    Raises TypeError for values of the wrong type."""
    value_b = value if value.__class__ is bytes else _types.to_bytes(value, "value")
    key_b = b"" if key is None else _types.to_bytes(key, "key")
    okey_b = b"" if ordering_key is None else _types.to_bytes(ordering_key, "ordering_key")
    header_list = _types.to_header_list(headers) if headers else []
    if message_id is None:
        message_id = new_id()
    elif not isinstance(message_id, str):
        raise TypeError("id must be str")
    if timestamp is not None and not isinstance(timestamp, datetime.datetime):
        raise TypeError("timestamp must be a datetime, not %s" % type(timestamp).__name__)
    record = Outgoing(value_b, key_b, okey_b, header_list, message_id, timestamp)
    return record, record_size(record)


def ordering_key_of(record: Outgoing) -> Optional[bytes]:
    return record.ordering_key or record.key or None


def record_size(record: Outgoing) -> int:
    size = len(record.key) + len(record.value) + len(record.ordering_key) + len(record.id)
    if record.headers:
        size += sum(len(k) + len(v) + 4 for k, v in record.headers)
    return size + OVERHEAD


def value_size(value: bytes) -> int:
    """Size of a ``publish_many`` item that is only a value (with its id)."""
    return len(value) + ID_LENGTH + OVERHEAD


# -- writing a request ----------------------------------------------------

def write(messages, entry) -> None:
    """Appends ``entry``'s messages to a request's repeated ``messages``."""
    add = messages.add
    if entry.records is None:
        for value, message_id in zip(entry.values, entry.ids):
            add(value=value, id=message_id)
        return
    for record in entry.records:
        message = add(value=record.value, key=record.key, ordering_key=record.ordering_key,
                      id=record.id)
        for k, v in record.headers:
            message.headers.add(key=k, value=v)
        if record.timestamp is not None:
            message.timestamp.FromDatetime(record.timestamp)


# -- handles without a future per message ----------------------------------

class Callback:
    """The handle of ``publish(..., callback=fn)``: ``fn(outcome)`` instead
    of a future (a Future costs a Condition and an RLock per message)."""
    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn

    def set_result(self, outcome) -> None:
        try:
            self.fn(outcome)
        except Exception:  # noqa: BLE001 - the publisher's thread must go on
            log.exception("ferry: publish callback raised")

    set_exception = set_result


# -- publish_many ---------------------------------------------------------

class ManyResults:
    """The handle of one ``publish_many`` call: collects each message's
    outcome at its position and completes ``future`` with the list once all
    are in. Parts may complete on different threads (the sender, close)."""
    __slots__ = ("future", "results", "remaining", "_lock")

    def __init__(self, future, count: int):
        self.future = future
        self.results: list = [None] * count
        self.remaining = count
        self._lock = threading.Lock()

    def fill(self, positions, outcomes) -> None:
        results = self.results
        if positions.__class__ is range and positions.step == 1:
            results[positions.start:positions.stop] = outcomes
        else:
            for position, outcome in zip(positions, outcomes):
                results[position] = outcome
        with self._lock:
            self.remaining -= len(outcomes)
            finished = self.remaining == 0
        if finished and not self.future.done():  # an asyncio caller may have cancelled
            self.future.set_result(results)

    def done(self) -> bool:
        return self.future.done()


def items_of(messages, max_count: int, max_bytes: int):
    """Splits a ``publish_many`` call's items into chunks.

    Each item is a value (bytes or str) or a tuple of ``publish``'s
    positional arguments after the topic: ``(value[, key[, headers[,
    ordering_key]]])``. Returns ``(chunks, count, size)``; a chunk is
    ``(okey, positions, values, ids, records, size)`` with at most
    ``max_count`` messages and ``max_bytes`` bytes (or one message), all
    of one ordering key (None: unkeyed) in call order. Value-only items
    without a key go as ``values``/``ids`` (``records`` None), others as
    :class:`Outgoing` records. Raises TypeError for a bad item."""
    values: List[bytes] = []
    value_positions: List[int] = []
    keyed = {}      # okey (None: unkeyed records) -> [(position, record, size)]
    size = 0
    position = -1
    for position, item in enumerate(messages):
        cls = item.__class__
        if cls is bytes:
            values.append(item)
            value_positions.append(position)
            continue
        if cls is str:
            values.append(item.encode("utf-8"))
            value_positions.append(position)
            continue
        if cls is not tuple or not 1 <= len(item) <= 4:
            if cls in (bytearray, memoryview):
                values.append(bytes(item))
                value_positions.append(position)
                continue
            raise TypeError("publish_many item %d must be a value (bytes or str) or a tuple "
                            "(value[, key[, headers[, ordering_key]]]), not %s"
                            % (position, cls.__name__))
        padded = item + (None,) * (4 - len(item))
        record, record_bytes = build(padded[0], padded[1], padded[2], padded[3], None, None)
        keyed.setdefault(ordering_key_of(record), []).append((position, record, record_bytes))
        size += record_bytes
    count = position + 1
    chunks = []
    if values:
        ids = new_ids(len(values))
        start = 0
        while start < len(values):
            end, chunk_bytes = start, 0
            while end < len(values) and end - start < max_count:
                item_bytes = value_size(values[end])
                if end > start and chunk_bytes + item_bytes > max_bytes:
                    break
                chunk_bytes += item_bytes
                end += 1
            positions = value_positions[start:end]
            if positions[-1] - positions[0] == end - start - 1:
                positions = range(positions[0], positions[-1] + 1)
            chunks.append((None, positions, values[start:end], ids[start:end], None,
                           chunk_bytes))
            size += chunk_bytes
            start = end
    for okey, members in keyed.items():
        start = 0
        while start < len(members):
            end, chunk_bytes = start, 0
            while end < len(members) and end - start < max_count:
                item_bytes = members[end][2]
                if end > start and chunk_bytes + item_bytes > max_bytes:
                    break
                chunk_bytes += item_bytes
                end += 1
            part = members[start:end]
            chunks.append((okey, [p for p, _, _ in part], None, None, [r for _, r, _ in part],
                           chunk_bytes))
            start = end
    return chunks, count, size
