"""The threads of ``ferry.Publisher(fallback=True)``: a node publisher (the
Ferry path), direct producers (confluent-kafka) and a probe of the nodes,
around the I/O-free :class:`ferry._fallback_core.FallbackCore`.

Threading: ``publish``/``flush``/``stats`` run on application threads and only
queue work under ``_cond``. One router thread sends every message on its path
(so a key's released messages go out in order) and completes the futures; the
node publisher's callbacks, the direct producers' poll threads and the probe
thread only queue news under ``_cond``. ``_cond`` is never held across a send
(the node publisher may block when full) nor while completing a future.
"""
import concurrent.futures
import logging
import threading
import time
from typing import Dict, NamedTuple, Optional

import grpc

from ferry import _common, _outgoing
from ferry._client_config import NO_ANSWER, ConfigSchedule
from ferry._direct import DirectProducer
from ferry._fallback_core import DIRECT, FallbackCore
from ferry._publisher_core import resolve
from ferry.errors import FerryError, Unavailable
from ferry.v1 import admin_pb2, admin_pb2_grpc

log = logging.getLogger("ferry")

#: How often the nodes are probed (GetNode), and each probe's deadline.
PROBE_INTERVAL = 0.5
#: Deadline of one GetClientConfig call.
FETCH_TIMEOUT = 5.0
#: How long the constructor waits for the first probe round, so that pushed
#: settings apply from the first message (a tier that is down answers at
#: once: connection refused).
FIRST_CONFIG_WAIT = 2.0


class PublisherStats(NamedTuple):
    """Counters of a publisher's two paths, and the settings in effect."""
    ferry_messages: int      # acknowledged through the nodes
    direct_messages: int     # acknowledged straight from the cluster
    fallback_active: bool    # new messages go straight to the cluster now
    config_fetched: bool     # a node handed out the client configuration
    node_batches: int        # batch calls sent to the nodes (retries included)
    linger: float
    max_batch_messages: int
    max_batch_bytes: int
    request_timeout: float
    delivery_timeout: float


class FallbackPublisher:
    def __init__(self, node_publisher_factory, targets, fallback_after, client_id,
                 explicit, credentials, channel_options, pushed_settings=True):
        """``node_publisher_factory()`` builds the ferry.Publisher of the
        Ferry path; it is called once the first probe round applied the
        pushed settings (``pushed_settings=False``: the client configuration
        is still fetched for fallback, its settings are ignored)."""
        self._follow = pushed_settings
        self._core = FallbackCore(fallback_after, explicit, follow=pushed_settings)
        self._schedule = ConfigSchedule()
        self._client_id = client_id or ""
        self._cond = threading.Condition()
        self._incoming = []
        self._outcomes = []
        self._probes = []
        self._stopping = False
        options = _common.channel_options(list(channel_options or []) + [
            # Reconnect attempts no further apart than a probe round, so a
            # node that returns is seen within about one round.
            ("grpc.initial_reconnect_backoff_ms", int(PROBE_INTERVAL * 1000)),
            ("grpc.max_reconnect_backoff_ms", int(PROBE_INTERVAL * 1000)),
            ("grpc.min_reconnect_backoff_ms", int(PROBE_INTERVAL * 1000))])
        self._channels = _common.sync_channels(targets, credentials, options)
        self._admin = [admin_pb2_grpc.AdminStub(c) for c in self._channels]
        self._direct: Dict[str, DirectProducer] = {}   # by cluster; router thread only
        self._probe_stop = False
        self._probe_wake = threading.Event()
        self._probe_thread = threading.Thread(target=self._probe_loop, name="ferry-probe",
                                              daemon=True)
        self._probe_thread.start()
        with self._cond:
            self._cond.wait_for(lambda: self._probes, FIRST_CONFIG_WAIT)
        self._node = node_publisher_factory()
        self._node.apply_settings(self._pushed())
        self._router = threading.Thread(target=self._run, name="ferry-fallback", daemon=True)
        self._router.start()

    # -- application threads ------------------------------------------------

    def publish(self, topic, message, size, okey) -> concurrent.futures.Future:
        future = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        with self._cond:
            if self._stopping:
                resolve(future, Unavailable("publisher closed", retryable=False))
                return future
            self._incoming.append(self._core.add(topic, message, size, okey, future))
            self._cond.notify_all()
        return future

    def publish_many(self, core, topic, messages, future) -> concurrent.futures.Future:
        """publish_many with fallback: each message takes its own path, as
        if published alone; ``future`` gets the list of outcomes."""
        chunks, count, _ = core.prepare_many(topic, messages)
        handle = _outgoing.ManyResults(future, count)
        if not count:
            future.set_result([])
        for okey, positions, values, ids, records, _ in chunks:
            if records is None:
                records = [_outgoing.Outgoing(v, b"", b"", [], i, None)
                           for v, i in zip(values, ids)]
            for position, record in zip(positions, records):
                one = self.publish(topic, record, _outgoing.record_size(record), okey)
                one.add_done_callback(lambda f, p=position: handle.fill(
                    (p,), [f.exception() or f.result()]))
        return future

    def flush(self, timeout: Optional[float]) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            watermark = self._core.last_token
            while not self._core.flushed(watermark):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout: float) -> bool:
        flushed = self.flush(timeout)
        with self._cond:
            if self._stopping:
                return flushed
            self._stopping = True
            self._cond.notify_all()
        self._router.join()
        self._probe_stop = True
        self._probe_wake.set()
        self._probe_thread.join()
        for channel in self._channels:
            channel.close()
        return flushed

    def stats(self) -> PublisherStats:
        with self._cond:
            core = self._core
            stats = (core.ferry_messages, core.direct_messages, core.active,
                     core.config is not None)
        node = self._node.stats()
        return PublisherStats(*stats, node.node_batches, *node[-5:])

    def _pushed(self):
        with self._cond:
            config = self._core.config
        return None if config is None or not self._follow else config.settings

    # -- router thread --------------------------------------------------------

    def _run(self):
        core = self._core
        while True:
            with self._cond:
                # The timeout lets the switch to fallback happen on time
                # without news.
                self._cond.wait_for(lambda: (self._incoming or self._outcomes or self._probes
                                             or self._stopping), 0.05)
                incoming, self._incoming = self._incoming, []
                outcomes, self._outcomes = self._outcomes, []
                probes, self._probes = self._probes, []
                stopping = self._stopping
                sends, resolutions = core.step(incoming, outcomes, probes, time.monotonic())
                if resolutions:
                    self._cond.notify_all()
                if core.new_topics:
                    while core.new_topics:
                        self._schedule.want_topic(core.new_topics.popleft())
                    self._probe_wake.set()  # fetch the new topic's configuration now
            self._act(sends, resolutions)
            if stopping:
                break
            with self._cond:
                idle = core.idle_direct()
            if idle and self._direct:
                self._close_direct(timeout=0.0)
        self._shut_down()

    def _act(self, sends, resolutions):
        for entry, path in sends:
            if path == DIRECT:
                self._send_direct(entry)
            else:
                self._send_node(entry)
        for entry, outcome in resolutions:
            resolve(entry.handle, outcome)

    def _send_node(self, entry):
        token = entry.token
        try:
            self._node.publish_prepared_callback(
                entry.topic, entry.message, entry.size, entry.okey and entry.okey[1],
                lambda outcome: self._queue_outcome(token, outcome))
        except FerryError as e:
            self._queue_outcome(token, e)

    def _send_direct(self, entry):
        token = entry.token
        done = lambda outcome: self._queue_outcome(token, outcome)  # noqa: E731
        try:
            producer = self._direct_producer(entry.topic)
            with self._cond:
                unknown = (entry.okey is not None
                           and self._core.target(entry.topic).partitions <= 0)
            if unknown:
                learned = producer.partitions(entry.topic)
                with self._cond:
                    self._core.learn_partitions(entry.topic, learned)
            with self._cond:
                partition = self._core.direct_partition(entry)
        except FerryError as e:
            done(e)
            return
        producer.publish(entry.topic, entry.message, partition, done)

    def _direct_producer(self, topic) -> DirectProducer:
        """The producer on the topic's write cluster (created on first use).
        Raises FerryError."""
        with self._cond:
            target = self._core.target(topic)
            settings = self._core.settings()
        if target is None:
            raise Unavailable("no client configuration for topic %s" % topic)
        producer = self._direct.get(target.cluster)
        if producer is None:
            producer = DirectProducer(target, settings.linger, settings.delivery_timeout)
            self._direct[target.cluster] = producer
        return producer

    def _queue_outcome(self, token, outcome):
        with self._cond:
            self._outcomes.append((token, outcome))
            self._cond.notify_all()

    def _close_direct(self, timeout):
        producers, self._direct = self._direct, {}
        for producer in producers.values():
            producer.close(timeout)

    def _shut_down(self):
        """Closing: the node publisher and the direct producers fail what they
        hold (reported as outcomes), then what is left fails here."""
        self._node.close(0)
        self._close_direct(timeout=0.0)
        with self._cond:
            outcomes, self._outcomes = self._outcomes, []
            self._core.closing = True
            sends, resolutions = self._core.step([], outcomes, [], time.monotonic())
            resolutions += self._core.close()
            self._cond.notify_all()
        self._act(sends, resolutions)

    # -- probe thread ---------------------------------------------------------

    def _probe_loop(self):
        while True:
            started = time.monotonic()
            answered = self._probe_round()
            with self._cond:
                fetch = self._schedule.should_fetch(answered is not None, time.monotonic())
            if fetch:
                self._fetch(answered)
            with self._cond:
                # After the fetch: the first round's news carries the config.
                self._probes.append(answered is not None)
                self._cond.notify_all()
            self._probe_wake.wait(max(0.0, started + PROBE_INTERVAL - time.monotonic()))
            self._probe_wake.clear()
            if self._probe_stop:
                return

    def _probe_round(self) -> Optional[int]:
        """The index of a node that answered, or None."""
        for index, stub in enumerate(self._admin):
            try:
                stub.GetNode(admin_pb2.GetNodeRequest(), timeout=PROBE_INTERVAL)
                return index
            except grpc.RpcError as e:
                if e.code() not in NO_ANSWER:
                    return index
        return None

    def _fetch(self, index):
        with self._cond:
            topics = self._schedule.request_topics()
            report = self._core.take_report()
        request = admin_pb2.GetClientConfigRequest(topics=topics, client_id=self._client_id,
                                                   fallback_messages=report)
        try:
            response = self._admin[index].GetClientConfig(request, timeout=FETCH_TIMEOUT)
        except grpc.RpcError as e:
            with self._cond:
                self._core.unreported += report
                warning = self._schedule.failed(e.code(), e.details(), time.monotonic())
            if warning:
                log.warning("%s", warning)
            return
        with self._cond:
            config = self._schedule.answered(response, time.monotonic())
            self._core.on_config(config)
            node = getattr(self, "_node", None)
        if node is not None:
            node.apply_settings(self._pushed())
