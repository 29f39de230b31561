#!/usr/bin/env python3
"""The Python SDK's consume forms without a server or gRPC (issue 18): a real
ferry.Subscriber whose stream threads are replaced by a feeder that parses
serialized Subscribe responses (500 × 1 KiB, four receipt runs, as ferryd
sends them) and hands them to the subscriber's core as a stream thread
would, keeping two waiting (flow control). What it measures is the SDK's
own work per message on the application side, which the transport's noise
hides in python_bench.py.

    python bench/python_consume_driver.py --form iterator|callback|batch
        [--messages 200000] [--rounds 3] [--inline] [--steps receive,value]
        [--profile]

--inline: no feeder thread; the application thread injects each response
itself before taking it (the callback form: waits until its calls ended),
so the work is deterministic: for cProfile or `valgrind --tool=callgrind`
(instructions per message = the difference of two --messages counts
divided by their difference). --steps: the iterator's steps per message
(default receive,value,ack; without ack each response is dropped once
handed out). Prints per round: µs per message of the process CPU, of the
application (or handler) threads, and of the feeder.
"""
import argparse
import os
import resource
import sys
import threading
import time

import ferry
from ferry.v1 import subscriber_pb2

PER_RESPONSE = 500
RUNS = 4


def responses(count, size):
    """``count`` distinct serialized responses."""
    value = os.urandom(size)
    out = []
    for r in range(count):
        messages = [subscriber_pb2.ReceivedMessage(
            receipt=b"\x02t-%08d-%04d-rcpt" % (r, i), topic="pybench-backlog-topic",
            partition=i % 4, offset=r * PER_RESPONSE + i, value=value, delivery_attempt=1,
            cluster="main", id="%032x" % (r * PER_RESPONSE + i))
            for i in range(PER_RESPONSE)]
        step = PER_RESPONSE // RUNS
        runs = [subscriber_pb2.ReceiptRun(run=b"run-%d-%d" % (r, k), first_message=k * step,
                                          count=step) for k in range(RUNS)]
        out.append(subscriber_pb2.SubscribeResponse(
            messages=subscriber_pb2.MessageBatch(messages=messages, runs=runs))
                   .SerializeToString())
    return out


class Feeder:
    """Plays one stream of ``sub``: parses and delivers responses."""

    def __init__(self, sub, data):
        self.sub, self.data, self.next = sub, data, 0
        self.sent = 0
        with sub._lock:
            self.stream = sub._core.open_stream(0, self.send)

    def send(self, request):
        self.sent += 1

    def inject(self):
        response = subscriber_pb2.SubscribeResponse.FromString(
            self.data[self.next % len(self.data)])
        self.next += 1
        sub = self.sub
        with sub._lock:
            delivered, _ = sub._core.on_response(self.stream, response, time.monotonic())
            if delivered:
                sub._ready.notify_all()

    def run(self, responses_wanted, stop):
        self.cpu = time.thread_time()
        core = self.sub._core
        while self.next < responses_wanted and not stop.is_set():
            if len(core.delivery) < 2:
                self.inject()
            else:
                time.sleep(0.0002)
        self.cpu = time.thread_time() - self.cpu


def quiet_subscriber(**kwargs):
    """A Subscriber whose stream threads return at once (the feeder plays
    the stream)."""
    original = ferry.Subscriber._stream_loop
    ferry.Subscriber._stream_loop = lambda self, index: None
    try:
        return ferry.Subscriber(["127.0.0.1:1"], "g", ["t"], **kwargs)
    finally:
        ferry.Subscriber._stream_loop = original


def process_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def handler_threads_cpu(sub):
    """CPU seconds of the handler threads and the dispatcher."""
    total = 0.0
    for thread in sub._handlers + [t for t in sub._threads if t.name == "ferry-sub-dispatch"]:
        try:
            with open("/proc/self/task/%d/schedstat" % thread.native_id) as f:
                total += int(f.read().split()[0]) / 1e9
        except OSError:
            continue
    return total


def one_round(form, messages, data, inline, steps=("receive", "value", "ack")):
    done = threading.Event()
    handled = threading.Event()  # --inline: a response's calls ended
    count = [0]
    lock = threading.Lock()

    def handle(message):  # python_bench.py's handler
        message.value
        with lock:
            count[0] += 1
            if count[0] >= messages:
                done.set()
            if count[0] % PER_RESPONSE == 0:
                handled.set()

    sub = quiet_subscriber(start="earliest",
                           callback=handle if form == "callback" else None)
    feeder = Feeder(sub, data)
    wanted = messages // PER_RESPONSE
    stop = threading.Event()
    thread = None
    if not inline:
        thread = threading.Thread(target=feeder.run, args=(wanted, stop), name="feeder")
    start_process, start_app = process_cpu(), time.thread_time()
    start_handlers = handler_threads_cpu(sub)
    if thread is not None:
        thread.start()
    if form == "iterator":
        n = 0
        value, ack = "value" in steps, "ack" in steps
        while n < messages:
            if inline and not sub._core.delivery:
                if not ack:
                    feeder.stream.unsettled.clear()  # handed out: drop it
                feeder.inject()
            message = sub.receive(timeout=10)
            if message is None:
                break
            if value:
                message.value
            if ack:
                message.ack()
            n += 1
    elif form == "batch":
        n = 0
        while n < messages:
            if inline and not sub._core.delivery:
                feeder.inject()
            batch = sub.receive_batch(timeout=10, max_messages=messages - n)
            if batch is None:
                break
            batch.values
            batch.ack()
            n += len(batch)
    elif inline:
        for _ in range(messages // PER_RESPONSE):
            feeder.inject()
            handled.wait(60)
            handled.clear()
        n = count[0]
    else:
        done.wait(60)
        n = count[0]
    app = time.thread_time() - start_app
    if form == "callback":
        app = handler_threads_cpu(sub) - start_handlers
    stop.set()
    if thread is not None:
        thread.join()
    process = process_cpu() - start_process
    fed = 0.0 if inline else feeder.cpu
    sub.close()
    if n < messages:
        sys.exit("only %d of %d messages" % (n, messages))
    stats = sub.stats()
    if "ack" in steps and stats.acks_sent != messages:
        sys.exit("acks_sent %d, wanted %d" % (stats.acks_sent, messages))
    return process, app, fed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--form", choices=["iterator", "callback", "batch"], required=True)
    parser.add_argument("--messages", type=int, default=200000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--inline", action="store_true")
    parser.add_argument("--steps", default="receive,value,ack",
                        help="the iterator's steps per message (comma-separated)")
    parser.add_argument("--profile", action="store_true", help="cProfile one round")
    args = parser.parse_args()
    data = responses(8, args.size)
    if args.profile:
        import cProfile
        import pstats
        profile = cProfile.Profile()
        profile.enable()
        one_round(args.form, args.messages, data, args.inline, args.steps.split(","))
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return
    for r in range(args.rounds):
        process, app, fed = one_round(args.form, args.messages, data, args.inline,
                                      args.steps.split(","))
        per = 1e6 / args.messages
        print("%s round %d: process %.3f µs/msg, %s %.3f, feeder %.3f" % (
            args.form, r + 1, process * per,
            "handlers" if args.form == "callback" else "application", app * per, fed * per))


if __name__ == "__main__":
    main()
