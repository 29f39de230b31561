"""Unit tests without a server: the batcher, endpoints, errors, options."""
import grpc
import pytest

import ferry
from ferry._batcher import Batcher, Entry
from ferry._publisher_core import Endpoints
from ferry.errors import Unavailable, error_from_status


def entry(seq, key=None, size=10, topic="t"):
    return Entry(seq, topic, [None], size, key, 1e9, None)


def result(i):
    return ferry.PublishResult("main", 0, i)


def test_batches_by_count_and_bytes():
    core = Batcher(3, 25, 10.0, 0.05, 1.0)
    for i in range(7):
        core.add(entry(i), 0.0)
    assert core.sendable(0.0, False) == ["t"]
    batch, _ = core.take_batch("t", 0.0)
    assert [e.seq for e in batch.entries] == [0, 1]  # 3 x 10 bytes > 25
    for want in ([2, 3], [4, 5]):
        assert core.sendable(0.0, False) == ["t"]  # still 25 bytes or more queued
        assert [e.seq for e in core.take_batch("t", 0.0)[0].entries] == want
    assert core.sendable(0.0, False) == []  # one left: lingering (10 s)
    assert core.sendable(0.0, True) == ["t"]  # flush


def test_idle_topic_sends_at_once_and_collects_while_a_batch_is_in_flight():
    core = Batcher(100, 1 << 20, 10.0, 0.05, 1.0)
    core.add(entry(1), 0.0)
    assert core.sendable(0.0, False) == ["t"]
    first, _ = core.take_batch("t", 0.0)
    core.add(entry(2), 0.1)
    core.add(entry(3, b"k"), 0.1)
    assert core.sendable(1.0, False) == []
    core.complete(first, [result(1)], 1.0)
    assert core.sendable(1.0, False) == ["t"]
    assert [e.seq for e in core.take_batch("t", 1.0)[0].entries] == [2, 3]


def test_linger():
    core = Batcher(100, 1 << 20, 0.5, 0.05, 1.0)
    core.add(entry(0), 0.0)
    core.take_batch("t", 0.0)  # in flight: what follows lingers
    core.add(entry(1), 0.0)
    assert core.sendable(0.1, False) == []
    assert core.next_wakeup(0.1) == pytest.approx(0.5)
    assert core.sendable(0.5, False) == ["t"]


def test_key_held_back_while_earlier_message_is_retried():
    core = Batcher(2, 1 << 20, 0.0, 0.05, 1.0)
    a1, a2, a3, b1 = entry(1, b"a"), entry(2, b"a"), entry(3, b"a"), entry(4, b"b")
    for e in (a1, a2, a3, b1):
        core.add(e, 0.0)
    first, _ = core.take_batch("t", 0.0)
    assert [e.seq for e in first.entries] == [1, 2]
    # Key a is in flight: the next batch may only take b.
    second, _ = core.take_batch("t", 0.0)
    assert [e.seq for e in second.entries] == [4]
    # a1 fails retryably, a2 succeeds: a1 is retried before a3.
    finished, parts = core.complete(first, [Unavailable("x"), result(2)], 0.0)
    assert [e.seq for e, _ in finished] == [2] and not parts
    assert core.take_batch("t", 0.01)[0] is None  # backoff: a is held
    core.release_due(0.2)
    retry, _ = core.take_batch("t", 0.2)
    assert [e.seq for e in retry.entries] == [1, 3]
    finished, _ = core.complete(retry, [result(5), result(6)], 0.3)
    assert [e.seq for e, _ in finished] == [1, 3]


def test_non_retryable_fails_and_deadline_stops_retries():
    core = Batcher(10, 1 << 20, 0.0, 0.05, 1.0)
    e1, e2 = entry(1), entry(2)
    e2.deadline = 0.01
    core.add(e1, 0.0)
    core.add(e2, 0.0)
    batch, _ = core.take_batch("t", 0.0)
    error = error_from_status(3, "bad")
    finished, _ = core.complete(batch, [error, Unavailable("down")], 0.0)
    assert [(e.seq, type(x)) for e, (x,) in finished] == [(1, ferry.InvalidArgument),
                                                          (2, ferry.Unavailable)]


def test_endpoints_fail_over():
    eps = Endpoints(["a", "b"], 1.0, 10.0)
    assert [eps.pick(0.0), eps.pick(0.0)] == [0, 1]
    eps.failed(0, 0.0)
    assert [eps.pick(0.1), eps.pick(0.1)] == [1, 1]
    assert eps.pick(1.5) in (0, 1)


def test_typed_errors():
    e = error_from_status(5, "unknown topic", retryable=False, endpoint="n1")
    assert isinstance(e, ferry.NotFound) and isinstance(e, ferry.FerryError)
    assert e.code == grpc.StatusCode.NOT_FOUND and e.code_number == 5
    assert e.reason == "unknown topic" and e.endpoint == "n1"
    assert "NOT_FOUND" in str(e)
    assert error_from_status(grpc.StatusCode.UNAVAILABLE, "x").retryable
    assert type(error_from_status(999, "?")) is ferry.Unknown


def test_publisher_validates_without_server():
    with ferry.Publisher(["127.0.0.1:1"], max_outstanding_bytes=200, block_when_full=False,
                         delivery_timeout=0.5, retry_backoff=(0.05, 0.1)) as pub:
        with pytest.raises(ferry.InvalidArgument):
            pub.publish("t", b"x" * 1000)
        with pytest.raises(TypeError):
            pub.publish(None, b"x")
        f = pub.publish("t", b"x")
        # The pure path counts ids and framing against the cap, the C++ SDK
        # (native) the key, value and header bytes only.
        with pytest.raises(ferry.ResourceExhausted):
            pub.publish("t", b"y" * (200 if pub.native else 120))
        # Nothing listens on port 1: retried until the delivery timeout.
        with pytest.raises(ferry.Unavailable) as info:
            f.result(10)
        assert info.value.retryable


def unreachable_endpoint():
    """An address nothing listens on: a stream there fails at once."""
    import socket
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return "127.0.0.1:%d" % unused.getsockname()[1]


def subscriber_calling(on_error):
    """A Subscriber to an unreachable endpoint whose on_error calls
    ``on_error(subscriber, report)`` once the constructor returned."""
    import threading
    made, holder = threading.Event(), []

    def report(error):
        made.wait(30)
        on_error(holder[0], error)

    holder.append(ferry.Subscriber([unreachable_endpoint()], "g", ["t"], on_error=report,
                                   reconnect_backoff=(0.05, 0.1)))
    made.set()
    return holder[0]


def test_close_from_on_error_returns_and_stops_the_subscriber():
    # on_error runs on a stream thread; close() there must not try to join
    # that thread (RuntimeError "cannot join current thread" before).
    import threading
    outcome, called = [], threading.Event()

    def on_error(subscriber, _report):
        if called.is_set():
            return
        try:
            outcome.append(subscriber.close(timeout=1.0))
        except Exception as error:  # what the test looks for
            outcome.append(error)
        called.set()

    subscriber = subscriber_calling(on_error)
    try:
        assert called.wait(30)
        assert outcome == [True]
        for thread in subscriber._threads:  # the caller's stream thread ends after close
            thread.join(10)
            assert not thread.is_alive()
    finally:
        subscriber.close()


def test_close_from_on_error_during_another_close_does_not_stall_it():
    # An application thread closes while on_error (on a stream thread, which
    # that close joins) calls close too: the stream thread's close returns
    # False at once instead of waiting for the lock the joiner holds (the
    # joiner waited 5 s twice for that thread before).
    import threading
    import time
    reporting, closing, outcome = threading.Event(), threading.Event(), []

    def on_error(subscriber, _report):
        if outcome:
            return
        reporting.set()
        assert closing.wait(30)
        deadline = time.monotonic() + 10
        while not subscriber._close_lock.locked() and time.monotonic() < deadline:
            time.sleep(0.001)
        outcome.append(subscriber.close(timeout=1.0))

    subscriber = subscriber_calling(on_error)
    assert reporting.wait(30)
    took = []

    def close_from_application():
        start = time.monotonic()
        closing.set()
        subscriber.close(timeout=1.0)
        took.append(time.monotonic() - start)

    closer = threading.Thread(target=close_from_application)
    closer.start()
    closer.join(30)
    assert outcome == [False]
    assert took and took[0] < 4.0, took
