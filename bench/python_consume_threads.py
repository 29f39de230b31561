#!/usr/bin/env python3
"""Which thread of a consuming Python process costs what (issue 18): one
ferry.Subscriber in steady state against a running ferryd, CPU per message of
each thread from /proc/self/task/*/schedstat. Hand-run, not CI.

    python bench/python_consume_threads.py --server HOST:PORT --topic T
        [--form batch|iterator|callback|aio-batch] [--skip 20000] [--messages 100000]

The topic holds a backlog of at least --skip + --messages messages (e.g.
written by `python_bench.py`'s publish_many, or `ferry produce`). A fresh
group reads it from the earliest offset; the first --skip messages warm up,
then each thread's CPU is read before and after --messages. Threads are
named by their Python name (ferry-sub-loop, ferry-handler-N, ...) or their
kernel name (gRPC's C threads); the handler threads are summed. In
grpcio 1.85's sync stack "Thread-1 (_run)" is the channel spin thread and
"Thread-2 (_run)" a stream's request-iterator thread; in grpc.aio
"(_poll_wrapper)" is its completion-queue poller. Run it with
each SDK's interpreter (its own virtualenv) to compare them.
"""
import argparse
import collections
import json
import os
import threading
import time
import uuid

import ferry
from ferry._subscriber_core import SubscriberCore

#: Responses with messages, counted around SubscriberCore.on_response (both
#: SDKs have it): the response size explains many outliers.
RESPONSES = [0]
_on_response = SubscriberCore.on_response


def _counted_on_response(self, stream, response, now):
    if response.WhichOneof("response") == "messages":
        RESPONSES[0] += 1
    return _on_response(self, stream, response, now)


SubscriberCore.on_response = _counted_on_response


def thread_cpu():
    """{tid: (name, CPU seconds)} of this process's live threads."""
    python_names = {t.native_id: t.name for t in threading.enumerate()}
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/schedstat" % tid) as f:
                ns = int(f.read().split()[0])
            with open("/proc/self/task/%s/comm" % tid) as f:
                comm = f.read().strip()
        except OSError:
            continue
        name = python_names.get(int(tid), comm)
        if name.startswith("ferry-handler-"):
            name = "ferry-handler-*"
        out[int(tid)] = (name, ns / 1e9)
    return out


def by_name(before, after):
    """CPU seconds per thread name between two thread_cpu() readings."""
    total = collections.Counter()
    for tid, (name, seconds) in after.items():
        total[name] += seconds - before.get(tid, (name, 0.0))[1]
    return total


def consume(args):
    group = "pythreads-" + uuid.uuid4().hex[:8]
    wanted = args.skip + args.messages
    count = [0]
    marks = {}
    done = threading.Event()
    lock = threading.Lock()

    def mark():
        if count[0] >= args.skip and "start" not in marks:
            marks["start"] = (time.monotonic(), thread_cpu(), RESPONSES[0])
        if count[0] >= wanted and "end" not in marks:
            marks["end"] = (time.monotonic(), thread_cpu(), RESPONSES[0])
            done.set()

    def handle(message):
        message.value
        with lock:
            count[0] += 1
            if count[0] in (args.skip, wanted):
                mark()

    sub = ferry.Subscriber([args.server], group, [args.topic], start="earliest",
                           callback=handle if args.form == "callback" else None)
    try:
        if args.form == "callback":
            if not done.wait(120):
                raise SystemExit("only %d of %d messages" % (count[0], wanted))
        while not done.is_set():
            if args.form == "batch":
                limit = (args.skip if count[0] < args.skip else wanted) - count[0]
                batch = sub.receive_batch(timeout=60, max_messages=limit)
                if batch is None:
                    raise SystemExit("only %d of %d messages" % (count[0], wanted))
                batch.values
                batch.ack()
                count[0] += len(batch)
            else:
                message = sub.receive(timeout=60)
                if message is None:
                    raise SystemExit("only %d of %d messages" % (count[0], wanted))
                message.value
                message.ack()
                count[0] += 1
            mark()
    finally:
        sub.close()
    return marks


def consume_aio(args):
    """The batch form of ferry.aio.Subscriber: the application's coroutine
    runs on the thread that runs the streams."""
    import asyncio
    import ferry.aio

    async def run():
        count, marks = 0, {}
        async with ferry.aio.Subscriber([args.server], "pythreads-" + uuid.uuid4().hex[:8],
                                        [args.topic], start="earliest") as sub:
            for phase, stop in (("start", args.skip), ("end", args.skip + args.messages)):
                while count < stop:
                    batch = await sub.receive_batch(timeout=60, max_messages=stop - count)
                    if batch is None:
                        raise SystemExit("only %d of %d messages" % (count, stop))
                    batch.values
                    batch.ack()
                    count += len(batch)
                marks[phase] = (time.monotonic(), thread_cpu(), RESPONSES[0])
        return marks

    return asyncio.run(run())


def report(args, marks):
    (t0, before, r0), (t1, after, r1) = marks["start"], marks["end"]
    per = 1e6 / args.messages
    threads = {name: round(seconds * per, 3)
               for name, seconds in by_name(before, after).most_common() if seconds > 0}
    return {"form": args.form, "process": round(sum(threads.values()), 3),
            "wall_msgs_per_s": round(args.messages / (t1 - t0)),
            "per_response": round(args.messages / max(1, r1 - r0)), "threads": threads}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--form", choices=["batch", "iterator", "callback", "aio-batch"],
                        default="batch")
    parser.add_argument("--skip", type=int, default=20000)
    parser.add_argument("--messages", type=int, default=100000)
    args = parser.parse_args()
    marks = consume_aio(args) if args.form == "aio-batch" else consume(args)
    print(json.dumps(report(args, marks)))


if __name__ == "__main__":
    main()
