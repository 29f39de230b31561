"""Plain values shared by the sync and asyncio APIs."""
import datetime
import enum
from typing import Iterable, List, Mapping, NamedTuple, Optional, Tuple, Union

from ferry.v1 import common_pb2

Bytesish = Union[bytes, bytearray, memoryview, str]
Headers = Union[Mapping[str, Bytesish], Iterable[Tuple[str, Bytesish]], None]


class _Where(NamedTuple):
    cluster: str
    partition: int
    offset: int


class PublishResult(_Where):
    """Where a published message was written (the broker acknowledged it):
    ``cluster, partition, offset = result``. ``result.direct`` is True when a
    publisher with ``fallback=True`` wrote it straight to the cluster because
    no node answered (not part of the tuple)."""

    direct = False  # a class attribute: results built with tuple.__new__ get it

    def __new__(cls, cluster: str, partition: int, offset: int, direct: bool = False):
        result = super().__new__(cls, cluster, partition, offset)
        if direct:
            result.direct = True
        return result

    def __getnewargs__(self):
        return tuple(self) + (self.direct,)


class Ordering(enum.Enum):
    """Which messages a subscription hands out (and handles) one at a time."""
    #: No ordering: messages are spread over streams and handler threads.
    NONE = common_pb2.ORDERING_NONE
    #: The next message of a key only after the previous one was acked;
    #: handler calls of one key are serial. Keyless messages are unordered.
    KEY = common_pb2.ORDERING_KEY
    #: Likewise per (topic, partition).
    PARTITION = common_pb2.ORDERING_PARTITION


def ordering_of(value) -> Ordering:
    if isinstance(value, Ordering):
        return value
    if isinstance(value, str):
        try:
            return Ordering[value.upper()]
        except KeyError:
            pass
    raise ValueError("ordering must be ferry.Ordering or one of 'none', 'key', "
                     "'partition', not %r" % (value,))


class Start:
    """Where a group with no committed offsets starts reading."""
    LATEST = "latest"
    EARLIEST = "earliest"

    @staticmethod
    def at(when: datetime.datetime) -> datetime.datetime:
        """The first message of each partition at or after ``when``."""
        return when


def position_of(start) -> common_pb2.Position:
    """'latest' | 'earliest' | datetime → Position."""
    if start is None or start == Start.LATEST:
        return common_pb2.Position(latest=True)
    if start == Start.EARLIEST:
        return common_pb2.Position(earliest=True)
    if isinstance(start, datetime.datetime):
        position = common_pb2.Position()
        if start.tzinfo is None:
            start = start.astimezone()
        position.timestamp.FromDatetime(start.astimezone(datetime.timezone.utc))
        return position
    raise ValueError("start must be 'latest', 'earliest' or a datetime, not %r" % (start,))


def to_bytes(value: Optional[Bytesish], what: str) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError("%s must be bytes or str, not %s" % (what, type(value).__name__))


def to_header_list(headers: Headers) -> List[Tuple[str, bytes]]:
    if not headers:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    result = []
    for key, value in items:
        if not isinstance(key, str):
            raise TypeError("header keys must be str, not %s" % type(key).__name__)
        result.append((key, to_bytes(value, "header %r" % key)))
    return result


def seconds_of(value, what: str) -> float:
    """Accepts seconds (int/float) or a datetime.timedelta."""
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError("%s must be seconds (a number) or a timedelta, not %r" % (what, value))
