"""The futures publish() returns (ferry._futures.PublishFuture): the
concurrent.futures.Future API with the condition made on first use, on both
paths (scripts/test-python runs this file natively and with FERRY_NATIVE=0,
where the publisher's completing thread is C or Python): the stdlib's
behaviour step by step, every way of waiting or watching racing the
completing thread, and what a live future costs the cyclic collector."""
import asyncio
import concurrent.futures
import copy
import gc
import logging
import os
import pickle
import random
import subprocess
import sys
import threading
import time
import weakref

import pytest

import ferry
from ferry import _futures
import helpers
from test_publish_api import publisher

Future = _futures.for_thread(None)


def stdlib_future():
    future = concurrent.futures.Future()
    future.set_running_or_notify_cancel()  # as publish()'s: running from the start
    return future


def recorders(seen):
    """record(name, call): appends what `call()` gave or raised; callback:
    a done callback appending its thread's name, then raising."""
    def record(name, call):
        try:
            seen.append((name, call()))
        except BaseException as e:  # noqa: B036 - what it raised is observed
            seen.append((name, type(e).__name__))

    def callback(f):
        seen.append(("callback on", threading.current_thread().name))
        raise ValueError("in a done callback")
    return record, callback


def observe(make, caplog):
    """What each call of the API gives or raises on a future from `make`."""
    seen = []
    record, callback = recorders(seen)

    f = make()
    for name, call in [("running", f.running), ("done", f.done), ("cancelled", f.cancelled),
                       ("cancel", f.cancel), ("result", lambda: f.result(0.01)),
                       ("exception", lambda: f.exception(0.01)),
                       ("set_running", f.set_running_or_notify_cancel),
                       ("repr", lambda: repr(f).split(" at ")[1].split(" ", 1)[1]),
                       ("pickle", lambda: pickle.dumps(f)),
                       ("weakref", lambda: weakref.ref(f)() is f),
                       ("wait first", lambda: len(concurrent.futures.wait(
                           [f], 0.01, concurrent.futures.FIRST_COMPLETED).done))]:
        record(name, call)
    f.add_done_callback(callback)
    completer = threading.Thread(target=f.set_result, args=(7,), name="completer")
    completer.start()
    completer.join()
    f.add_done_callback(callback)  # done: runs here, at once
    for name, call in [("running", f.running), ("done", f.done), ("cancel", f.cancel),
                       ("result", f.result), ("result 0", lambda: f.result(0)),
                       ("exception", f.exception), ("set_result", lambda: f.set_result(8)),
                       ("set_exception", lambda: f.set_exception(KeyError())),
                       ("repr", lambda: repr(f).split(" at ")[1].split(" ", 1)[1]),
                       ("wait all", lambda: len(concurrent.futures.wait([f], 1).done)),
                       ("as_completed", lambda: list(concurrent.futures.as_completed([f])) == [f]),
                       ("wrap_future", lambda: asyncio.run(wrapped(f)))]:
        record(name, call)
    failed = make()
    failed.set_exception(KeyError("k"))
    for name, call in [("failed result", failed.result), ("failed exception",
                                                           lambda: repr(failed.exception(0))),
                       ("failed repr", lambda: repr(failed).split(" at ")[1].split(" ", 1)[1]),
                       ("failed wait", lambda: len(concurrent.futures.wait(
                           [failed], 1, concurrent.futures.FIRST_EXCEPTION).done)),
                       ("failed wrap_future", lambda: asyncio.run(wrapped(failed)))]:
        record(name, call)
    logged = [(r.levelname, r.msg) for r in caplog.records if r.name == "concurrent.futures"]
    return seen, logged


async def wrapped(future):
    return await asyncio.wrap_future(future)


def test_the_stdlib_future_api_step_by_step(caplog):
    caplog.set_level(logging.ERROR)
    expected = observe(stdlib_future, caplog)
    caplog.clear()
    assert observe(Future, caplog) == expected
    # Logged as the stdlib logs them: set_running_or_notify_cancel on a
    # running future, then the two callbacks that raised.
    assert [level for level, _ in expected[1]] == ["CRITICAL", "ERROR", "ERROR"]
    assert ("pickle", "TypeError") in expected[0]


def completed_first(make, caplog):
    """The API on a future completed before anything else was called on it
    (so without its condition), then the calls after completion."""
    seen = []
    record, callback = recorders(seen)

    f = make()
    f.set_result(7)
    f.add_done_callback(callback)  # done: runs here, at once
    for name, call in [("running", f.running), ("done", f.done), ("cancel", f.cancel),
                       ("result", f.result), ("result 0", lambda: f.result(0)),
                       ("exception", f.exception), ("set_result", lambda: f.set_result(8)),
                       ("set_exception", lambda: f.set_exception(KeyError())),
                       ("result after", f.result),
                       ("repr", lambda: repr(f).split(" at ")[1].split(" ", 1)[1]),
                       ("wait first", lambda: len(concurrent.futures.wait(
                           [f], 1, concurrent.futures.FIRST_COMPLETED).done)),
                       ("wait all", lambda: len(concurrent.futures.wait([f], 1).done)),
                       ("as_completed", lambda: list(concurrent.futures.as_completed([f])) == [f]),
                       ("wrap_future", lambda: asyncio.run(wrapped(f)))]:
        record(name, call)
    logged = [(r.levelname, r.msg) for r in caplog.records if r.name == "concurrent.futures"]
    return seen, logged


def test_a_future_completed_before_any_call_as_the_stdlib(caplog):
    caplog.set_level(logging.ERROR)
    expected = completed_first(stdlib_future, caplog)
    caplog.clear()
    assert completed_first(Future, caplog) == expected
    assert ("set_result", "InvalidStateError") in expected[0]
    assert [level for level, _ in expected[1]] == ["ERROR"]


def test_copying_a_future_raises_type_error():
    # (The stdlib's copies shallowly; a copy would share nothing made later.)
    f = Future()
    with pytest.raises(TypeError):
        copy.copy(f)
    with pytest.raises(TypeError):
        copy.deepcopy(f)


def test_the_stdlib_future_has_the_members_publish_future_stands_in_for():
    # PublishFuture replaces these (slots, or made on first use); a CPython
    # whose Future gains a member must be looked at again.
    assert set(vars(concurrent.futures.Future())) == {
        "_condition", "_state", "_result", "_exception", "_waiters", "_done_callbacks"}


def test_without_the_gil_the_futures_take_the_condition_in_each_method(monkeypatch):
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    locked = _futures.for_thread(None)
    assert issubclass(locked, _futures.PublishFuture)
    assert locked.done is concurrent.futures.Future.done
    f = locked()
    assert f._sync is not None  # made with the future: completed the stdlib's way
    ran = []
    f.add_done_callback(ran.append)
    waiter = threading.Thread(target=lambda: ran.append(f.result(10)))
    waiter.start()
    f.set_result(3)
    waiter.join(10)
    assert sorted(ran, key=repr) == [3, f] and not f.cancel()
    assert list(concurrent.futures.as_completed([f], 1)) == [f]


def test_a_forked_child_can_wait_while_a_parent_thread_held_the_install_lock():
    """A thread of the parent holds ``_install`` across the fork: the child
    (one thread) would wait for it forever without the fork handler."""
    code = """
import concurrent.futures, os, sys, threading, time
from ferry import _futures
if sys.argv[1] == "no-handler":
    os.register_at_fork(after_in_child=lambda: setattr(_futures, "_install", held))
taken, release = threading.Event(), threading.Event()
def hold():
    with _futures._install:
        taken.set()
        release.wait()
threading.Thread(target=hold, daemon=True).start()
taken.wait()
held = _futures._install
pid = os.fork()
if pid == 0:
    try:
        _futures.PublishFuture().result(0.01)
    except concurrent.futures.TimeoutError:  # the builtin one from 3.11
        os._exit(0)
    os._exit(1)
release.set()
for _ in range(300):  # 3 s for the child
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        sys.exit(os.waitstatus_to_exitcode(status))
    time.sleep(0.01)
os.kill(pid, 9)
os.waitpid(pid, 0)
sys.exit(3)  # the child hung
"""
    ok = subprocess.run([sys.executable, "-c", code, "handler"], timeout=60)
    assert ok.returncode == 0
    # The same with the lock put back as the parent's thread held it (no
    # handler): the child hangs.
    hung = subprocess.run([sys.executable, "-c", code, "no-handler"], timeout=60)
    assert hung.returncode == 3


def test_waiting_on_a_pending_future_on_its_completing_thread_raises():
    mine = _futures.for_thread(threading.get_ident())()
    with pytest.raises(RuntimeError, match="wait forever"):
        mine.result()
    with pytest.raises(RuntimeError, match="wait forever"):
        mine.exception(1)
    mine.set_result(1)
    assert mine.result() == 1 and mine.exception() is None


def outcome(f, timeout=None):
    try:
        return "ok", f.result(timeout)
    except Exception as e:  # noqa: BLE001 - the outcome is what it raised
        return "error", type(e).__name__


def race(futures, complete=None):
    """Waits for and watches `futures` in every way at once, from threads
    started together (with `complete`, the completing thread among them);
    returns what went wrong (empty: nothing)."""
    got, wrong = {}, []
    calls = [0] * len(futures)
    index = {id(f): i for i, f in enumerate(futures)}
    lock = threading.Lock()

    def count(f):
        with lock:
            calls[index[id(f)]] += 1

    def results():
        got["result"] = [outcome(f, 30) for f in futures]

    def exceptions():
        got["exception"] = [type(f.exception(30)).__name__ for f in futures]

    def callbacks():
        for f in futures:
            f.add_done_callback(count)

    def waits():
        for when in (concurrent.futures.FIRST_COMPLETED, concurrent.futures.FIRST_EXCEPTION,
                     concurrent.futures.ALL_COMPLETED):
            done, not_done = concurrent.futures.wait(futures, 30, when)
            if not done or not all(f.done() for f in done):
                wrong.append((when, len(done), len(not_done)))
        got["wait"] = (len(done), len(not_done))

    def completed():
        yielded = []
        for f in concurrent.futures.as_completed(futures, 30):
            if not f.done():
                wrong.append("as_completed yielded a pending future")
            yielded.append(index[id(f)])
        got["as_completed"] = sorted(yielded)

    def wrapped_all():
        async def gather():
            return await asyncio.gather(*(asyncio.wrap_future(f) for f in futures),
                                        return_exceptions=True)
        got["wrap_future"] = [("error", type(o).__name__) if isinstance(o, Exception)
                              else ("ok", o) for o in asyncio.run(gather())]

    def polled():
        while not all(f.done() for f in futures):
            pass
        got["polled"] = [outcome(f, 0) for f in futures]

    jobs = [results, exceptions, callbacks, waits, completed, wrapped_all, polled]
    jobs += [complete] if complete else []
    start = threading.Barrier(len(jobs))

    def run(job):
        start.wait()
        try:
            job()
        except BaseException as e:  # noqa: B036 - reported below
            wrong.append((job.__name__, repr(e)))

    threads = [threading.Thread(target=run, args=(job,), daemon=True) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if any(t.is_alive() for t in threads):
        return wrong + ["a thread still waits"]
    final = [outcome(f, 0) for f in futures]
    want = {"result": final, "exception": [type(f.exception()).__name__ for f in futures],
            "wait": (len(futures), 0), "as_completed": list(range(len(futures))),
            "wrap_future": final, "polled": final}
    wrong += [(name, "differs") for name in want if got.get(name) != want[name]]
    # The completing thread runs the callbacks once the state is FINISHED.
    helpers.wait_until(lambda: all(calls), timeout=10)
    if calls != [1] * len(futures):
        wrong.append(("callbacks run", sorted(set(calls))))
    return wrong


def test_waiting_and_watching_race_a_python_completing_thread():
    def complete():
        for i, f in enumerate(futures):
            if i % 3:
                f.set_result(i)
            else:
                f.set_exception(ValueError(i))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(30):
            futures = [Future() for _ in range(200)]
            assert race(futures, complete) == []
    finally:
        sys.setswitchinterval(interval)


def pausing_at_each_line(frame, event, arg):
    """A trace function: a thread sleeps a random while at each line of
    ferry._futures, so that another may run between any two of them."""
    if frame.f_code.co_filename != _futures.__file__:
        return None

    def line(frame, event, arg):
        if event == "line":
            time.sleep(random.random() * 1e-3)
        return line
    return line


def test_one_future_raced_line_by_line():
    """Waiters making the condition while the completing thread checks for
    it and completes, each pausing between lines: a waiter is never left
    waiting, a callback runs once."""
    threading.settrace(pausing_at_each_line)
    try:
        for round in range(60):
            future = Future()
            ran = []
            jobs = [lambda: future.set_result(round), lambda: future.result(5),
                    lambda: future.exception(5), lambda: future.add_done_callback(ran.append),
                    lambda: concurrent.futures.wait([future], 5)]
            start = threading.Barrier(len(jobs))
            failed = []

            def run(job):
                start.wait()
                time.sleep(random.random() * 3e-3)
                try:
                    job()
                except BaseException as e:  # noqa: B036 - reported below
                    failed.append(repr(e))

            threads = [threading.Thread(target=run, args=(job,), daemon=True) for job in jobs]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            assert not failed and helpers.wait_until(lambda: ran == [future], 5), (round, failed)
    finally:
        threading.settrace(None)


def test_waiting_and_watching_race_the_publishers_completing_thread(node, topic_factory):
    topic = topic_factory()
    with ferry.Publisher([node.endpoint]) as pub:
        for _ in range(10):
            futures = [pub.publish(topic, b"m-%d" % i) for i in range(300)]
            assert race(futures) == []
    with publisher(delivery_timeout=0.2) as pub:  # fails them all, in batches
        for _ in range(5):
            futures = [pub.publish("t", b"x") for _ in range(300)]
            assert race(futures) == []


def test_callbacks_added_during_completion_run_once_each(node, topic_factory):
    topic = topic_factory()
    with ferry.Publisher([node.endpoint]) as pub:
        futures = [pub.publish(topic, b"m-%d" % i) for i in range(500)]
        ran = [[] for _ in futures]
        index = {id(f): i for i, f in enumerate(futures)}

        def record(name):
            return lambda f: ran[index[id(f)]].append(name)

        def outer(f):
            record("outer")(f)
            f.add_done_callback(record("self"))  # done: at once, here
            later = index[id(f)] + 1
            if later < len(futures):  # maybe pending: on its completion
                futures[later].add_done_callback(record("previous"))

        for f in futures:
            f.add_done_callback(outer)
        side = threading.Thread(target=lambda: [f.add_done_callback(record("side"))
                                                for f in futures])
        side.start()
        side.join(30)
        assert pub.flush(30)
        concurrent.futures.wait(futures, 30)

        want = [["outer", "self", "side"]] + [["outer", "previous", "self", "side"]] * (
            len(futures) - 1)
        assert helpers.wait_until(lambda: [sorted(r) for r in ran] == want), \
            [r for r, w in zip(ran, want) if sorted(r) != w][:3]
    assert all(r.index("outer") < r.index("self") for r in ran)


def tracked_objects_per(count, make):
    """GC-tracked objects per item that `make()` leaves alive (the cyclic
    collector walks each of them on every full collection)."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        before = len(gc.get_objects())
        kept = make()
        return (len(gc.get_objects()) - before) / count, kept
    finally:
        if enabled:
            gc.enable()


def test_a_future_nobody_waited_on_costs_the_collector_one_object():
    def make_complete_read():
        futures = [Future() for _ in range(1000)]
        for i, f in enumerate(futures):
            f.set_result(i)
        assert all(f.done() and f.result() == i and f.exception() is None
                   for i, f in enumerate(futures))
        return futures

    per_future, _ = tracked_objects_per(1000, make_complete_read)
    assert per_future < 1.1  # the stdlib's: about 10 (Condition, deque, lists, methods)


def test_a_pending_publish_future_costs_the_collector_one_object_more_than_a_callback():
    def on_outcome(_):
        pass

    with publisher(delivery_timeout=60) as pub:
        with_callback, _ = tracked_objects_per(
            1000, lambda: [pub.publish("t", b"x", callback=on_outcome) for _ in range(1000)])
        with_future, _ = tracked_objects_per(
            1000, lambda: [pub.publish("t", b"x") for _ in range(1000)])
        pub.close(0)
    assert with_future - with_callback < 1.5, (with_future, with_callback)  # stdlib's: +10


@pytest.mark.skipif(not ferry.native_available(), reason="native path off (FERRY_NATIVE=0)")
def test_the_native_delivery_thread_completes_unwatched_futures_without_set_result(
        node, topic_factory, monkeypatch):
    topic = topic_factory()
    calls = []

    def counting(name):
        stdlib_way = getattr(_futures.PublishFuture, name)
        return lambda f, outcome: (calls.append(name), stdlib_way(f, outcome))[1]

    with ferry.Publisher([node.endpoint]) as pub:
        future_type = type(pub.publish(topic, b"first"))
        for name in ("set_result", "set_exception"):
            monkeypatch.setattr(future_type, name, counting(name))
        futures = [pub.publish(topic, b"m-%d" % i) for i in range(200)]
        assert pub.flush(30)
        assert calls == [] and all(f.result(0) for f in futures)
    with publisher(delivery_timeout=1) as pub:  # fails them, in batches
        future_type = type(pub.publish("t", b"first"))
        for name in ("set_result", "set_exception"):
            monkeypatch.setattr(future_type, name, counting(name))
        futures = [pub.publish("t", b"x") for _ in range(200)]
        ran = []
        assert not futures[-1].done()
        futures[-1].add_done_callback(ran.append)  # pending: its condition is made
        pub.flush(30)
        assert all(f.exception(0) for f in futures) and ran == [futures[-1]]
    assert calls == ["set_exception"]


@pytest.mark.skipif(not ferry.native_available(), reason="native path off (FERRY_NATIVE=0)")
def test_the_native_publisher_takes_only_publish_future_types(monkeypatch):
    class LookAlike(concurrent.futures.Future):  # the same slots, not a PublishFuture
        __slots__ = ("_sync", "_state", "_result", "_exception")

    from ferry import _native_publisher
    monkeypatch.setattr(_native_publisher._futures, "for_thread", lambda ident: LookAlike)
    with pytest.raises(TypeError, match="PublishFuture subclass"):
        publisher()
