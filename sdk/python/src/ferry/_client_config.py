"""The client configuration the nodes hand out (Admin.GetClientConfig), and
when to ask for it again. No I/O: the shells do the calls.

The Java client's partitioner lives here too, because the direct path must
put a key where ferryd puts it (murmur2 of the ordering key, else the key).
"""
from typing import Dict, NamedTuple, Optional

import grpc

_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` (signed 32-bit), which the Java client's
    partitioner and librdkafka's ``murmur2_random`` use."""
    m = 0x5BD1E995
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    blocks = length // 4
    for i in range(blocks):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & _MASK
        k ^= k >> 24
        k = (k * m) & _MASK
        h = ((h * m) & _MASK) ^ k
    tail = data[4 * blocks:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * m) & _MASK
    h ^= h >> 13
    h = (h * m) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    """The partition the Java client (and ferryd) picks for a non-empty key."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class PushedSettings(NamedTuple):
    """Settings the operator pushes (seconds and counts); None: unset, the
    SDK keeps its own."""
    linger: Optional[float] = None
    max_batch_messages: Optional[int] = None
    max_batch_bytes: Optional[int] = None
    request_timeout: Optional[float] = None
    delivery_timeout: Optional[float] = None


class TopicTarget(NamedTuple):
    """Where a topic's messages go when published directly."""
    cluster: str
    bootstrap: str
    properties: Dict[str, str]
    partitions: int     # 0: unknown (the cluster did not answer the node)
    fallback: bool      # the route allows it and the cluster is Kafka


class ClientConfig(NamedTuple):
    topics: Dict[str, TopicTarget]
    settings: PushedSettings
    refresh_interval: Optional[float]


def _seconds(message, field) -> Optional[float]:
    if not message.HasField(field):
        return None
    d = getattr(message, field)
    return d.seconds + d.nanos / 1e9


def config_from_proto(response) -> ClientConfig:
    """A GetClientConfigResponse as plain values."""
    topics = {}
    for t in response.topics:
        topics[t.topic] = TopicTarget(t.cluster, t.bootstrap, dict(t.properties),
                                      t.partitions, t.fallback and bool(t.bootstrap))
    s = response.settings
    settings = PushedSettings(
        linger=_seconds(s, "linger"),
        max_batch_messages=s.max_batch_messages or None,
        max_batch_bytes=s.max_batch_bytes or None,
        request_timeout=_seconds(s, "request_timeout"),
        delivery_timeout=_seconds(s, "delivery_timeout"))
    return ClientConfig(topics, settings, _seconds(response, "refresh_interval"))


#: Only these codes say that nothing answered; any other is a node's answer.
NO_ANSWER = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


#: After a round in which no node answered, ask again this soon (a node that
#: returns is asked within about this long).
RETRY_DELAY = 1.0
#: Least time between fetches a reconnect triggers, and the least refresh
#: interval a node may name.
MIN_GAP = 1.0


class ConfigSchedule:
    """When to fetch the configuration: at start, every refresh interval the
    node names (at least ``min_gap``), ``retry`` seconds after no node
    answered, when a node answers again after none did (the fallback's
    probe: :meth:`should_fetch`; a plain publisher's reconnect:
    :meth:`reconnected`), and when the client starts using a new topic.
    Also turns a fetch's outcome into what to log. Single-threaded, time
    passed in; the shells (``ferry._fallback``, ``ferry._settings``,
    ``ferry.aio``) do the calls.
    """

    def __init__(self, refresh: float = 30.0, retry: float = RETRY_DELAY,
                 min_gap: float = MIN_GAP):
        self.refresh = refresh
        self.retry = retry
        self.min_gap = min_gap
        self.next_fetch = 0.0
        self.last_fetch: Optional[float] = None
        self.reachable = True
        self.topics = set()
        self.topics_changed = False
        self.last_logged = None     # (code, details) of the failure logged last

    def want_topic(self, topic: str) -> None:
        if topic not in self.topics:
            self.topics.add(topic)
            self.topics_changed = True

    def should_fetch(self, answered: bool, now: float) -> bool:
        """After a probe round; ``answered``: some node answered it."""
        fetch = answered and (not self.reachable or self.topics_changed
                              or now >= self.next_fetch)
        self.reachable = answered
        return fetch

    def due(self, now: float) -> bool:
        return now >= self.next_fetch

    def wait(self, now: float) -> float:
        """Seconds until the next fetch is due."""
        return max(0.0, self.next_fetch - now)

    def reconnected(self, now: float) -> None:
        """A node answered the publisher after a call to it had failed: the
        configuration may have changed meanwhile. Fetch soon, but not twice
        within ``min_gap`` (a flapping node reconnects often)."""
        soonest = now if self.last_fetch is None else self.last_fetch + self.min_gap
        self.next_fetch = min(self.next_fetch, max(now, soonest))

    def request_topics(self):
        self.topics_changed = False
        return sorted(self.topics)

    def fetched(self, config: Optional[ClientConfig], now: float) -> None:
        """A node answered a fetch (``config`` None: with an error)."""
        if config is not None and config.refresh_interval:
            self.refresh = max(config.refresh_interval, self.min_gap)
        self.last_fetch = now
        self.next_fetch = now + self.refresh

    def answered(self, response, now: float) -> ClientConfig:
        """A fetch succeeded: the configuration in ``response``."""
        config = config_from_proto(response)
        self.fetched(config, now)
        self.last_logged = None
        return config

    def failed(self, code, details: str, now: float) -> Optional[str]:
        """A fetch failed with status ``code``: returns the warning to log,
        or None. No answer (UNAVAILABLE, DEADLINE_EXCEEDED): ask again after
        ``retry``, silently. A node's error (UNIMPLEMENTED: an older ferryd;
        PERMISSION_DENIED, ...): ask again after the refresh interval; said
        once until a fetch succeeds, since a node repeats it every time."""
        self.last_fetch = now
        if code in NO_ANSWER:
            self.next_fetch = now + self.retry
            return None
        self.next_fetch = now + self.refresh
        if (code, details) == self.last_logged:
            return None
        self.last_logged = (code, details)
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return ("ferry: the node does not offer GetClientConfig (older ferryd): "
                    "no pushed settings, no fallback")
        return "ferry: client configuration: %s" % details
