"""Issue 20 end to end in Python, on a real Kafka broker and two ferryd nodes:
a publisher with ``fallback=True`` publishes keyed messages through both
nodes; both are killed (kill -9); after ``fallback_after`` it publishes
straight to Kafka; one node restarts and traffic returns through Ferry. No
acknowledged message is lost, each key keeps its order in Kafka and lands in
the Java partitioner's partition. Also: a setting pushed at runtime reaches a
running publisher's node path, and a subscriber waits out the outage and then
gets what was published directly."""
import concurrent.futures
import time
import urllib.request
import uuid

import grpc
import pytest

import ferry
from ferry._client_config import java_partition
from ferry.v1 import publisher_pb2, publisher_pb2_grpc

from conftest import create_topic, started_pair
from helpers import batches_for, set_client_settings

confluent_kafka = pytest.importorskip("confluent_kafka")

PARTITIONS = 3
KEYS = 12


@pytest.fixture
def fallback_nodes(kafka, tmp_path_factory):
    """Two ferryd whose route lets SDKs fall back for pyfb-* topics. Their own
    control topic: the YAML seeds only a fresh one (the session's broker holds
    other tests' routes), and settings pushed here stay here."""
    yield from started_pair(kafka, tmp_path_factory, "pyfb", lambda suffix: [
        "routes.0.topic=pyfb-*", "routes.0.write=main", "routes.0.fallback=true",
        "client.refresh_interval=1s", "control.topic=__ferry_control_pyfb_" + suffix])


class Traffic:
    """Keyed messages every 5 ms, keys round-robin, value "key:seq"."""

    def __init__(self, publisher, topic):
        self.publisher = publisher
        self.topic = topic
        self.sent = []      # (key, seq, future)
        self.next_seq = [0] * KEYS

    def run(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            key = len(self.sent) % KEYS
            seq = self.next_seq[key]
            self.next_seq[key] += 1
            future = self.publisher.publish(self.topic, b"%d:%d" % (key, seq),
                                            key="key-%d" % key)
            self.sent.append((key, seq, future))
            time.sleep(0.005)


def read_all(bootstrap, topic):
    """Every record of the topic, per partition in offset order."""
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap,
                                         "group.id": "check-" + uuid.uuid4().hex[:6],
                                         "enable.auto.commit": False})
    try:
        ends = {p: consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, p),
                                                  timeout=10)[1]
                for p in range(PARTITIONS)}
        consumer.assign([confluent_kafka.TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        records = {p: [] for p in range(PARTITIONS)}
        deadline = time.monotonic() + 30
        while (any(len(records[p]) < ends[p] for p in records)
               and time.monotonic() < deadline):
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            records[msg.partition()].append(msg)
        return records
    finally:
        consumer.close()


def test_publishing_continues_straight_to_kafka_while_every_node_is_down(
        kafka, fallback_nodes):
    a, b = fallback_nodes
    topic = create_topic(a.endpoint, "pyfb-" + uuid.uuid4().hex[:8], PARTITIONS)
    publisher = ferry.Publisher([a.endpoint, b.endpoint], fallback=True, fallback_after=2,
                                delivery_timeout=4, request_timeout=1,
                                client_id="py-fallback-test")
    traffic = Traffic(publisher, topic)
    try:
        traffic.run(2)
        assert publisher.flush(10)
        stats = publisher.stats()
        assert stats.config_fetched and stats.direct_messages == 0
        assert stats.ferry_messages == len(traffic.sent)

        a.kill9()
        b.kill9()
        # Messages sent to the nodes before fallback_after fail after
        # delivery_timeout and go again directly; their keys' later messages
        # wait for them.
        traffic.run(8)
        stats = publisher.stats()
        assert stats.fallback_active and stats.direct_messages > 0

        a.start()  # at the same address
        ferry_before_return = publisher.stats().ferry_messages
        traffic.run(4)
        assert publisher.flush(30)
        stats = publisher.stats()
        assert not stats.fallback_active
        assert stats.ferry_messages > ferry_before_return
    finally:
        publisher.close(10)

    acked = {}  # ferry.id -> (key, seq, direct)
    for key, seq, future in traffic.sent:
        try:
            result = future.result(0)
        except ferry.FerryError:
            continue
        acked["%d:%d" % (key, seq)] = result
    direct = sum(1 for r in acked.values() if r.direct)
    assert direct > 0
    assert len(acked) > len(traffic.sent) * 9 // 10, "most messages are acknowledged"

    stored = set()
    last_seq = {}
    for partition, records in read_all(kafka.bootstrap, topic).items():
        for record in records:
            value = record.value().decode()
            if value in stored:
                continue  # a duplicate after a failover
            stored.add(value)
            assert partition == java_partition(record.key(), PARTITIONS), record.key()
            assert any(k == "ferry.id" for k, _ in record.headers() or [])
            if value not in acked:
                continue  # failed for the client: may be anywhere
            assert acked[value].partition == partition
            key, seq = (int(x) for x in value.split(":"))
            assert seq > last_seq.get(key, -1), "key %d out of order" % key
            last_seq[key] = seq
    lost = [v for v in acked if v not in stored]
    assert not lost, "acknowledged messages missing from Kafka: %s" % lost[:5]
    print("published %d, acknowledged %d (direct %d), lost 0"
          % (len(traffic.sent), len(acked), direct))

    # The restarted node heard of the fallback when the publisher reconnected.
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % a.http_port, timeout=5) as r:
        metrics = r.read().decode()
    assert "ferry_client_fallback_messages_total" in metrics
    assert "ferry_client_fallback_messages_total 0\n" not in metrics
    assert "client py-fallback-test published" in a.log_path.read_text()


def test_setting_pushed_at_runtime_reaches_the_node_path(fallback_nodes):
    a, b = fallback_nodes
    topic = create_topic(a.endpoint, "pyfb-" + uuid.uuid4().hex[:8], PARTITIONS)
    pushed = ferry.Publisher([a.endpoint, b.endpoint], fallback=True)
    own = ferry.Publisher([a.endpoint, b.endpoint], fallback=True, max_batch_messages=500)
    try:
        assert pushed.stats().max_batch_messages == 500  # the SDK default
        assert batches_for(pushed, topic, 200) <= 10

        set_client_settings(b.endpoint, max_batch_messages=5)
        deadline = time.monotonic() + 10  # client.refresh_interval is 1 s
        while pushed.stats().max_batch_messages != 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pushed.stats().max_batch_messages == 5
        assert batches_for(pushed, topic, 200) >= 40  # 200 messages, at most 5 a batch
        assert own.stats().max_batch_messages == 500  # the application's own wins
    finally:
        pushed.close(10)
        own.close(10)


def test_asyncio_publisher_falls_back_and_says_which_path_carried_a_message(
        kafka, fallback_nodes):
    import asyncio

    import ferry.aio

    a, b = fallback_nodes
    topic = create_topic(a.endpoint, "pyfb-" + uuid.uuid4().hex[:8], PARTITIONS)

    async def scenario():
        async with ferry.aio.Publisher([a.endpoint, b.endpoint], fallback=True,
                                       fallback_after=1, delivery_timeout=2) as publisher:
            through_node = await publisher.publish(topic, b"before", key="k-1")
            await asyncio.sleep(0.5)  # the configuration of the topic just used arrives
            a.kill9()
            b.kill9()
            await asyncio.sleep(1.5)
            direct = await publisher.publish(topic, b"during", key="k-1")
            return through_node, direct, publisher.stats()

    through_node, direct, stats = asyncio.run(scenario())
    assert not through_node.direct and direct.direct
    assert direct.partition == through_node.partition == java_partition(b"k-1", PARTITIONS)
    assert (stats.ferry_messages, stats.direct_messages) == (1, 1)


def test_publish_many_falls_back_message_by_message(kafka, fallback_nodes):
    a, b = fallback_nodes
    topic = create_topic(a.endpoint, "pyfb-" + uuid.uuid4().hex[:8], PARTITIONS)
    items = [b"plain", (b"keyed", "k-2"), (b"headed", "k-2", {"h": "1"})]
    with ferry.Publisher([a.endpoint, b.endpoint], fallback=True, fallback_after=1,
                         delivery_timeout=2) as publisher:
        through_nodes = publisher.publish_many(topic, items).result(30)
        time.sleep(0.5)  # the configuration of the topic just used arrives
        a.kill9()
        b.kill9()
        time.sleep(1.5)
        direct = publisher.publish_many(topic, items).result(30)
        stats = publisher.stats()
    assert all(isinstance(r, ferry.PublishResult) for r in through_nodes + direct)
    assert [r.direct for r in through_nodes + direct] == [False] * 3 + [True] * 3
    assert direct[1].partition == direct[2].partition == java_partition(b"k-2", PARTITIONS)
    assert through_nodes[1].partition == direct[1].partition
    assert (stats.ferry_messages, stats.direct_messages) == (3, 3)


def test_subscriber_waits_out_a_full_outage_and_gets_what_was_published_directly(
        fallback_nodes):
    """Consumers do not fall back: while no node answers they deliver nothing;
    when a node returns they reconnect and get everything published
    meanwhile, straight to Kafka by a fallback publisher."""
    a, b = fallback_nodes
    topic = create_topic(a.endpoint, "pyfb-" + uuid.uuid4().hex[:8], PARTITIONS)
    endpoints = [a.endpoint, b.endpoint]
    received = []

    def drain(subscriber, until):
        deadline = time.monotonic() + 60
        while not until() and time.monotonic() < deadline:
            m = subscriber.receive(timeout=0.2)
            if m is not None:
                received.append(m.value)
                m.ack()

    with ferry.Publisher(endpoints, fallback=True, fallback_after=1, delivery_timeout=2,
                         request_timeout=1) as publisher, \
            ferry.Subscriber(endpoints, "g-" + uuid.uuid4().hex[:6], [topic], start="earliest",
                             ack_deadline=10, reconnect_backoff=(0.1, 1.0)) as subscriber:
        before = [publisher.publish(topic, b"before-%d" % i, key="k-%d" % (i % KEYS))
                  for i in range(60)]
        for f in before:
            f.result(10)
        wanted = {b"before-%d" % i for i in range(60)}
        drain(subscriber, lambda: wanted <= set(received))
        assert wanted <= set(received)

        a.kill9()
        b.kill9()
        time.sleep(1.5)  # fallback_after
        during = [publisher.publish(topic, b"during-%d" % i, key="k-%d" % (i % KEYS))
                  for i in range(60)]
        assert all(f.result(10).direct for f in during)
        assert subscriber.receive(timeout=1.0) is None  # it waits for the tier

        a.start()  # at the same address
        wanted |= {b"during-%d" % i for i in range(60)}
        drain(subscriber, lambda: wanted <= set(received))
    missing = wanted - set(received)
    assert not missing, "never delivered after the outage: %s" % sorted(missing)[:5]


class _OlderNode(publisher_pb2_grpc.PublisherServicer):
    """A node that stores everything and offers no Admin service (as a
    ferryd from before GetClientConfig)."""

    def Publish(self, request, context):
        return publisher_pb2.PublishResponse(results=[
            publisher_pb2.PublishResult(cluster="old", offset=i, id=m.id)
            for i, m in enumerate(request.messages)])


def test_older_node_without_client_config_carries_messages_and_nothing_falls_back(caplog):
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(2))
    publisher_pb2_grpc.add_PublisherServicer_to_server(_OlderNode(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with ferry.Publisher(["127.0.0.1:%d" % port], fallback=True,
                             fallback_after=0.2) as publisher:
            result = publisher.publish("t", b"v", key="k").result(10)
            time.sleep(0.6)  # UNIMPLEMENTED is an answer: no fallback
            stats = publisher.stats()
    finally:
        server.stop(0)
    assert result.cluster == "old" and not result.direct
    assert not stats.fallback_active and not stats.config_fetched
    assert stats.max_batch_messages == 500  # the SDK's own settings
    assert "older ferryd" in caplog.text
