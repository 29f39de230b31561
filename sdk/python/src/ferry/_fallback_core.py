"""Fallback publishing's decisions, without I/O: which path (the Ferry nodes,
or straight to the cluster) carries each message, per-key order across a
switch, the pushed settings in effect, the counters.

The shell (:mod:`ferry._fallback`) owns the threads, the lock, the node
publisher, the direct producers and the probe calls; it feeds news in and
acts on what comes out, like :class:`ferry._publisher_core.PublisherCore`::

    entry = core.add(topic, message, handle)      # under the shell's lock
    sends, resolutions = core.step(news..., now)  # router thread, under the lock
    for entry, path in sends: publish it on `path` (in this order, one thread)
    for entry, outcome in resolutions: complete entry.handle

Same rules as the C++ SDK (sdk/cpp/src/fallback_router.h,
fallback_publisher.cc).
"""
import collections
import sys
from typing import Deque, Dict, List, Optional, Tuple

from ferry import _types
from ferry._client_config import ClientConfig, PushedSettings, java_partition
from ferry.errors import FerryError, Unavailable

FERRY = "ferry"
DIRECT = "direct"

#: The SDK's own defaults of the settings an operator may push.
DEFAULT_SETTINGS = PushedSettings(linger=0.005, max_batch_messages=500,
                                  max_batch_bytes=1 << 20, request_timeout=30.0,
                                  delivery_timeout=120.0)


def effective_settings(explicit: PushedSettings, pushed: Optional[PushedSettings]):
    """Per setting: the application's (``explicit``, None where it set
    nothing), else the pushed one, else the SDK default."""
    values = []
    for name in PushedSettings._fields:
        own = getattr(explicit, name)
        pushed_value = None if pushed is None else getattr(pushed, name)
        values.append(own if own is not None else
                      pushed_value if pushed_value is not None else
                      getattr(DEFAULT_SETTINGS, name))
    return PushedSettings(*values)


class _KeyState:
    __slots__ = ("path", "in_flight", "waiting")

    def __init__(self):
        self.path = FERRY
        self.in_flight = 0
        self.waiting: List[int] = []   # tokens, ascending


class FallbackRouter:
    """Health and per-key order. New messages take the direct path once no
    node answered for ``fallback_after`` seconds since the first failed probe,
    and the Ferry path again as soon as one answers. Each path keeps a key's
    order by itself (one batch per key in flight; the idempotent producer),
    so a key's message joins its key on the path its in-flight messages use,
    and otherwise waits until they all finished. Tokens increase in publish
    order; unordered messages (key None) never wait. O(1) per message."""

    def __init__(self, fallback_after: float):
        self.fallback_after = fallback_after
        self.unreachable_since: Optional[float] = None
        self.keys: Dict[bytes, _KeyState] = {}
        self.waiting = 0

    def node_answered(self) -> None:
        self.unreachable_since = None

    def node_unreachable(self, now: float) -> None:
        if self.unreachable_since is None:
            self.unreachable_since = now

    def current(self, now: float) -> str:
        if (self.unreachable_since is not None
                and now - self.unreachable_since >= self.fallback_after):
            return DIRECT
        return FERRY

    def admit(self, token: int, key, wanted: str) -> Optional[str]:
        """The path to send on now, or None: it waits for finish()."""
        if key is None:
            return wanted
        state = self.keys.get(key)
        if state is None:
            state = self.keys[key] = _KeyState()
        if state.in_flight == 0 or (not state.waiting and state.path == wanted):
            state.path = wanted
            state.in_flight += 1
            return wanted
        state.waiting.append(token)
        self.waiting += 1
        return None

    def finish(self, key, resend: Optional[int], wanted: str) -> Tuple[str, List[int]]:
        """A message of ``key`` finished on its path; ``resend``: it failed
        and goes again on ``wanted`` ahead of the key's later messages.
        Returns (path, tokens that go now in this order)."""
        if key is None:
            return wanted, [] if resend is None else [resend]
        state = self.keys.get(key)
        if state is None:
            return wanted, []
        state.in_flight -= 1
        if resend is not None:
            # In token order: an earlier message may fail after a later one.
            waiting = state.waiting
            index = len(waiting)
            while index > 0 and waiting[index - 1] > resend:
                index -= 1
            waiting.insert(index, resend)
            self.waiting += 1
        if state.in_flight > 0:
            return wanted, []
        if not state.waiting:
            del self.keys[key]
            return wanted, []
        released, state.waiting = state.waiting, []
        self.waiting -= len(released)
        state.path = wanted
        state.in_flight = len(released)
        return wanted, released


class FallbackEntry:
    """One message of a fallback publisher."""
    __slots__ = ("token", "topic", "message", "size", "okey", "path", "handle")

    def __init__(self, token, topic, message, size, okey, handle):
        self.token = token
        self.topic = topic
        self.message = message  # _outgoing.Outgoing, id set
        self.size = size
        self.okey = okey        # (topic, ordering key or key) or None
        self.path = FERRY
        self.handle = handle


Resolution = Tuple[FallbackEntry, object]  # (entry, PublishResult or FerryError)


class FallbackCore:
    """State of one fallback publisher (see the module doc)."""

    def __init__(self, fallback_after: float, explicit: PushedSettings, warn=None,
                 follow: bool = True):
        """``follow=False``: the pushed settings are ignored (the application
        opted out); the configuration still serves fallback."""
        if fallback_after <= 0:
            raise ValueError("fallback_after must be > 0 seconds")
        self.router = FallbackRouter(fallback_after)
        self.explicit = explicit
        self.follow = follow
        self.config: Optional[ClientConfig] = None
        self.entries: Dict[int, FallbackEntry] = collections.OrderedDict()
        self.last_token = 0
        self.ferry_messages = 0
        self.direct_messages = 0
        self.unreported = 0      # direct messages not yet reported to a node
        self.direct_in_flight = 0
        self.active = False
        self.closing = False
        self.new_topics: Deque[str] = collections.deque()
        self._known_topics = set()
        self._warned = set()
        self._warn = warn or (lambda text: print(text, file=sys.stderr))

    # -- input (any thread, under the shell's lock) -------------------------

    def add(self, topic, message, size, okey, handle) -> FallbackEntry:
        self.last_token += 1
        entry = FallbackEntry(self.last_token, topic, message, size,
                              None if okey is None else (topic, okey), handle)
        self.entries[entry.token] = entry
        return entry

    def flushed(self, watermark: int) -> bool:
        return not self.entries or next(iter(self.entries)) > watermark

    def settings(self) -> PushedSettings:
        pushed = None if self.config is None or not self.follow else self.config.settings
        return effective_settings(self.explicit, pushed)

    def on_config(self, config: ClientConfig) -> None:
        self.config = config

    def take_report(self) -> int:
        count, self.unreported = self.unreported, 0
        return count

    # -- the router thread ----------------------------------------------------

    def step(self, incoming: List[FallbackEntry], outcomes, probes: List[bool], now: float):
        """Applies probe results, routes new messages and handles finished
        ones (``outcomes``: (token, PublishResult or FerryError)). Returns
        (sends, resolutions): sends are (entry, path) in the order to send."""
        for answered in probes:
            if answered:
                self.router.node_answered()
            else:
                self.router.node_unreachable(now)
        self.active = self.router.current(now) == DIRECT
        sends: List[Tuple[FallbackEntry, str]] = []
        resolutions: List[Resolution] = []
        for entry in incoming:
            if entry.topic not in self._known_topics:
                self._known_topics.add(entry.topic)
                self.new_topics.append(entry.topic)
            path = self.router.admit(entry.token, entry.okey, self.wanted(entry.topic, now))
            if path is not None:
                self._send(entry, path, sends, resolutions)
        for token, outcome in outcomes:
            self._on_outcome(token, outcome, now, sends, resolutions)
        return sends, resolutions

    def wanted(self, topic: str, now: float) -> str:
        """The path a new message of ``topic`` takes now."""
        if self.router.current(now) == FERRY:
            return FERRY
        target = None if self.config is None else self.config.topics.get(topic)
        if target is not None and target.fallback:
            return DIRECT
        if topic not in self._warned:
            self._warned.add(topic)
            why = ("no client configuration was fetched from a node for it" if target is None
                   else "its route does not allow fallback (ferry routes put --fallback) "
                        "or its cluster is not Kafka")
            self._warn("ferry-client: no node answers, but topic %s cannot fall back: %s; "
                       "its messages wait for the nodes" % (topic, why))
        return FERRY

    def target(self, topic: str):
        return None if self.config is None else self.config.topics.get(topic)

    def direct_partition(self, entry: FallbackEntry) -> Optional[int]:
        """The partition ferryd would pick for a keyed message (None: let the
        producer pick at random, as ferryd does for keyless ones). Raises
        Unavailable when the topic's partition count is unknown."""
        if entry.okey is None:
            return None
        target = self.target(entry.topic)
        if target is None or target.partitions <= 0:
            raise Unavailable("partition count of topic %s unknown: cannot place a keyed "
                              "message as ferryd would" % entry.topic)
        return java_partition(entry.okey[1], target.partitions)

    def learn_partitions(self, topic: str, partitions: int) -> None:
        """The direct producer read the topic's partition count itself."""
        target = self.target(topic)
        if target is not None and partitions > 0:
            self.config.topics[topic] = target._replace(partitions=partitions)

    def idle_direct(self) -> bool:
        """Back on the nodes and nothing in flight directly: the shell may
        close its direct producers."""
        return not self.active and self.direct_in_flight == 0

    def _send(self, entry, path, sends, resolutions):
        if self.closing:
            resolutions.append((entry, self._resolve(entry, _closed())))
            return
        entry.path = path
        if path == DIRECT:
            self.direct_in_flight += 1
        sends.append((entry, path))

    def _on_outcome(self, token, outcome, now, sends, resolutions):
        entry = self.entries.get(token)
        if entry is None:
            return
        if entry.path == DIRECT:
            self.direct_in_flight -= 1
        wanted = entry.path if self.closing else self.wanted(entry.topic, now)
        failed = isinstance(outcome, FerryError)
        if failed and outcome.retryable and entry.path == FERRY and wanted == DIRECT:
            # A node failed it during an outage: it goes again straight to
            # the cluster, ahead of its key's waiting messages (a node may
            # have written it after all: consumers drop the copy by ferry.id).
            path, tokens = self.router.finish(entry.okey, token, DIRECT)
        else:
            path, tokens = self.router.finish(entry.okey, None, wanted)
            resolutions.append((entry, self._resolve(entry, outcome)))
        for released in tokens:
            self._send(self.entries[released], path, sends, resolutions)

    def _resolve(self, entry, outcome):
        del self.entries[entry.token]
        if isinstance(outcome, FerryError):
            return outcome
        direct = entry.path == DIRECT
        if direct:
            self.direct_messages += 1
            self.unreported += 1
        else:
            self.ferry_messages += 1
        return _types.PublishResult(outcome.cluster, outcome.partition, outcome.offset,
                                    direct=direct)

    def close(self) -> List[Resolution]:
        """Fails what is left with "publisher closed"."""
        self.closing = True
        return [(e, self._resolve(e, _closed())) for e in list(self.entries.values())]


def _closed():
    return Unavailable("publisher closed", retryable=False)
