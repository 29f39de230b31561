"""End-to-end tests of the sync API against a real ferryd and a real Kafka."""
import collections
import threading
import time

import pytest

import ferry
from conftest import unique
from helpers import consume_values, group_counter


def test_publish_round_trip(node, topic_factory):
    topic = topic_factory()
    with ferry.Publisher([node.endpoint]) as pub:
        futures = [pub.publish(topic, b"value-%d" % i, key="k%d" % (i % 7),
                               headers={"h": "x%d" % i}) for i in range(200)]
        results = [f.result(30) for f in futures]
    for r in results:
        cluster, partition, offset = r
        assert cluster == "main" and 0 <= partition < 3 and offset >= 0
    want = {b"value-%d" % i for i in range(200)}
    messages = consume_values([node.endpoint], topic, want)
    by_value = {m.value: m for m in messages}
    assert want <= set(by_value)
    m = by_value[b"value-5"]
    assert m.key == b"k5" and m.headers["h"] == b"x5" and m.topic == topic
    assert (m.partition, m.offset) == (results[5].partition, results[5].offset)
    assert m.id and m.delivery_attempt == 1 and m.cluster == "main"
    assert m.publish_time is not None


def test_per_key_order(node, topic_factory):
    topic = topic_factory(partitions=4)
    keys = ["key-%d" % k for k in range(10)]
    with ferry.Publisher([node.endpoint], max_batch_messages=50) as pub:
        futures = [pub.publish(topic, b"%s:%d" % (keys[i % 10].encode(), i // 10), key=keys[i % 10])
                   for i in range(1000)]
        results = [f.result(30) for f in futures]
    # Publish side: each key's offsets grow in publish order, on one partition.
    per_key = collections.defaultdict(list)
    for i, r in enumerate(results):
        per_key[keys[i % 10]].append(r)
    for rs in per_key.values():
        assert len({r.partition for r in rs}) == 1
        assert [r.offset for r in rs] == sorted(r.offset for r in rs)
    # Subscribe side in key mode: each key's sequence arrives in order.
    want = {b"%s:%d" % (k.encode(), n) for k in keys for n in range(100)}
    messages = consume_values([node.endpoint], topic, want, ordering="key")
    last = {}
    for m in messages:
        k, n = m.value.split(b":")
        assert int(n) == last.get(k, -1) + 1, "key %s out of order" % k
        last[k] = int(n)


def test_empty_topic_is_invalid_argument(node):
    with ferry.Publisher([node.endpoint]) as pub:
        with pytest.raises(ferry.InvalidArgument) as info:
            pub.publish("", b"x").result(30)
    assert info.value.code.name == "INVALID_ARGUMENT" and info.value.reason
    assert isinstance(info.value, ferry.FerryError) and not info.value.retryable


def test_unknown_topic_is_not_found(node):
    with ferry.Publisher([node.endpoint]) as pub:
        with pytest.raises(ferry.NotFound) as info:
            pub.publish(unique("no-such-topic"), b"x").result(30)
    assert info.value.code_number == 5


def test_a_refused_message_names_the_node_that_refused_it(node):
    topic = unique("no-such-topic")
    called = threading.Event()
    from_callback = []

    def on_done(outcome):
        from_callback.append(outcome)
        called.set()

    with ferry.Publisher([node.endpoint]) as pub:
        error = pub.publish(topic, b"x").exception(30)
        pub.publish(topic, b"y", callback=on_done)
        assert called.wait(30)
        outcomes = pub.publish_many(topic, [b"a", b"b"]).result(30)
    for refused in [error, from_callback[0]] + outcomes:
        assert isinstance(refused, ferry.NotFound), refused
        assert refused.endpoint == node.endpoint


def test_subscribe_unknown_topic_is_fatal_not_found(node):
    errors = []
    sub = ferry.Subscriber([node.endpoint], unique("g"), [unique("missing")],
                           on_error=errors.append)
    try:
        with pytest.raises(ferry.NotFound):
            for _ in sub:
                pass
        assert sub.failure is not None and errors and errors[-1].fatal
    finally:
        sub.close()


def test_bad_options_raise_at_once(node):
    with pytest.raises(ValueError):
        ferry.Publisher([])
    with pytest.raises(ValueError):
        ferry.Subscriber([node.endpoint], "", ["t"])
    with pytest.raises(ValueError):
        ferry.Subscriber([node.endpoint], "g", ["t"], ordering="sideways")
    with ferry.Publisher([node.endpoint]) as pub:
        with pytest.raises(TypeError):
            pub.publish("t", 12345)


def test_filter_delivers_only_matching_messages(node, topic_factory):
    topic = topic_factory(partitions=2)
    with ferry.Publisher([node.endpoint]) as pub:
        for f in [pub.publish(topic, b'{"n": %d}' % i, key="k%d" % i,
                              headers={"type": "a" if i % 2 else "b"}) for i in range(20)]:
            f.result(30)
    got = []
    with ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest",
                          filter="headers.type = 'a' AND json.n < 10") as sub:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = sub.receive(timeout=1 if len(got) >= 5 else 0.5)
            if m is None:
                if len(got) >= 5:
                    break
                continue
            got.append(m.value)
            m.ack()
    assert sorted(got) == [b'{"n": %d}' % i for i in (1, 3, 5, 7, 9)]


def test_malformed_filter_is_fatal_invalid_argument(node, topic_factory):
    sub = ferry.Subscriber([node.endpoint], unique("g"), [topic_factory()], filter="key =")
    try:
        with pytest.raises(ferry.InvalidArgument) as info:
            for _ in sub:
                pass
        assert "open.filter: column 6" in str(info.value)
    finally:
        sub.close()


def test_nack_redelivery(node, topic_factory):
    topic = topic_factory(partitions=1)
    with ferry.Publisher([node.endpoint]) as pub:
        for f in [pub.publish(topic, b"m%d" % i) for i in range(10)]:
            f.result(30)
    deliveries = collections.Counter()
    acked = set()
    group = unique("g")
    with ferry.Subscriber([node.endpoint], group, [topic], start="earliest") as sub:
        deadline = time.monotonic() + 60
        while len(acked) < 10 and time.monotonic() < deadline:
            m = sub.receive(timeout=0.5)
            if m is None:
                continue
            deliveries[m.value] += 1
            n = int(m.value[1:])
            if n % 3 == 0 and m.delivery_attempt == 1:
                m.nack()
            else:
                if n % 3 == 0:
                    assert m.delivery_attempt >= 2
                m.ack()
                acked.add(m.value)
    assert len(acked) == 10
    for i in range(10):
        assert deliveries[b"m%d" % i] == (2 if i % 3 == 0 else 1)
    # The redeliveries came from the nacks (not from expired deadlines).
    assert group_counter(node, "ferry_subscribe_nacked_total", group) == 4
    # Read after close: the native path counts a nack once gRPC reports its
    # write done, which can come after the nacked message is back.
    assert sub.stats().nacks_sent == 4


def test_nack_with_delay(node, topic_factory):
    topic = topic_factory(partitions=1)
    with ferry.Publisher([node.endpoint]) as pub:
        pub.publish(topic, b"later").result(30)
    with ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest") as sub:
        m = sub.receive(timeout=30)
        assert m is not None
        t0 = time.monotonic()
        m.nack(delay=1.5)
        again = sub.receive(timeout=30)
        assert again is not None and again.value == b"later" and again.delivery_attempt == 2
        assert time.monotonic() - t0 >= 1.2
        again.ack()


def test_deadline_extended_while_handler_runs(node, topic_factory):
    topic = topic_factory(partitions=1)
    with ferry.Publisher([node.endpoint]) as pub:
        pub.publish(topic, b"slow").result(30)
    calls = []
    done = threading.Event()

    def handle(m):
        calls.append(m.delivery_attempt)
        if len(calls) == 1:
            time.sleep(3.5)  # > 3 ack deadlines of 1 s
        done.set()

    sub = ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest",
                           ack_deadline=1, callback=handle)
    try:
        assert done.wait(30)
        time.sleep(2)
        assert calls == [1], "redelivered although the handler was running: %s" % calls
        assert sub.stats().extensions_sent >= 2
    finally:
        sub.close()


def test_callback_key_mode_serial_per_key(node, topic_factory, subscriber_path):
    topic = topic_factory(partitions=3)
    keys = ["a", "b", "c", "d", "e", "f"]
    with ferry.Publisher([node.endpoint]) as pub:
        for f in [pub.publish(topic, b"%s:%d" % (keys[i % 6].encode(), i // 6), key=keys[i % 6])
                  for i in range(300)]:
            f.result(30)
    lock = threading.Lock()
    active = collections.Counter()
    last = {}
    problems = []
    count = [0]
    finished = threading.Event()
    max_parallel = [0]

    def handle(m):
        k, n = m.value.split(b":")
        with lock:
            active[k] += 1
            if active[k] > 1:
                problems.append("key %s handled concurrently" % k)
            if int(n) != last.get(k, -1) + 1:
                problems.append("key %s: %s after %s" % (k, n, last.get(k)))
            max_parallel[0] = max(max_parallel[0], sum(active.values()))
        time.sleep(0.002)
        with lock:
            last[k] = int(n)
            active[k] -= 1
            count[0] += 1
            if count[0] == 300:
                finished.set()

    sub = ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest",
                           ordering=ferry.Ordering.KEY, callback=handle, handler_threads=4)
    try:
        assert sub.native == subscriber_path
        assert finished.wait(60), "handled %d of 300" % count[0]
    finally:
        sub.close()
    assert not problems, problems[:5]
    assert max_parallel[0] > 1  # different keys do run in parallel


def test_handler_exception_nacks(node, topic_factory):
    topic = topic_factory(partitions=1)
    with ferry.Publisher([node.endpoint]) as pub:
        pub.publish(topic, b"boom").result(30)
    attempts = []
    ok = threading.Event()

    def handle(m):
        attempts.append(m.delivery_attempt)
        if m.delivery_attempt == 1:
            raise RuntimeError("first try fails")
        ok.set()

    with ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest",
                          callback=handle):
        assert ok.wait(30)
    assert attempts[:2] == [1, 2]


def test_close_waits_for_a_running_callback_and_sends_its_auto_ack(node, topic_factory):
    topic = topic_factory(partitions=1)
    with ferry.Publisher([node.endpoint]) as pub:
        pub.publish(topic, b"x").result(30)
    started, release = threading.Event(), threading.Event()

    def handle(_m):
        started.set()
        release.wait(10)

    # A huge ack batch delay: only close() can send the auto-ack.
    sub = ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest",
                           callback=handle, ack_batch=(10000, 3600))
    assert started.wait(30)
    threading.Timer(0.5, release.set).start()
    begin = time.monotonic()
    assert sub.close(timeout=10)
    # Woken when the callback returned, not at the timeout.
    assert 0.4 <= time.monotonic() - begin < 5
    assert sub.stats().acks_sent == 1


def test_close_from_a_callback_returns_without_waiting_for_itself(node, topic_factory):
    # The caller is a running callback: close() waited its whole timeout for
    # it before (core.running counts it), then returned False.
    topic = topic_factory(partitions=1)
    with ferry.Publisher([node.endpoint]) as pub:
        pub.publish(topic, b"x").result(30)
    holder, outcome, made, done = [], [], threading.Event(), threading.Event()

    def handle(_m):
        made.wait(30)
        if not outcome:
            begin = time.monotonic()
            outcome.append(holder[0].close(timeout=20))
            outcome.append(time.monotonic() - begin)
            done.set()

    holder.append(ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest",
                                   callback=handle))
    made.set()
    assert done.wait(60)
    assert outcome[0] is False and outcome[1] < 10, outcome
    assert holder[0].close() is True  # closed: idempotent


def test_close_flushes_acks(node, topic_factory):
    topic = topic_factory(partitions=1)
    group = unique("g")
    with ferry.Publisher([node.endpoint]) as pub:
        for f in [pub.publish(topic, b"c%d" % i) for i in range(20)]:
            f.result(30)
    # A huge ack batch delay: only close() can send these acks.
    sub = ferry.Subscriber([node.endpoint], group, [topic], start="earliest",
                           ack_batch=(10000, 3600))
    got = 0
    while got < 20:
        m = sub.receive(timeout=30)
        assert m is not None
        m.ack()
        got += 1
    sub.close()
    assert sub.stats().acks_sent == 20
    # The same group sees nothing more (everything was acked and committed).
    time.sleep(0.5)
    with ferry.Subscriber([node.endpoint], group, [topic], start="earliest") as again:
        assert again.receive(timeout=4) is None


def test_subscribe_across_two_nodes(node_pair, kafka):
    from conftest import create_topic
    a, b = node_pair
    topic = create_topic(a.endpoint, unique("py-two"), partitions=4)
    endpoints = [a.endpoint, b.endpoint]
    with ferry.Publisher(endpoints) as pub:
        for f in [pub.publish(topic, b"two-%d" % i, key="k%d" % i) for i in range(400)]:
            f.result(30)
    want = {b"two-%d" % i for i in range(400)}
    seen = set()
    with ferry.Subscriber(endpoints, unique("g"), [topic], start="earliest") as sub:
        deadline = time.monotonic() + 90
        while not want <= seen and time.monotonic() < deadline:
            m = sub.receive(timeout=0.5)
            if m is not None:
                seen.add(m.value)
                m.ack()
        assert sub.stats().open_streams == 2
    assert want <= seen


def test_failover_kill9_during_publish_loses_nothing(node_pair):
    from conftest import create_topic
    a, b = node_pair
    topic = create_topic(a.endpoint, unique("py-failover"), partitions=3)
    futures = []
    with ferry.Publisher([a.endpoint, b.endpoint], linger=0.002, max_batch_messages=50,
                         request_timeout=5, delivery_timeout=60) as pub:
        for i in range(3000):
            futures.append(pub.publish(topic, b"f-%05d" % i, key="k%d" % (i % 13)))
            if i % 100 == 0:
                time.sleep(0.01)
            if i == 1500:
                a.kill9()
        pub.flush(90)
    ok = set()
    failed = []
    for i, f in enumerate(futures):
        try:
            f.result(0)
            ok.add(b"f-%05d" % i)
        except ferry.FerryError as e:
            failed.append(e)
    assert len(ok) >= 2900, "too many failures: %s" % failed[:3]
    messages = consume_values([b.endpoint], topic, ok, timeout=90)
    missing = ok - {m.value for m in messages}
    assert not missing, "%d acknowledged messages lost, e.g. %s" % (len(missing), sorted(missing)[:5])


def test_failover_kill9_during_subscribe_loses_nothing(node_pair):
    from conftest import create_topic
    a, b = node_pair
    topic = create_topic(a.endpoint, unique("py-sub-failover"), partitions=4)
    endpoints = [a.endpoint, b.endpoint]
    want = {b"s-%05d" % i for i in range(2000)}
    with ferry.Publisher(endpoints) as pub:
        for f in [pub.publish(topic, v, key=v[-2:]) for v in sorted(want)]:
            f.result(30)
    acked = []
    killed = False
    with ferry.Subscriber(endpoints, unique("g"), [topic], start="earliest",
                          ack_deadline=5) as sub:
        deadline = time.monotonic() + 120
        while not want <= set(acked) and time.monotonic() < deadline:
            m = sub.receive(timeout=0.5)
            if m is None:
                continue
            m.ack()
            acked.append(m.value)
            if not killed and len(acked) >= 500:
                a.kill9()  # its partitions move to b after the session timeout
                killed = True
    assert killed
    missing = want - set(acked)
    assert not missing, "%d messages never delivered after the kill, e.g. %s" % (
        len(missing), sorted(missing)[:5])
    print("duplicates after kill -9: %d" % (len(acked) - len(set(acked))))


def test_callback_without_ordering_auto_acks_each_message_once(node, topic_factory):
    # Handlers take slices of responses; their auto-acks go as one
    # settlement per stretch, around the messages a handler settled itself.
    topic = topic_factory(partitions=2)
    group = unique("g")
    total = 3000
    with ferry.Publisher([node.endpoint]) as pub:
        outcomes = pub.publish_many(topic, [b"%d" % i for i in range(total)]).result(30)
        assert all(isinstance(o, ferry.PublishResult) for o in outcomes)
    retried = {i for i in range(total) if i % 7 == 0 or i % 11 == 0}
    lock = threading.Lock()
    calls = collections.Counter()
    finished = threading.Event()

    def handle(m):
        n = int(m.value)
        with lock:
            calls[n] += 1
            first = calls[n] == 1
            if len(calls) == total and all(calls[i] >= 2 for i in retried):
                finished.set()
        if first and n % 7 == 0:
            m.nack()
        elif first and n % 11 == 0:
            raise RuntimeError("first try fails")

    sub = ferry.Subscriber([node.endpoint], group, [topic], start="earliest",
                           callback=handle, handler_threads=3)
    try:
        assert finished.wait(60), "handled %d of %d" % (len(calls), total)
        time.sleep(0.5)
    finally:
        sub.close()
    assert sorted(calls) == list(range(total))
    assert all(calls[i] == 1 for i in range(total) if i not in retried)
    stats = sub.stats()
    assert stats.acks_sent == total and stats.nacks_sent == len(retried)
    # Everything was acked and committed: the group sees nothing more.
    with ferry.Subscriber([node.endpoint], group, [topic], start="earliest") as again:
        assert again.receive(timeout=4) is None


def test_acks_of_a_restarted_stream_settle_only_its_own_deliveries(kafka, topic_factory, tmp_path):
    # Message.ack flags without a lock; the flags are recorded per stream.
    # Partly acked responses commit their acked prefix; acks of the old
    # stream's messages after the stream restarted do nothing, and do not
    # settle the redelivered copies.
    from conftest import Ferryd
    node = Ferryd(kafka.bootstrap, tmp_path, unique("py-restart")).start()
    try:
        topic = topic_factory(partitions=1)
        group = unique("g")
        values = [b"r%03d" % i for i in range(100)]
        with ferry.Publisher([node.endpoint]) as pub:
            assert all(isinstance(o, ferry.PublishResult)
                       for o in pub.publish_many(topic, values).result(30))
        errors = []
        sub = ferry.Subscriber([node.endpoint], group, [topic], start="earliest",
                               reconnect_backoff=(0.1, 0.5), on_error=errors.append)
        try:
            old = [sub.receive(timeout=30) for _ in values]
            assert sorted(m.value for m in old) == values
            old.sort(key=lambda m: m.offset)
            for m in old[:40]:
                m.ack()
            time.sleep(1.0)  # sent and committed (commit_interval 100 ms)
            assert sub.stats().acks_sent == 40
            node.stop()
            node.start()
            new = {}
            deadline = time.monotonic() + 60
            while len(new) < 60 and time.monotonic() < deadline:
                m = sub.receive(timeout=0.5)
                if m is not None:
                    new[m.value] = m
            assert errors and sorted(new) == values[40:]  # exactly what was not acked
            for m in old[40:]:
                m.ack()  # receipts of the ended stream: nothing happens
            assert not any(m.settled for m in new.values())
            for value in values[40:80]:
                new[value].ack()
            time.sleep(1.0)
            assert not any(new[value].settled for value in values[80:])
        finally:
            sub.close()
        assert sub.stats().acks_sent == 80
        # The group gets exactly the unacked rest back.
        with ferry.Subscriber([node.endpoint], group, [topic], start="earliest") as again:
            rest = []
            while len(rest) < 20:
                m = again.receive(timeout=30)
                assert m is not None, "got %d of the 20 unacked" % len(rest)
                rest.append(m.value)
                m.ack()
            assert sorted(rest) == values[80:] and again.receive(timeout=2) is None
    finally:
        node.stop()


def test_threads_receiving_from_one_subscriber_each_get_different_messages(node, topic_factory):
    # receive() takes a message of the response being handed out without a
    # lock; with threads switching every microsecond each message still
    # goes to one of them once, and their lock-free acks all arrive.
    import sys
    topic = topic_factory(partitions=2)
    group = unique("g")
    total = 3000
    with ferry.Publisher([node.endpoint]) as pub:
        assert all(isinstance(o, ferry.PublishResult) for o in
                   pub.publish_many(topic, [b"%d" % i for i in range(total)]).result(30))
    got = [[] for _ in range(4)]
    sub = ferry.Subscriber([node.endpoint], group, [topic], start="earliest")

    def take(mine):
        while sum(map(len, got)) < total:
            m = sub.receive(timeout=0.2)
            if m is not None:
                mine.append(m.value)
                m.ack()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=take, args=(mine,)) for mine in got]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sys.setswitchinterval(interval)
        sub.close()
    values = [v for mine in got for v in mine]
    assert sorted(values) == sorted(b"%d" % i for i in range(total))
    assert sum(1 for mine in got if mine) > 1  # the threads did share the work
    assert sub.stats().acks_sent == total
    with ferry.Subscriber([node.endpoint], group, [topic], start="earliest") as again:
        assert again.receive(timeout=4) is None
