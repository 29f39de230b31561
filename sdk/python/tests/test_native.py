"""The native path (ferry._native over the C++ SDK): which path a subscriber
takes, lifetimes of what it hands out, the GIL, fork and grpcio in one
process. Skipped where the extension was not built (pure-Python install)."""
import datetime
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import ferry
from conftest import unique

native = pytest.importorskip("ferry._native")
pytestmark = pytest.mark.skipif(not ferry.native_available(),
                                reason="native path off (FERRY_NATIVE=0)")


def publish(endpoint, topic, count, **kwargs):
    with ferry.Publisher([endpoint]) as pub:
        for f in [pub.publish(topic, b"v%d" % i, **kwargs) for i in range(count)]:
            f.result(30)


def first_batch(sub, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = sub.receive_batch(timeout=1)
        if batch is not None:
            return batch
    raise AssertionError("nothing received")


def assert_group_gets_v0_again(endpoint, group, topic):
    """The group's next subscriber gets v0 first: no ack of it reached the node."""
    with ferry.Subscriber([endpoint], group, [topic], start="earliest") as again:
        m = again.receive(timeout=30)
        assert m is not None and m.value == b"v0"
        m.ack()


def test_path_taken_by_options(node):
    plain = ferry.Subscriber([node.endpoint], unique("g"), ["t"])
    unordered = ferry.Subscriber([node.endpoint], unique("g"), ["t"], callback=print)
    keyed = ferry.Subscriber([node.endpoint], unique("g"), ["t"], callback=print,
                             ordering="key")
    by_partition = ferry.Subscriber([node.endpoint], unique("g"), ["t"], callback=print,
                                    ordering=ferry.Ordering.PARTITION)
    try:
        assert plain.native and isinstance(plain, ferry.Subscriber)
        assert unordered.native
        assert keyed.native and by_partition.native  # the pure path's chains, natively
    finally:
        for subscriber in (plain, unordered, keyed, by_partition):
            subscriber.close()
    # An option the C++ SDK refuses (the pure path leaves it to the node).
    loose = ferry.Subscriber([node.endpoint], unique("g"), ["t"], ack_deadline=0.2)
    try:
        assert not loose.native and type(loose) is ferry.Subscriber
    finally:
        loose.close()


def test_ferry_native_0_forces_pure_python(node):
    code = ("import ferry; s = ferry.Subscriber([%r], 'g', ['t']); "
            "print(ferry.native_available(), s.native); s.close()" % node.endpoint)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ, FERRY_NATIVE="0"))
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_fields_match_the_pure_path(node, topic_factory):
    topic = topic_factory(partitions=1)
    publish(node.endpoint, topic, 1, key="k", headers=[("a", b"1"), ("a", b"2"), ("b", b"x")])
    publish(node.endpoint, topic, 1)  # no key, no headers
    fields = ("topic", "partition", "offset", "key", "value", "headers", "header_list",
              "publish_time", "delivery_attempt", "cluster", "id", "settled")
    seen = []
    for env in ("1", "0"):
        os.environ["FERRY_NATIVE"] = env
        try:
            with ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest") as sub:
                assert sub.native == (env == "1")
                got = []
                while len(got) < 2:
                    m = sub.receive(timeout=30)
                    assert m is not None
                    got.append({f: getattr(m, f) for f in fields})
                    assert repr(m).startswith("Message(topic=%r" % topic)
                seen.append(got)
        finally:
            os.environ.pop("FERRY_NATIVE")
    assert seen[0] == seen[1]
    keyed, bare = seen[0]
    own = [(k, v) for k, v in keyed["header_list"] if k != "ferry.id"]
    assert own == [("a", b"1"), ("a", b"2"), ("b", b"x")]
    assert keyed["key"] == b"k" and keyed["headers"]["a"] == b"2"
    assert keyed["headers"]["ferry.id"].decode() == keyed["id"]
    assert isinstance(keyed["publish_time"], datetime.datetime)
    assert keyed["publish_time"].tzinfo is not None and keyed["id"]
    assert bare["key"] is None and list(bare["headers"]) == ["ferry.id"]


def test_messages_outlive_their_batch_and_subscriber(node, topic_factory):
    topic = topic_factory(partitions=1)
    publish(node.endpoint, topic, 5)
    group = unique("g")
    sub = ferry.Subscriber([node.endpoint], group, [topic], start="earliest")
    batch = first_batch(sub)
    assert isinstance(batch, ferry.MessageBatch)
    assert isinstance(batch[0], ferry.Message)
    kept = list(batch)
    first, last = kept[0], batch[-1]
    assert [m.value for m in kept] == batch.values
    assert len(batch[1:3]) == 2 and last.value == kept[-1].value
    del batch
    sub.close()
    del sub
    gc.collect()
    assert first.value == b"v0" and last.offset == kept[-1].offset
    first.ack()  # after close: does nothing, does not crash
    first.nack(datetime.timedelta(seconds=1))
    assert first.settled  # the local flag; the node never saw the ack:
    assert_group_gets_v0_again(node.endpoint, group, topic)


def test_ack_after_close_is_dropped_and_the_message_redelivered(node, topic_factory):
    topic = topic_factory(partitions=1)
    publish(node.endpoint, topic, 1)
    group = unique("g")
    sub = ferry.Subscriber([node.endpoint], group, [topic], start="earliest")
    m = sub.receive(timeout=30)
    assert m is not None
    sub.close()
    m.ack()
    assert_group_gets_v0_again(node.endpoint, group, topic)


def test_receive_batch_splits_a_response_and_mixes_with_receive(node, topic_factory):
    topic = topic_factory(partitions=1)
    publish(node.endpoint, topic, 20)
    with ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest") as sub:
        firsts, again = [], []  # first times a value is seen; the nacked one's redelivery
        seen = set()

        def take(message):
            (again if message.value in seen else firsts).append(message)
            seen.add(message.value)

        while len(firsts) < 20:
            batch = sub.receive_batch(timeout=30, max_messages=3)
            assert batch is not None and 1 <= len(batch) <= 3
            assert [m.value for m in batch] == batch.values
            for m in batch:
                take(m)
            if len(firsts) == len(batch) and not again:
                batch[0].nack()  # the first batch's first: redelivered at once
            batch.ack()  # the rest of it
            m = sub.receive(timeout=0)
            if m is not None:
                take(m)
                m.ack()
        # The redelivery may come before the last first deliveries: counted apart.
        assert [m.value for m in firsts] == [b"v%d" % i for i in range(20)], sub.stats()
        while not again:
            m = sub.receive(timeout=30)
            assert m is not None, sub.stats()
            take(m)
        assert [m.value for m in again] == [b"v0"], sub.stats()
        again[0].ack()


def test_waiting_releases_the_gil(node, topic_factory):
    def spin_for(seconds, cpu):
        start, end = time.thread_time(), time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        cpu.append(time.thread_time() - start)

    topic = topic_factory(partitions=1)
    with ferry.Subscriber([node.endpoint], unique("g"), [topic]) as sub:
        cpu = []
        counter = threading.Thread(target=spin_for, args=(1.0, cpu))
        counter.start()
        assert sub.receive(timeout=1.5) is None
        counter.join()
        # The CPU the second thread got in its second, while the main thread
        # waits in receive: with the GIL held there, about none.
        assert cpu[0] > 0.1, cpu


def test_close_from_another_thread_ends_a_receive_without_timeout(node, topic_factory):
    topic = topic_factory(partitions=1)
    sub = ferry.Subscriber([node.endpoint], unique("g"), [topic])
    got = []
    waiter = threading.Thread(target=lambda: got.append(sub.receive()))
    waiter.start()
    time.sleep(0.3)
    assert sub.close(5)
    waiter.join(5)
    assert not waiter.is_alive() and got == [None]


FORK_CHILD = textwrap.dedent("""
    import os, sys, ferry
    endpoint, topic = sys.argv[1], sys.argv[2]
    parent = ferry.Subscriber([endpoint], "fork-parent-" + topic, [topic], start="earliest")
    assert parent.native
    with ferry.Publisher([endpoint]) as pub:  # grpcio, beside the native module
        pub.publish(topic, b"hello").result(30)
    m = parent.receive(timeout=30)
    assert m is not None and m.value == b"hello"
    pid = os.fork()
    if pid == 0:
        ok = False
        try:
            assert not ferry.native_available()
            with ferry.Subscriber([endpoint], "fork-child-" + topic, [topic],
                                  start="earliest") as child:
                got = child.receive(timeout=30)
                ok = got is not None and got.value == b"hello" and not child.native
                got.ack()
        finally:
            os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    m.ack()
    parent.close()
    print("child", os.waitstatus_to_exitcode(status))
""")


def test_forked_child_of_an_open_native_subscriber_subscribes(node, topic_factory):
    topic = topic_factory(partitions=1)
    out = subprocess.run([sys.executable, "-c", FORK_CHILD, node.endpoint, topic],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "child 0" in out.stdout, out.stdout + out.stderr


FORK_ACKS = textwrap.dedent("""
    import os, sys, ferry
    endpoint, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
    parent = ferry.Subscriber([endpoint], group, [topic], start="earliest",
                              ack_batch=(1, 0.001))
    assert parent.native
    held = []
    while len(held) < 5:
        m = parent.receive(timeout=30)
        assert m is not None
        held.append(m)
    pid = os.fork()
    if pid == 0:
        refused = 0
        for m in held:
            try:
                m.ack()
            except RuntimeError:
                refused += 1
        os._exit(0 if refused == len(held) else 3)
    _, status = os.waitpid(pid, 0)
    parent.close()  # nothing acked here
    print("child", os.waitstatus_to_exitcode(status))
""")


def test_forked_child_cannot_settle_the_parents_messages(node, topic_factory):
    # The child's ack went out on the parent's gRPC connection and the node
    # committed it (only v1-v4 came back before): now it raises, and every
    # message held by the parent is redelivered after the parent closes.
    topic = topic_factory(partitions=1)
    publish(node.endpoint, topic, 5)
    group = unique("g")
    out = subprocess.run([sys.executable, "-c", FORK_ACKS, node.endpoint, topic, group],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "child 0" in out.stdout, out.stdout + out.stderr
    with ferry.Subscriber([node.endpoint], group, [topic], start="earliest") as again:
        values = set()
        deadline = time.monotonic() + 30
        while len(values) < 5 and time.monotonic() < deadline:
            m = again.receive(timeout=1)
            if m is not None:
                values.add(m.value)
                m.ack()
        assert values == {b"v%d" % i for i in range(5)}


NEW_NATIVE_OBJECTS = textwrap.dedent("""
    import sys, ferry, ferry._native as native
    endpoint, topic = sys.argv[1], sys.argv[2]
    with ferry.Subscriber([endpoint], "types-" + topic, [topic], start="earliest") as sub:
        batch = sub.receive_batch(timeout=30)
        assert batch is not None
        for make in (native.Message, native.MessageBatch, type(batch), type(batch[0]),
                     type(iter(batch))):
            try:
                made = make()
                print("made", made)
                made.value  # no owner: the crash
            except TypeError:
                print("refused")
        batch.ack()
""")


def test_native_types_cannot_be_made_from_python(node, topic_factory):
    # They inherited object.__new__: an instance without an owner crashed the
    # interpreter (rc 139) on its first read or its dealloc.
    topic = topic_factory(partitions=1)
    publish(node.endpoint, topic, 1)
    out = subprocess.run([sys.executable, "-c", NEW_NATIVE_OBJECTS, node.endpoint, topic],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split() == ["refused"] * 5, out.stdout + out.stderr


def test_close_from_on_error_does_not_hold_the_sdk_thread_for_handlers(node, topic_factory):
    # on_error runs on the C++ SDK's one background thread (acks, deadline
    # extensions, reconnects of every stream): close() there waited for the
    # handler threads, up to close_timeout, before. Now it returns at once and
    # the close goes on elsewhere.
    import socket
    with socket.socket() as unused:  # a second endpoint whose stream keeps failing
        unused.bind(("127.0.0.1", 0))
        unreachable = "127.0.0.1:%d" % unused.getsockname()[1]
    topic = topic_factory(partitions=1)
    publish(node.endpoint, topic, 1)
    made, in_handler, release = threading.Event(), threading.Event(), threading.Event()
    holder, took = [], []

    def handle(_message):
        in_handler.set()
        release.wait(30)

    def on_error(_error):
        if not made.wait(30) or not in_handler.is_set() or took:
            return
        start = time.monotonic()
        took.append(holder[0].close())
        took.append(time.monotonic() - start)

    sub = ferry.Subscriber([node.endpoint, unreachable], unique("g"), [topic],
                           start="earliest", callback=handle, on_error=on_error,
                           reconnect_backoff=(0.05, 0.1), close_timeout=5)
    holder.append(sub)
    made.set()
    try:
        assert sub.native
        deadline = time.monotonic() + 30
        while len(took) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert took and took[0] is True and took[1] < 1.0, took
    finally:
        release.set()
        assert sub.close(10)  # waits for the close under way, then closes


DROPPED_IN_ON_ERROR = textwrap.dedent("""
    import socket, sys, threading, ferry
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        endpoint = "127.0.0.1:%d" % unused.getsockname()[1]
    made, dropped, holder = threading.Event(), threading.Event(), []

    def on_error(_error):
        if made.wait(30) and holder:
            holder.clear()  # the last reference: ended on a thread of its own
            dropped.set()

    holder.append(ferry.Subscriber([endpoint], "g", ["t"], on_error=on_error,
                                   reconnect_backoff=(0.05, 0.1)))
    assert holder[0].native
    made.set()
    assert dropped.wait(30)
    if sys.argv[1] == "fork":  # a child forked then exits as usual, without that thread
        import os
        pid = os.fork()
        if pid == 0:
            sys.exit(0)
        print("child", os.waitpid(pid, 0)[1])
    print("exiting")  # the exit waits for the thread ending the subscriber
""")


@pytest.mark.parametrize("fork", ["no-fork", "fork"])
def test_subscriber_dropped_in_on_error_ends_before_exit(fork):
    out = subprocess.run([sys.executable, "-c", DROPPED_IN_ON_ERROR, fork], capture_output=True,
                         text=True, timeout=60)
    expected = (["child", "0"] if fork == "fork" else []) + ["exiting"]
    assert out.returncode == 0 and out.stdout.split() == expected, out.stdout + out.stderr
    assert out.stderr == "", out.stderr


EXIT_WHILE_RECEIVING = textwrap.dedent("""
    import socket, threading, ferry
    from ferry import _native_subscriber
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        endpoint = "127.0.0.1:%d" % unused.getsockname()[1]
    sub = ferry.Subscriber([endpoint], "g", ["t"], reconnect_backoff=(0.05, 0.1))
    assert sub.native
    _native_subscriber._open.discard(sub)  # one the exit hook does not close
    waiting = threading.Event()

    def receive_forever():
        while True:
            waiting.set()
            sub.receive(timeout=0.01)  # the GIL released while it waits

    threading.Thread(target=receive_forever, daemon=True).start()
    assert waiting.wait(30)
    print("exiting")
""")


def test_exit_while_a_daemon_thread_waits_in_receive():
    # At exit that thread, retaking the GIL, is ended by CPython (a forced
    # unwind): it must go through the module's frames, not abort there.
    out = subprocess.run([sys.executable, "-c", EXIT_WHILE_RECEIVING], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.split() == ["exiting"], out.stdout + out.stderr
    stderr = out.stderr
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        # ASan's runtime checks the ended thread's stack and says so (not
        # the module's error: the exit status stays 0).
        stderr = "".join(line for line in stderr.splitlines(keepends=True)
                         if not line.startswith("=====") and
                         "AddressSanitizer: CHECK failed: asan_thread.cpp" not in line)
    assert stderr == "", out.stderr


def test_a_message_dropped_unsettled_warns_that_it_was_nacked(node, topic_factory):
    import warnings
    topic = topic_factory(partitions=1)
    publish(node.endpoint, topic, 1)
    with ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest") as sub:
        for attempt in (1, 2):
            m = sub.receive(timeout=30)
            assert m is not None and (m.value, m.delivery_attempt) == (b"v0", attempt)
            if attempt == 2:
                m.ack()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                del m  # the last reference to its response
                gc.collect()
            warned = [str(w.message) for w in caught if w.category is ResourceWarning]
            assert warned == ([] if attempt == 2 else [
                "ferry: 1 message(s) dropped unsettled were nacked (redelivered at once; "
                "each nack counts a delivery attempt), or left to their ack deadline once "
                "the subscriber was closed or failed"])


FAILING_NATIVE_IMPORT = textwrap.dedent("""
    import sys, warnings
    raised = sys.argv[1]

    class Failing:
        def find_spec(self, name, path=None, target=None):
            if name == "ferry._native":
                if raised == "missing":
                    raise ModuleNotFoundError("No module named 'ferry._native'", name=name)
                raise ImportError("libgrpc++.so.1.51: cannot open shared object file")

    sys.meta_path.insert(0, Failing())
    warnings.simplefilter("default")
    import ferry
    print(ferry.native_available())
""")


@pytest.mark.parametrize("raised", ["missing", "unloadable"])
def test_an_extension_that_does_not_load_is_reported_once(raised):
    out = subprocess.run([sys.executable, "-c", FAILING_NATIVE_IMPORT, raised],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.split() == ["False"], out.stdout + out.stderr
    if raised == "missing":  # installed pure Python: silent
        assert "ferry._native" not in out.stderr, out.stderr
    else:
        assert out.stderr.count("ferry._native did not load (libgrpc++.so.1.51") == 1, \
            out.stderr


def test_after_a_fatal_failure_receive_raises_instead_of_handing_out_what_was_taken(
        node, topic_factory):
    # A second endpoint whose stream ends with NOT_FOUND (fatal) while the
    # node's response is being handed out: the rest of it was handed out
    # before (and its acks dropped); as on the pure path, receive raises.
    from concurrent import futures
    import grpc
    fail_now = threading.Event()

    def subscribe(_requests, context):
        fail_now.wait(30)
        context.abort(grpc.StatusCode.NOT_FOUND, "topic deleted")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "ferry.v1.Subscriber", {"Subscribe": grpc.stream_stream_rpc_method_handler(subscribe)})])
    failing = "127.0.0.1:%d" % server.add_insecure_port("127.0.0.1:0")
    server.start()
    topic = topic_factory(partitions=1)
    publish(node.endpoint, topic, 5)
    reported = threading.Event()  # on_error saw it: receive raises from then
    sub = ferry.Subscriber([node.endpoint, failing], unique("g"), [topic], start="earliest",
                           on_error=lambda e: e.fatal and reported.set())
    try:
        assert sub.native
        first = sub.receive(timeout=30)
        assert first is not None and first.value == b"v0"
        fail_now.set()
        assert reported.wait(30)
        assert isinstance(sub.failure, ferry.NotFound)
        with pytest.raises(ferry.NotFound):
            got = sub.receive(timeout=5)
            print("handed out after the failure:", got)
    finally:
        fail_now.set()
        sub.close()
        server.stop(0)


def test_receive_timeout_counts_from_the_call_when_nothing_is_pending(node, topic_factory):
    # Take sets its deadline at its first wait (no clock read per message
    # handed out): a timeout still ends the call in about that time.
    topic = topic_factory(partitions=1)
    with ferry.Subscriber([node.endpoint], unique("g"), [topic], start="earliest") as sub:
        assert sub.native
        for timeout in (0, 0.3, 1.0):
            start = time.monotonic()
            assert sub.receive(timeout=timeout) is None
            assert sub.receive_batch(timeout=timeout) is None
            took = (time.monotonic() - start) / 2
            assert timeout <= took + 0.01 and took < timeout + 1.0, (timeout, took)
