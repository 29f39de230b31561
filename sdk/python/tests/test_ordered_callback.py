"""The callback API with key and partition ordering, on both subscriber
paths (the ``subscriber_path`` fixture), against a real ferryd: per chain
(key or partition) one call at a time in delivery order, chains in parallel,
keyless messages outside any chain, auto-ack and nack, redelivery in order,
close from a callback and from another thread."""
import collections
import threading
import time

import pytest

import ferry
from conftest import unique


def publish_keyed(endpoint, topic, keys, per_key, keyless=0):
    """``per_key`` messages ``b"key:n"`` of each key, interleaved, then
    ``keyless`` messages ``b"-:n"`` without a key; returns their count."""
    items = [(b"%s:%d" % (key.encode(), n), key) for n in range(per_key) for key in keys]
    items += [b"-:%d" % n for n in range(keyless)]
    with ferry.Publisher([endpoint]) as pub:
        outcomes = pub.publish_many(topic, items).result(30)
    assert all(isinstance(o, ferry.PublishResult) for o in outcomes), outcomes[:3]
    return len(items)


def number(message):
    return int(message.value.split(b":")[1])


class Calls:
    """Records handler calls per chain (``chain(message)``): notes two calls
    of one chain at once, and a call whose ``position(message)`` is below
    the chain's last one (equal: a redelivery)."""

    def __init__(self, chain, position, want):
        self.chain, self.position, self.want = chain, position, want
        self.lock = threading.Lock()
        self.active = collections.Counter()
        self.last = {}
        self.calls = collections.Counter()
        self.problems = []
        self.max_parallel = 0
        self.done = threading.Event()

    def enter(self, message):
        chain, at = self.chain(message), self.position(message)
        with self.lock:
            self.active[chain] += 1
            if self.active[chain] > 1:
                self.problems.append("%r: calls overlap" % (chain,))
            if at < self.last.get(chain, at):
                self.problems.append("%r: %d after %d" % (chain, at, self.last[chain]))
            self.last[chain] = at
            self.max_parallel = max(self.max_parallel, sum(self.active.values()))

    def leave(self, message):
        with self.lock:
            self.active[self.chain(message)] -= 1
            self.calls[message.value] += 1
            if len(self.calls) >= self.want:
                self.done.set()


def chains_of(ordering, total):
    if ordering == "key":
        return Calls(lambda m: m.key, number, total)
    return Calls(lambda m: m.partition, lambda m: m.offset, total)


@pytest.mark.parametrize("ordering", ["key", "partition"])
def test_chain_calls_never_overlap_nor_reorder(node, topic_factory, subscriber_path, ordering):
    # Each call acks its message first (sent at once: ack_batch) and then
    # goes on working: the node hands out the chain's next message
    # meanwhile and a handler thread is free for it (more threads than
    # chains), so only the subscriber's chain keeps it from running beside
    # this one (or before it).
    topic = topic_factory(partitions=3)
    total = publish_keyed(node.endpoint, topic, ["k%d" % i for i in range(6)], per_key=30)
    calls = chains_of(ordering, total)

    def handle(message):
        calls.enter(message)
        message.ack()
        time.sleep(0.01)
        calls.leave(message)

    sub = ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest",
                           ordering=ordering, callback=handle, handler_threads=8,
                           ack_batch=(1, 0.001))
    try:
        assert sub.native == subscriber_path
        assert calls.done.wait(60), "handled %d of %d" % (len(calls.calls), total)
    finally:
        assert sub.close(10)
    assert not calls.problems, calls.problems[:5]
    assert calls.max_parallel > 1  # different chains do run in parallel
    assert_once_unless_reconnected(sub.stats(), calls.calls, total, total)


def assert_once_unless_reconnected(stats, calls, total, acks):
    """Every value handled; exactly once with ``acks`` acks sent when no
    stream broke (a reconnect redelivers what it had not acked yet)."""
    assert len(calls) == total, stats
    if not stats.reconnects:
        assert set(calls.values()) == {1} and stats.acks_sent == acks, stats
    else:
        assert stats.acks_sent + stats.dropped_settlements >= acks, stats


def test_redelivery_after_nack_or_raise_keeps_key_order(node, topic_factory, subscriber_path):
    topic = topic_factory(partitions=2)
    per_key = 20
    total = publish_keyed(node.endpoint, topic, ["k%d" % i for i in range(6)], per_key)
    calls = chains_of("key", total)
    retried = set()

    def handle(message):
        calls.enter(message)
        try:
            n = number(message)
            if message.delivery_attempt == 1 and n % 7 == 3:
                retried.add(message.value)
                message.nack()  # settled: no auto-ack
            elif message.delivery_attempt == 1 and n % 7 == 5:
                retried.add(message.value)
                raise RuntimeError("first try fails")  # nacked
        finally:
            calls.leave(message)

    sub = ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest",
                           ordering="key", callback=handle, handler_threads=3)
    try:
        assert sub.native == subscriber_path
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                len(calls.calls) == total and all(calls.calls[v] == 2 for v in retried)):
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        assert sub.close(10)
    assert not calls.problems, calls.problems[:5]
    assert retried
    stats = sub.stats()
    assert all(calls.calls[v] >= 2 for v in retried), stats
    assert_once_unless_reconnected(
        stats, {v: n - (v in retried) for v, n in calls.calls.items()}, total, total)
    assert stats.nacks_sent == len(retried) or stats.reconnects, stats


def handled_while_one_call_blocks(node, topic, subscriber_path, blocking, enough):
    """Key ordering, two handler threads; the call of ``blocking`` blocks
    until released. ``enough(values handled so far)`` must turn True within
    10 s while that call still blocks."""
    release, done = threading.Event(), threading.Event()
    lock = threading.Lock()
    seen = []

    def handle(message):
        with lock:
            seen.append(message.value)
            if enough(seen):
                done.set()
        if message.value == blocking:
            release.wait(30)

    sub = ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest",
                           ordering="key", callback=handle, handler_threads=2)
    try:
        assert sub.native == subscriber_path
        assert done.wait(10) and not release.is_set(), (seen, sub.stats())
    finally:
        release.set()
        assert sub.close(10)


def test_keys_run_in_parallel_while_another_key_blocks(node, topic_factory, subscriber_path):
    # B:0, A:0, C:0, D:0 come in one response, two chunks for two handler
    # threads: [B:0, A:0] and [C:0, D:0]. A:0 blocks after B:0 returned on
    # the same thread; B:1 (handed out once B:0 is acked) runs on the idle
    # thread at once, not behind A:0.
    topic = topic_factory(partitions=1)
    items = [(b"%s:0" % k.encode(), k) for k in "BACD"] + [(b"B:1", "B")]
    with ferry.Publisher([node.endpoint]) as pub:
        pub.publish_many(topic, items).result(30)
    handled_while_one_call_blocks(node, topic, subscriber_path, b"A:0",
                                  lambda seen: b"B:1" in seen)


def test_keyless_messages_in_a_response_with_a_blocking_call_run_beside_it(
        node, topic_factory, subscriber_path):
    # One response: 10 keyless messages, A:0, whose call blocks, and 10
    # more; two handler threads. The keyless ones all run while A:0 still
    # blocks (they shared a chunk with it: A:0 and the next 9).
    topic = topic_factory(partitions=1)
    with ferry.Publisher([node.endpoint]) as pub:
        for items in ([b"-:%d" % n for n in range(10)], [(b"A:0", "A")],
                      [b"-:%d" % n for n in range(10, 20)]):
            pub.publish_many(topic, items).result(30)
    handled_while_one_call_blocks(
        node, topic, subscriber_path, b"A:0",
        lambda seen: sum(1 for v in seen if v.startswith(b"-:")) == 20)


def test_keyless_messages_are_not_held_behind_a_chain(node, topic_factory, subscriber_path):
    # A call of key "slow" acks and then blocks; the next "slow" message
    # waits for it, the keyless messages do not.
    topic = topic_factory(partitions=1)
    publish_keyed(node.endpoint, topic, ["slow"], per_key=1)
    entered, release = threading.Event(), threading.Event()
    lock = threading.Lock()
    seen = []
    keyless_done = threading.Event()

    def handle(message):
        with lock:
            seen.append(message.value)
            if sum(1 for v in seen if v.startswith(b"-:")) == 20:
                keyless_done.set()
        if message.value == b"slow:0":
            message.ack()
            entered.set()
            release.wait(30)

    sub = ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest",
                           ordering="key", callback=handle, handler_threads=2)
    try:
        assert sub.native == subscriber_path
        assert entered.wait(30)
        with ferry.Publisher([node.endpoint]) as pub:
            pub.publish(topic, b"slow:1", key="slow").result(30)
            pub.publish_many(topic, [b"-:%d" % n for n in range(20)]).result(30)
        assert keyless_done.wait(30), seen
        time.sleep(0.3)
        with lock:
            assert b"slow:1" not in seen  # behind slow:0, still running
        release.set()
        deadline = time.monotonic() + 30
        while b"slow:1" not in seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert b"slow:1" in seen
    finally:
        release.set()
        assert sub.close(10)


def test_close_from_another_thread_nacks_what_waits_in_chains(node, topic_factory,
                                                              subscriber_path):
    # The calls of key "a" ack at once and block: "a:1" (the node hands out
    # a key's next message once the previous one is acked) arrives and
    # waits in its chain. close() nacks it and waits for the running call;
    # the group gets "a:1".."a:4" again, in order.
    topic = topic_factory(partitions=1)
    publish_keyed(node.endpoint, topic, ["a"], per_key=5)
    group = unique("g")
    entered, release = threading.Event(), threading.Event()
    seen = []

    def handle(message):
        seen.append(message.value)
        message.ack()
        entered.set()
        release.wait(30)

    sub = ferry.Subscriber([node.endpoint], group, [topic], start="earliest",
                           ordering="key", callback=handle, handler_threads=2, close_timeout=10)
    assert sub.native == subscriber_path
    assert entered.wait(30)
    time.sleep(0.5)  # a:1 reaches the subscriber and waits behind a:0
    closer = threading.Thread(target=lambda: seen.append(sub.close()))
    closer.start()
    time.sleep(0.3)
    release.set()
    closer.join(15)
    assert seen == [b"a:0", True], seen
    again = []
    with ferry.Subscriber([node.endpoint], group, [topic], start="earliest",
                          ordering="key") as sub2:
        while len(again) < 4:
            message = sub2.receive(timeout=30)
            assert message is not None, again
            again.append(message.value)
            message.ack()
    assert again == [b"a:%d" % n for n in range(1, 5)]


def test_close_from_a_callback(node, topic_factory, subscriber_path):
    topic = topic_factory(partitions=2)
    total = publish_keyed(node.endpoint, topic, ["k%d" % i for i in range(4)], per_key=10)
    lock = threading.Lock()
    calls, closed = [], []
    holder = []

    def handle(message):
        with lock:
            calls.append(message.value)
            first = len(calls) == 3
        if first:
            closed.append(holder[0].close())

    sub = ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest",
                           ordering="key", callback=handle, handler_threads=2)
    holder.append(sub)
    assert sub.native == subscriber_path
    deadline = time.monotonic() + 30
    while not closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert closed == [False]  # from a callback: it does not wait for callbacks
    time.sleep(0.5)
    settled = len(calls)
    time.sleep(0.5)
    # Chunks queued before close still run (both paths); nothing after them.
    assert len(calls) == settled < total
    assert sub.close(10)
