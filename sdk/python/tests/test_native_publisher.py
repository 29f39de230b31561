"""The native Publisher (ferry._native.Publisher over the C++ SDK): what the
shared publisher tests do not see. Runs only where the extension loaded."""
import concurrent.futures
import gc
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import pytest

import ferry

native = pytest.importorskip("ferry._native")
pytestmark = pytest.mark.skipif(not ferry.native_available(),
                                reason="native path off (FERRY_NATIVE=0)")


def unreachable():
    import socket
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return "127.0.0.1:%d" % unused.getsockname()[1]


def test_path_taken_by_options():
    endpoint = unreachable()
    plain = ferry.Publisher([endpoint])
    pure = [ferry.Publisher([endpoint], channel_options=[]),
            ferry.Publisher([endpoint], max_inflight_batches=4)]
    try:
        assert plain.native and isinstance(plain, ferry.Publisher)
        assert not any(p.native for p in pure)
        assert all(type(p) is ferry.Publisher for p in pure)
    finally:
        for p in [plain] + pure:
            p.close(0)


def test_publish_takes_the_arguments_the_pure_path_takes():
    endpoint = unreachable()
    native_pub = ferry.Publisher([endpoint])
    pure_pub = ferry.Publisher([endpoint], channel_options=[])
    assert native_pub.native and not pure_pub.native
    calls = [
        (("t", b"v"), {}),
        (("t", b"v", "k", {"h": b"1"}, "o"), {}),
        ((), {"topic": "t", "value": b"v", "key": "k", "headers": None,
              "ordering_key": "o", "id": "i", "timestamp": None}),
        (("t", b"v"), {"callback": lambda outcome: None}),
        (("t", b"v", None, None, None, "id"), {}),
        (("t", b"v", None, None, None, "id", None, None), {}),
        (("t", b"v", None, None, None, None), {"id": "i"}),
        (("t",), {}),
        ((), {"value": b"v"}),
        ((), {}),
        (("t", b"v"), {"topic": "t"}),
        (("t", b"v", "k"), {"key": "k"}),
        (("t", b"v"), {"partition": 1}),
        (("t", b"v"), {"ID": "i"}),
        (("t", b"v"), {"\udc80": 1}),  # a name UTF-8 cannot encode
    ]

    def outcome(pub, args, kwargs):
        try:
            returned = pub.publish(*args, **kwargs)
        except TypeError as e:
            return "TypeError: %s" % e
        return "Future" if isinstance(returned, concurrent.futures.Future) else repr(returned)

    try:
        for args, kwargs in calls:
            on_native = outcome(native_pub, args, kwargs)
            assert on_native == outcome(pure_pub, args, kwargs), (args, kwargs)
        assert outcome(native_pub, ("t", b"v", None, None, None, "id"), {}) == (
            "TypeError: Publisher.publish() takes from 3 to 6 positional arguments "
            "but 7 were given")
    finally:
        native_pub.close(0)
        pure_pub.close(0)


def test_ferry_native_0_forces_pure_python():
    code = ("import ferry; p = ferry.Publisher([%r]); print(p.native); p.close(0)"
            % unreachable())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ, FERRY_NATIVE="0"))
    assert out.stdout.split() == ["False"], out.stderr


def test_future_is_completed_from_the_delivery_thread(node, topic_factory):
    topic = topic_factory(partitions=1)
    seen = []
    done = threading.Event()

    def on_done(future):
        seen.append((threading.get_ident(), future))
        done.set()

    with ferry.Publisher([node.endpoint]) as pub:
        future = pub.publish(topic, b"v", key="k")
        assert isinstance(future, concurrent.futures.Future)
        future.add_done_callback(on_done)
        result = future.result(30)
        assert done.wait(10)
        assert isinstance(result, ferry.PublishResult) and result.partition == 0
        assert future.done() and not future.running() and future.exception() is None
        assert not future.cancel() and not future.cancelled()
        assert seen[0][0] == pub._delivery_thread != threading.get_ident()
        assert seen[0][1] is future
        assert not hasattr(native, "Future")


def test_callbacks_that_raise_are_logged_and_delivery_goes_on(node, topic_factory, caplog):
    topic = topic_factory(partitions=1)
    outcomes = []

    def raising(outcome):
        outcomes.append(outcome)
        raise ValueError("from the callback")

    with caplog.at_level(logging.ERROR):
        with ferry.Publisher([node.endpoint]) as pub:
            for i in range(3):
                pub.publish(topic, b"v%d" % i, callback=raising)
            pub.publish(topic, b"f").add_done_callback(lambda f: 1 / 0)
            assert pub.flush(30)
            last = pub.publish(topic, b"after")
            assert isinstance(last.result(30), ferry.PublishResult)
    assert len(outcomes) == 3 and all(isinstance(o, ferry.PublishResult) for o in outcomes)
    raised = sorted(type(r.exc_info[1]).__name__ for r in caplog.records
                    if "publish callback raised" in r.getMessage())
    assert raised == ["ValueError"] * 3
    # A done callback's: concurrent.futures logs it, as on the pure path.
    assert any(r.name == "concurrent.futures" and r.exc_info[0] is ZeroDivisionError
               for r in caplog.records)


def test_errors_are_ferry_errors_at_once_or_through_the_future():
    with ferry.Publisher([unreachable()], max_outstanding_bytes=100, block_when_full=False,
                         delivery_timeout=0.5, retry_backoff=(0.05, 0.1)) as pub:
        with pytest.raises(ferry.InvalidArgument):
            pub.publish("t", b"x" * 101)
        with pytest.raises(TypeError):
            pub.publish("t", 5)
        with pytest.raises(TypeError):
            pub.publish("t", b"x", timestamp=5)
        f = pub.publish("t", b"x" * 60)
        with pytest.raises(ferry.ResourceExhausted):
            pub.publish("t", b"y" * 60)
        with pytest.raises(ferry.Unavailable) as info:
            f.result(10)
        assert info.value.retryable and f.exception() is info.value
        many = pub.publish_many("t", [b"a", (b"b", "k", {"h": b"1"}, "o")]).result(10)
        assert [type(o) for o in many] == [ferry.Unavailable] * 2
    with pytest.raises(ferry.Unavailable):
        pub.publish("t", b"closed")
    with pytest.raises(TypeError):
        native.Publisher()


def test_result_times_out_with_concurrent_futures_timeout_error():
    with ferry.Publisher([unreachable()], delivery_timeout=2) as pub:
        f = pub.publish("t", b"x")
        with pytest.raises(concurrent.futures.TimeoutError):
            f.result(0.05)
        with pytest.raises(concurrent.futures.TimeoutError):
            f.exception(0.05)


def test_flush_and_close_release_the_gil():
    pub = ferry.Publisher([unreachable()], delivery_timeout=3, retry_backoff=(0.05, 0.1))
    pub.publish("t", b"x")
    for wait in (lambda: pub.flush(1.0), lambda: pub.close(1.0)):
        ran = []
        other = threading.Thread(target=lambda: ran.append(time.monotonic()))
        start = time.monotonic()
        other.start()
        assert wait() is False  # the message is still being retried (1 s)
        returned = time.monotonic()
        other.join()
        # With the GIL held for the whole wait the thread ran only after it.
        assert returned - start >= 0.9 and ran[0] < returned, (start, ran, returned)


def test_flush_and_close_refused_only_in_this_publishers_own_callbacks():
    outcomes = []
    other = ferry.Publisher([unreachable()], delivery_timeout=0.2, retry_backoff=(0.05, 0.1))
    pub = ferry.Publisher([unreachable()], delivery_timeout=0.2, retry_backoff=(0.05, 0.1))
    done = threading.Event()

    def on_outcome(_):
        for call in (lambda: pub.flush(0), lambda: pub.close(0),
                     lambda: other.flush(0), lambda: other.close(0)):
            try:
                outcomes.append(call())
            except RuntimeError as e:
                outcomes.append(e)
        done.set()

    pub.publish("t", b"x", callback=on_outcome)
    assert done.wait(10)
    pub.close(0)
    assert [type(o) for o in outcomes] == [RuntimeError, RuntimeError, bool, bool], outcomes


def threads():
    """This process's threads named as its main thread: the publishers' own
    (delivery, sender), not gRPC's pools, which grow as they please."""
    def name(task):
        try:
            with open("/proc/self/task/%s/comm" % task) as f:
                return f.read()
        except (FileNotFoundError, ProcessLookupError):  # ended meanwhile (ESRCH on read)
            return None
    main = name(os.getpid())
    return sum(name(task) == main for task in os.listdir("/proc/self/task"))


def test_publishers_let_go_in_their_own_callbacks_end():
    baseline = threads()
    holder, ended = {}, threading.Semaphore(0)
    for i in range(10):
        pub = ferry.Publisher([unreachable()], delivery_timeout=0.2, close_timeout=0.1,
                              retry_backoff=(0.05, 0.1))

        def let_go(_, i=i):
            del holder[i]  # the last reference: released on its delivery thread
            ended.release()

        holder[i] = pub
        pub.publish("t", b"x", callback=let_go)
        del pub
    for _ in range(10):
        assert ended.acquire(timeout=20)
    deadline = time.monotonic() + 20
    while threads() > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threads() <= baseline, (threads(), baseline)


def test_close_while_another_thread_is_blocked_in_publish():
    pub = ferry.Publisher([unreachable()], max_outstanding_bytes=100, block_when_full=True,
                          delivery_timeout=1.0, retry_backoff=(0.05, 0.1))
    first = pub.publish("t", b"x" * 60)
    outcome = []

    def blocked():  # waits for room until `first` failed (about 1 s)
        try:
            outcome.append(pub.publish("t", b"y" * 60))
        except ferry.FerryError as e:
            outcome.append(e)

    publisher_thread = threading.Thread(target=blocked)
    publisher_thread.start()
    time.sleep(0.3)
    assert pub.close(0) is False
    publisher_thread.join(10)
    assert isinstance(first.exception(10), ferry.Unavailable)
    [second] = outcome
    if isinstance(second, concurrent.futures.Future):  # admitted before the end
        second = second.exception(10)
    assert isinstance(second, ferry.Unavailable) and not second.retryable, second


def test_publish_from_a_done_callback_while_full_and_collected_cycles():
    pub = ferry.Publisher([unreachable()], max_outstanding_bytes=100, block_when_full=True,
                          delivery_timeout=0.3, retry_backoff=(0.05, 0.1))
    again = []
    future = pub.publish("t", b"x" * 60)
    # future -> callback -> future: a cycle the collector ends after completion.
    future.add_done_callback(lambda f, keep=future: again.append(pub.publish("t", b"y" * 60)))
    assert isinstance(future.exception(10), ferry.Unavailable)
    assert pub.flush(10)
    assert isinstance(again[0].exception(10), ferry.Unavailable)
    ref = weakref.ref(future)
    del future
    gc.collect()
    assert ref() is None
    pub.close(0)


FORK_CHILD = textwrap.dedent("""
    import os, sys, ferry
    left_open = ferry.Publisher([sys.argv[1]], delivery_timeout=0.5)
    with ferry.Publisher([sys.argv[1]], delivery_timeout=0.5) as parent:
        assert parent.native
        pid = os.fork()
        if pid == 0:
            try:
                parent.publish("t", b"x")
            except RuntimeError:
                # Leaving the with block, and exit's closing of left_open,
                # leave the parent's publishers alone without raising.
                sys.exit(0 if not ferry.Publisher([sys.argv[1]]).native else 4)
            sys.exit(3)
        _, status = os.waitpid(pid, 0)
    print("child", os.waitstatus_to_exitcode(status))
""")


def test_forked_child_cannot_use_the_parents_publisher():
    out = subprocess.run([sys.executable, "-c", FORK_CHILD, unreachable()],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "child 0" in out.stdout, out.stdout + out.stderr
    assert "Exception" not in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_close_waits_its_timeout_only_then_fails_what_is_left():
    pub = ferry.Publisher([unreachable()], delivery_timeout=60, close_timeout=60,
                          retry_backoff=(0.05, 0.1))
    future = pub.publish("t", b"x")
    start = time.monotonic()
    assert pub.close(0.3) is False
    assert time.monotonic() - start < 5  # not the close_timeout on top
    with pytest.raises(ferry.Unavailable, match="publisher closed"):
        future.result(5)
    assert pub.flush(0) and pub.stats().ferry_messages == 0 and pub.close() is True
