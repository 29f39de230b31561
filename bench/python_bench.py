#!/usr/bin/env python3
"""Python SDK throughput against a running ferryd: publish (batching on) and
consume (callback API, auto-ack), 1 KiB values.

    bench/python_bench.py --server 127.0.0.1:7400 --topic bench --messages 50000

The topic must exist (ferry topics create bench --partitions 3). Prints msgs/s
and the Python process's CPU per message (getrusage: all its threads, gRPC's
included) for each phase. Needs ferry-client installed (scripts/test-python's venv:
.cache/python-venv/bin/python bench/python_bench.py ...).
"""
import argparse
import os
import resource
import threading
import time
import uuid

import ferry


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def publish(args):
    value = os.urandom(args.size)
    with ferry.Publisher([args.server], linger=args.linger, max_batch_messages=args.batch) as pub:
        start, cpu = time.monotonic(), cpu_seconds()
        futures = [pub.publish(args.topic, value, key=(b"k%d" % (i % 64)) if args.keys else None)
                   for i in range(args.messages)]
        pub.flush()
        elapsed, cpu = time.monotonic() - start, cpu_seconds() - cpu
    failed = sum(1 for f in futures if f.exception() is not None)
    rate = args.messages / elapsed
    print("publish: %d msgs of %d B in %.2fs = %.0f msgs/s (%.1f MiB/s), %.1f us CPU/msg, "
          "%d failed" % (args.messages, args.size, elapsed, rate, rate * args.size / 2**20,
                         cpu / args.messages * 1e6, failed))


def consume(args):
    done = threading.Event()
    lock = threading.Lock()
    count = [0]
    first = [None]

    def handle(message):
        with lock:
            if first[0] is None:
                first[0] = time.monotonic()
            count[0] += 1
            if count[0] >= args.messages:
                done.set()

    start, cpu = time.monotonic(), cpu_seconds()
    sub = ferry.Subscriber([args.server], "bench-" + uuid.uuid4().hex[:8], [args.topic],
                           start="earliest", callback=handle, handler_threads=args.threads,
                           max_outstanding_messages=args.outstanding)
    ok = done.wait(300)
    end, cpu = time.monotonic(), cpu_seconds() - cpu
    sub.close()
    elapsed = end - (first[0] or start)
    print("consume: %d msgs in %.2fs (from first message; %.2fs incl. group join) = %.0f msgs/s, "
          "%.1f us CPU/msg (incl. join)%s" % (count[0], elapsed, end - start, count[0] / elapsed,
                                              cpu / max(1, count[0]) * 1e6,
                                              "" if ok else " (TIMED OUT)"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="127.0.0.1:7400")
    parser.add_argument("--topic", default="bench")
    parser.add_argument("--messages", type=int, default=50000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--linger", type=float, default=0.005)
    parser.add_argument("--keys", action="store_true", help="64 keys instead of none")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--outstanding", type=int, default=5000)
    parser.add_argument("--phase", choices=["both", "publish", "consume"], default="both")
    args = parser.parse_args()
    if args.phase in ("both", "publish"):
        publish(args)
    if args.phase in ("both", "consume"):
        consume(args)


if __name__ == "__main__":
    main()
