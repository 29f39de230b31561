"""The Publisher's documented API without a server, the same on the native
and the pure path (scripts/test-python runs this file on both): futures,
accepted inputs, errors at close, limits."""
import asyncio
import collections.abc
import concurrent.futures
import threading
import weakref

import pytest

import ferry


def unreachable():
    import socket
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return "127.0.0.1:%d" % unused.getsockname()[1]


def publisher(**options):
    options.setdefault("delivery_timeout", 0.5)
    options.setdefault("retry_backoff", (0.05, 0.1))
    return ferry.Publisher([unreachable()], **options)


def test_publish_returns_a_concurrent_futures_future():
    with publisher() as pub:
        futures = [pub.publish("t", b"x"), pub.publish_many("t", [b"a", b"b"])]
        assert all(isinstance(f, concurrent.futures.Future) for f in futures)
        assert weakref.ref(futures[0])() is futures[0]
        assert not futures[0].cancel()  # running: a queued message is not taken back
        done, _ = concurrent.futures.wait(futures, timeout=10)
        assert set(done) == set(futures)
        assert set(concurrent.futures.as_completed(futures, timeout=10)) == set(futures)

        async def awaited():
            return await asyncio.wrap_future(pub.publish("t", b"y"))

        with pytest.raises(ferry.Unavailable):
            asyncio.run(awaited())
        assert [type(o) for o in futures[1].result()] == [ferry.Unavailable] * 2


def test_waiting_in_a_done_callback_for_a_pending_future_of_the_same_publisher_raises():
    seen = []
    with publisher(delivery_timeout=0.3) as pub:
        first = pub.publish("t", b"1")
        later = []

        def on_done(_):
            try:
                seen.append(later[0].result(5))
            except BaseException as e:  # noqa: B036 - what it raised is the test
                seen.append(e)

        first.add_done_callback(on_done)
        later.append(pub.publish("t", b"2"))
        assert pub.flush(10)
    assert len(seen) == 1
    # Pending: refused at once instead of stalling the thread that completes
    # it. Already done (failed in the same batch): its outcome.
    assert (isinstance(seen[0], RuntimeError) and "wait forever" in str(seen[0])
            or isinstance(seen[0], ferry.Unavailable)), seen


class Headers(collections.abc.Mapping):
    def __init__(self, items):
        self._items = dict(items)

    def __getitem__(self, key):
        return self._items[key]

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)


def test_accepts_what_to_bytes_and_to_header_list_accept():
    with publisher() as pub:
        accepted = [
            pub.publish("t", bytearray(b"v"), key=memoryview(b"k")),
            pub.publish("t", None),
            pub.publish("t", "v", headers={"h": None, "b": bytearray(b"1")}),
            pub.publish("t", b"v", headers=[["h", b"1"], ("g", memoryview(b"2"))]),
            pub.publish("t", b"v", headers=Headers({"h": b"1"})),
            pub.publish("t", b"v", headers=[]),
            pub.publish_many("t", [bytearray(b"a"), (memoryview(b"b"), bytearray(b"k"),
                                                     [["h", None]])]),
        ]
        with pytest.raises(TypeError):
            pub.publish("t", 5)
        with pytest.raises(TypeError):
            pub.publish("t", b"v", headers={1: b"x"})
        with pytest.raises(TypeError):
            pub.publish_many("t", [5])
        assert len(accepted) == 7


def test_errors_after_close_are_final():
    pub = publisher(delivery_timeout=60, close_timeout=60)
    pending = pub.publish("t", b"x")
    many = pub.publish_many("t", [b"a"])
    assert pub.close(0.2) is False
    error = pending.exception(10)
    assert isinstance(error, ferry.Unavailable) and "publisher closed" in str(error)
    assert not error.retryable  # retrying after one's own close cannot succeed
    assert error.endpoint is None  # no node refused it
    [outcome] = many.result(10)
    assert isinstance(outcome, ferry.Unavailable) and not outcome.retryable
    with pytest.raises(ferry.Unavailable) as refused:
        pub.publish("t", b"x")
    assert not refused.value.retryable and "publisher closed" in str(refused.value)
    with pytest.raises(ferry.Unavailable):
        pub.publish_many("t", [b"x"])


def test_publish_many_larger_than_max_outstanding_bytes_fails_at_once():
    with publisher(max_outstanding_bytes=1000) as pub:
        with pytest.raises(ferry.InvalidArgument, match="max_outstanding_bytes"):
            pub.publish_many("t", [b"x" * 400] * 3)
        assert isinstance(pub.publish_many("t", [b"x" * 100] * 3), concurrent.futures.Future)


def test_a_second_close_returns_once_the_first_one_ended():
    pub = publisher(delivery_timeout=60, close_timeout=60)
    future = pub.publish("t", b"x")
    first = threading.Thread(target=pub.close, args=(1.0,))
    first.start()
    threading.Event().wait(0.3)  # the first close is flushing (for 1 s)
    pub.close()
    # The first close ended the publisher before the second returned.
    assert future.done()
    first.join(10)
