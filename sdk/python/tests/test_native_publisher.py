"""The native Publisher (ferry._native.Publisher over the C++ SDK): what the
shared publisher tests do not see. Runs only where the extension loaded."""
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time

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
        assert type(future) is native.Future
        future.add_done_callback(on_done)
        result = future.result(30)
        assert done.wait(10)
        assert isinstance(result, ferry.PublishResult) and result.partition == 0
        assert future.done() and not future.running() and future.exception() is None
        assert not future.cancel() and not future.cancelled()
        assert seen[0][0] != threading.get_ident() and seen[0][1] is future
        late = []
        future.add_done_callback(late.append)  # done: called at once, here
        assert late == [future]


def test_callbacks_that_raise_are_logged_and_delivery_goes_on(node, topic_factory, caplog):
    topic = topic_factory(partitions=1)
    outcomes = []

    def raising(outcome):
        outcomes.append(outcome)
        raise ValueError("from the callback")

    with caplog.at_level(logging.ERROR, logger="ferry"):
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
    assert raised == ["ValueError"] * 3 + ["ZeroDivisionError"]


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
        native.Future()


def test_result_times_out_with_concurrent_futures_timeout_error():
    import concurrent.futures
    with ferry.Publisher([unreachable()], delivery_timeout=2) as pub:
        f = pub.publish("t", b"x")
        with pytest.raises(concurrent.futures.TimeoutError):
            f.result(0.05)
        with pytest.raises(concurrent.futures.TimeoutError):
            f.exception(0.05)


def test_flush_and_close_release_the_gil():
    def spin_for(seconds, cpu):
        start, end = time.thread_time(), time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        cpu.append(time.thread_time() - start)

    pub = ferry.Publisher([unreachable()], delivery_timeout=3, retry_backoff=(0.05, 0.1))
    pub.publish("t", b"x")
    for wait in (lambda: pub.flush(1.0), lambda: pub.close(1.0)):
        cpu = []
        counter = threading.Thread(target=spin_for, args=(0.8, cpu))
        counter.start()
        assert wait() is False  # the message is still being retried
        counter.join()
        # With the GIL held in flush/close the second thread got about none.
        assert cpu[0] > 0.1, cpu


FORK_CHILD = textwrap.dedent("""
    import os, sys, ferry
    parent = ferry.Publisher([sys.argv[1]], delivery_timeout=0.5)
    assert parent.native
    pid = os.fork()
    if pid == 0:
        try:
            parent.publish("t", b"x")
        except RuntimeError:
            os._exit(0 if not ferry.Publisher([sys.argv[1]]).native else 4)
        os._exit(3)
    _, status = os.waitpid(pid, 0)
    parent.close(0)
    print("child", os.waitstatus_to_exitcode(status))
""")


def test_forked_child_cannot_use_the_parents_publisher():
    out = subprocess.run([sys.executable, "-c", FORK_CHILD, unreachable()],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "child 0" in out.stdout, out.stdout + out.stderr


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
