#!/usr/bin/env python3
"""One consume form of bench/python_bench.py in steady state, for profilers:
consumes WARM messages of a backlog, then N more inside a window that perf or
callgrind can be limited to, and prints the window's CPU µs per message
(user and system apart). Hand-run, not CI.

    python_consume_window.py FORM SERVER BOOTSTRAP TOPIC WARM N [keep]
    FORM: kafka (confluent-kafka's consume loop), poll (its poll() loop),
          batch, iterator, callback, callback-key (key ordering: a keyed
          backlog, as python_bench.py --ordered writes)
    keep: call ferry.keep_freed_memory() first (glibc keeps freed memory)

The window is announced to
- perf, through PERF_CTL/PERF_ACK (fifos of `perf ... -D -1 --control
  fifo:CTL,ACK`): `enable` at its start, `disable` at its end;
- callgrind (`valgrind --tool=callgrind --instr-atstart=no`), through
  CG_HELPER: a shared library with cg_on() and cg_off() built from
      #include <valgrind/callgrind.h>
      void cg_on(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
      void cg_off(void) { CALLGRIND_DUMP_STATS_AT("window"); CALLGRIND_STOP_INSTRUMENTATION; }
  (gcc -O2 -shared -fPIC); the window is the dump OUT.1.
The loops do what python_bench's workers do (every value read, every message
acked; confluent-kafka auto-commits).
"""
import ctypes
import os
import resource
import sys
import threading
import uuid


class Window:
    def __init__(self):
        self.helper = ctypes.CDLL(os.environ["CG_HELPER"]) if "CG_HELPER" in os.environ else None
        self.start = None
        self.result = None

    def _tell(self, on):
        if self.helper is not None:
            (self.helper.cg_on if on else self.helper.cg_off)()
        if "PERF_CTL" in os.environ:
            with open(os.environ["PERF_CTL"], "w") as ctl:
                ctl.write("enable\n" if on else "disable\n")
            with open(os.environ["PERF_ACK"]) as ack:
                ack.read(5)

    def open(self, count):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.start = (count, usage.ru_utime, usage.ru_stime)
        self._tell(True)

    def close(self, count):
        self._tell(False)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        n = count - self.start[0]
        self.result = (n, (usage.ru_utime - self.start[1]) / n * 1e6,
                       (usage.ru_stime - self.start[2]) / n * 1e6)


def kafka(bootstrap, topic, warm, total, window, each):
    """consume(500) loop, or poll() (``each``: one message a call)."""
    from confluent_kafka import Consumer
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "pcw-" + uuid.uuid4().hex,
                         "auto.offset.reset": "earliest", "enable.auto.commit": True})
    consumer.subscribe([topic])
    count = 0
    while count < total:
        if window.start is None and count >= warm:
            window.open(count)
        if each:
            message = consumer.poll(1.0)
            batch = [] if message is None else [message]
        else:
            batch = consumer.consume(num_messages=min(500, total - count), timeout=1.0)
        for message in batch:
            if message.error() is None:
                message.value()
                count += 1
    window.close(count)
    consumer.close()


def pulled(form, server, topic, warm, total, window):
    import ferry
    with ferry.Subscriber([server], "pcw-" + uuid.uuid4().hex, [topic],
                          start="earliest") as sub:
        count = 0
        while count < total:
            if window.start is None and count >= warm:
                window.open(count)
            if form == "batch":
                batch = sub.receive_batch(timeout=60, max_messages=total - count)
                batch.values
                batch.ack()
                count += len(batch)
            else:
                message = sub.receive(timeout=60)
                message.value
                message.ack()
                count += 1
        window.close(count)


def callback(server, topic, warm, total, window, ordering="none"):
    import ferry
    lock, done, count = threading.Lock(), threading.Event(), [0]

    def handle(message):
        message.value
        with lock:
            count[0] += 1
            if count[0] == warm:
                threading.Thread(target=window.open, args=(warm,)).start()
            if count[0] >= total:
                done.set()

    sub = ferry.Subscriber([server], "pcw-" + uuid.uuid4().hex, [topic], start="earliest",
                           callback=handle, ordering=ordering)
    done.wait(600)
    window.close(count[0])
    sub.close()


def main():
    form, server, bootstrap, topic = sys.argv[1:5]
    warm, n = int(sys.argv[5]), int(sys.argv[6])
    if sys.argv[7:] == ["keep"]:
        import ferry
        ferry.keep_freed_memory()
    window = Window()
    if form in ("kafka", "poll"):
        kafka(bootstrap, topic, warm, warm + n, window, each=form == "poll")
    elif form in ("callback", "callback-key"):
        callback(server, topic, warm, warm + n, window,
                 ordering="key" if form == "callback-key" else "none")
    else:
        pulled(form, server, topic, warm, warm + n, window)
    n, user, system = window.result
    print("%s %.3f us/msg (user %.3f, sys %.3f) over %d" % (form, user + system, user, system, n))


if __name__ == "__main__":
    main()
