#!/usr/bin/env python3
"""The future of the Python SDK's publish() alone (issue 18): CPU µs per
future of CPython's concurrent.futures.Future (marked running, as publish()'s)
beside ferry._futures.PublishFuture, each step of a publish's life in turn,
with the futures kept alive as an application collecting them does (so the
cyclic collector walks them). Hand-run, not CI; no server.

    .cache/python-venv/bin/python bench/python_futures_bench.py --runs 3
    PYTHONPATH=DIR ... bench/python_futures_bench.py     another ferry package
"""
import argparse
import concurrent.futures
import gc
import time

from ferry import _futures


def stdlib_future():
    future = concurrent.futures.Future()
    future.set_running_or_notify_cancel()
    return future


def publish_future_type():
    made = _futures.for_thread(None)
    probe = made()
    if probe.running():
        return made

    def running():  # a package whose futures start pending (before `pyfuture`)
        future = made()
        future.set_running_or_notify_cancel()
        return future
    return running


def one_pass(make, count, collect):
    """µs per future: made, completed (on another thread than the maker's
    would change nothing: no waiter), its result read; then all together."""
    gc.collect()
    if not collect:
        gc.disable()
    try:
        clock = time.thread_time
        start = clock()
        futures = [make() for _ in range(count)]
        made = clock()
        for i, f in enumerate(futures):
            f.set_result(i)
        completed = clock()
        total = 0
        for f in futures:
            total += f.result()
        read = clock()
    finally:
        gc.enable()
    assert total == count * (count - 1) // 2
    return [(b - a) / count * 1e6 for a, b in
            ((start, made), (made, completed), (completed, read), (start, read))]


def watched_pass(make, count):
    """µs per future watched while pending, as an application adding a done
    callback before the outcome: made, add_done_callback, set_result,
    result(); GC on."""
    def noop(_):
        pass
    gc.collect()
    clock = time.thread_time
    start = clock()
    futures = [make() for _ in range(count)]
    for f in futures:
        f.add_done_callback(noop)
    for i, f in enumerate(futures):
        f.set_result(i)
    total = sum(f.result() for f in futures)
    assert total == count * (count - 1) // 2
    return (clock() - start) / count * 1e6


def fallback_node_handle():
    """What the fallback's Ferry path (_fallback._send_node) hands the
    pure publisher per message in this package: a Callback (publish_prepared_
    callback) or a future watched with a done callback."""
    from ferry import _outgoing, publisher
    if hasattr(publisher.Publisher, "publish_prepared_callback"):
        return "Callback handle", _outgoing.Callback
    make = publish_future_type()

    def watched(sink):
        future = make()
        future.add_done_callback(lambda f: sink(f.exception() or f.result()))
        return future
    return "future + done callback", watched


def handle_pass(make, count):
    """µs per message of the fallback's node-path handle: made, completed."""
    seen = []
    gc.collect()
    clock = time.thread_time
    start = clock()
    handles = [make(seen.append) for _ in range(count)]
    for i, h in enumerate(handles):
        h.set_result(i)
    spent = clock() - start
    assert len(seen) == count
    return spent / count * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--futures", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    kinds = [("concurrent.futures.Future", stdlib_future),
             ("ferry PublishFuture", publish_future_type())]
    print("%d futures kept alive; CPU µs per future (thread_time), runs alternated; "
          "ferry from %s" % (args.futures, _futures.__file__))
    print()
    print("| run | future | GC | make | set_result | result() | all |")
    print("|---|---|---|--:|--:|--:|--:|")
    for run in range(1, args.runs + 1):
        order = kinds if run % 2 else list(reversed(kinds))
        for name, make in order:
            for collect in (True, False):
                cells = one_pass(make, args.futures, collect)
                print("| %d | %s | %s | %s |" % (run, name, "on" if collect else "off",
                                                 " | ".join("%.2f" % c for c in cells)))


    handle_name, handle = fallback_node_handle()
    for title, rows, measure in [
            ("watched while pending (make, add_done_callback, set_result, result)", kinds,
             watched_pass),
            ("fallback's node-path handle (made, completed)", [(handle_name, handle)],
             handle_pass)]:
        print()
        print("| run | %s | µs |" % title)
        print("|---|---|--:|")
        for run in range(1, args.runs + 1):
            for name, make in rows if run % 2 else list(reversed(rows)):
                print("| %d | %s | %.2f |" % (run, name, measure(make, args.futures)))


if __name__ == "__main__":
    main()
