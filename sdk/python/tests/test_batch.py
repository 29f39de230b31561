"""The forms without a future or a call per message (Publisher.publish_many,
publish with a callback, Subscriber.receive_batch and MessageBatch.ack/nack),
sync and asyncio, against a real ferryd on Kafka and on the embedded store."""
import asyncio
import collections
import threading
import time

import pytest

import ferry
import ferry.aio
from conftest import create_topic, unique


@pytest.fixture(params=["kafka", "embedded"])
def backend_node(request):
    return request.getfixturevalue("node" if request.param == "kafka" else "embedded_node")


def items(count):
    """Values alone, (value, key) and (value, key, headers): every item form."""
    out = []
    for i in range(count):
        value = b"b-%d" % i
        if i % 3 == 0:
            out.append(value)
        elif i % 3 == 1:
            out.append((value, "k%d" % (i % 5)))
        else:
            out.append((value, "k%d" % (i % 5), {"n": str(i)}))
    return out


def test_publish_many_then_receive_batch_round_trip(backend_node):
    endpoint = backend_node.endpoint
    topic = create_topic(endpoint, unique("py-batch"), 3)
    sent = items(600)
    with ferry.Publisher([endpoint], max_batch_messages=100) as pub:
        results = pub.publish_many(topic, sent).result(60)
        assert pub.publish_many(topic, []).result(10) == []
    assert len(results) == 600
    assert all(isinstance(r, ferry.PublishResult) and r.cluster == "main" for r in results)
    # Per key: one partition, offsets in call order.
    per_key = collections.defaultdict(list)
    for item, result in zip(sent, results):
        if isinstance(item, tuple):
            per_key[item[1]].append(result)
    for rs in per_key.values():
        assert len({r.partition for r in rs}) == 1
        assert [r.offset for r in rs] == sorted(r.offset for r in rs)

    group = unique("g")
    got = {}
    batches = 0
    with ferry.Subscriber([endpoint], group, [topic], start="earliest",
                          ack_batch=(10000, 3600)) as sub:
        deadline = time.monotonic() + 60
        while len(got) < 600 and time.monotonic() < deadline:
            batch = sub.receive_batch(timeout=1)
            if batch is None:
                continue
            batches += 1
            assert batch.values == [m.value for m in batch]
            for m in batch:
                got[m.value] = m
            batch.ack()
    assert len(got) == 600 and batches < 600  # more than one message per batch
    assert sub.stats().acks_sent == 600  # in close's flush: the huge ack_batch delay
    for i, result in enumerate(results):
        m = got[b"b-%d" % i]
        assert (m.partition, m.offset) == (result.partition, result.offset)
        assert m.key == (None if i % 3 == 0 else b"k%d" % (i % 5))
        assert m.headers.get("n") == (b"%d" % i if i % 3 == 2 else None)
    assert len({m.id for m in got.values()}) == 600
    # Acked and committed: the group gets nothing more.
    time.sleep(0.5)
    with ferry.Subscriber([endpoint], group, [topic], start="earliest") as again:
        assert again.receive_batch(timeout=4) is None


def test_publish_many_reports_each_messages_error_in_its_place(node):
    with ferry.Publisher([node.endpoint]) as pub:
        results = pub.publish_many(unique("no-such-topic"), [b"a", (b"b", "k")]).result(30)
        assert [type(r) for r in results] == [ferry.NotFound, ferry.NotFound]
        with pytest.raises(TypeError):
            pub.publish_many("t", [b"a", 1])


def test_publish_with_a_callback_reports_each_outcome_without_a_future(node, topic_factory):
    topic = topic_factory()
    outcomes = []
    done = threading.Event()

    def record(outcome):
        outcomes.append(outcome)
        if len(outcomes) == 201:
            done.set()
        if len(outcomes) == 1:
            raise RuntimeError("logged; the publisher goes on")

    with ferry.Publisher([node.endpoint]) as pub:
        for i in range(200):
            assert pub.publish(topic, b"cb-%d" % i, key="k%d" % (i % 3), callback=record) is None
        pub.publish(unique("no-such-topic"), b"x", callback=record)
        assert pub.flush(30)
    assert done.wait(10)
    assert sum(isinstance(o, ferry.PublishResult) for o in outcomes) == 200
    assert [type(o) for o in outcomes if not isinstance(o, ferry.PublishResult)] == [
        ferry.NotFound]


def test_batch_nack_redelivers_every_message_of_the_batch(node, topic_factory):
    topic = topic_factory(partitions=1)
    with ferry.Publisher([node.endpoint]) as pub:
        pub.publish_many(topic, [b"n%d" % i for i in range(20)]).result(30)
    attempts = collections.defaultdict(list)
    with ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest") as sub:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                len(attempts[b"n%d" % i]) == 2 for i in range(20)):
            batch = sub.receive_batch(timeout=0.5)
            if batch is None:
                continue
            for m in batch:
                attempts[m.value].append(m.delivery_attempt)
            if all(m.delivery_attempt == 1 for m in batch):
                batch.nack()
            else:
                batch.ack()
    assert {v: a[:2] for v, a in attempts.items()} == {b"n%d" % i: [1, 2] for i in range(20)}


def test_aio_publish_many_and_receive_batch(backend_node):
    endpoint = backend_node.endpoint
    topic = create_topic(endpoint, unique("py-aio-batch"), 2)

    async def main():
        async with ferry.aio.Publisher([endpoint]) as pub:
            results = await pub.publish_many(topic, items(300))
            later = pub.publish_many_nowait(topic, [b"late-%d" % i for i in range(50)])
            assert await pub.flush(30) and later.done()
        assert all(isinstance(r, ferry.PublishResult) for r in results + later.result())
        want = {b"b-%d" % i for i in range(300)} | {b"late-%d" % i for i in range(50)}
        seen = set()
        async with ferry.aio.Subscriber([endpoint], unique("g"), [topic],
                                        start="earliest") as sub:
            while not want <= seen:
                batch = await sub.receive_batch(timeout=30)
                assert batch is not None
                seen.update(batch.values)
                batch.ack()
            assert sub.stats().received >= 350

    asyncio.run(asyncio.wait_for(main(), 120))


def test_callback_api_hands_a_backlog_out_in_chunks_each_message_once_and_auto_acked(
        node, topic_factory):
    topic = topic_factory(partitions=2)
    group = unique("g")
    with ferry.Publisher([node.endpoint]) as pub:
        pub.publish_many(topic, [b"c%d" % i for i in range(3000)]).result(60)
    seen = collections.Counter()
    threads = set()
    lock = threading.Lock()
    done = threading.Event()

    def handle(message):
        with lock:
            seen[message.value] += 1
            threads.add(threading.get_ident())
            if len(seen) == 3000:
                done.set()

    sub = ferry.Subscriber([node.endpoint], group, [topic], start="earliest", callback=handle,
                           handler_threads=3)
    assert done.wait(60)
    sub.close()
    assert seen == {b"c%d" % i: 1 for i in range(3000)} and len(threads) > 1
    assert sub.stats().acks_sent == 3000
    time.sleep(0.5)  # every auto-ack was sent and committed: the group has nothing left
    with ferry.Subscriber([node.endpoint], group, [topic], start="earliest") as again:
        assert again.receive(timeout=4) is None


def test_batch_and_in_order_acks_commit_the_group_by_span_or_by_receipt(node, topic_factory):
    # A node that marks receipt runs gets spans, an older one receipts: either
    # way every ack is applied and the group commits past every message.
    topic = topic_factory(partitions=2)
    group = unique("g")
    with ferry.Publisher([node.endpoint]) as pub:
        pub.publish_many(topic, [(b"s%d" % i, "k%d" % (i % 7)) for i in range(2000)]).result(60)
    seen = set()
    with ferry.Subscriber([node.endpoint], group, [topic], start="earliest") as sub:
        deadline = time.monotonic() + 60
        while len(seen) < 2000 and time.monotonic() < deadline:
            batch = sub.receive_batch(timeout=1)
            if batch is None:
                continue
            seen.update(batch.values)
            if len(seen) % 2:
                batch.ack()
            else:
                for message in batch:  # in order: joined into spans where runs allow
                    message.ack()
    assert len(seen) == 2000
    stats = sub.stats()
    assert stats.acks_sent == stats.received and stats.receipt_failures == 0
    time.sleep(0.5)
    with ferry.Subscriber([node.endpoint], group, [topic], start="earliest") as again:
        assert again.receive(timeout=4) is None
