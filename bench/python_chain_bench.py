#!/usr/bin/env python3
"""The key-ordered callback API's chain bookkeeping alone (issue 18): CPU ns
per message of SubscriberCore's chain_keys and admit_handlers over a response
of 1,000 distinct keys, then the end of each call under the subscriber's
lock as its handler thread takes it: handler_done and the lock per call, or
(a package with chains_done, 683a963-bc74112) chains_done and the lock per
chunk of 32; without I/O. Hand-run, not CI; PYTHONPATH picks the ferry
package to measure.

    python3 bench/python_chain_bench.py LABEL
"""
import sys
import threading
import time

from ferry._subscriber_core import SubscriberCore


class M:
    """What the bookkeeping reads of a message."""
    __slots__ = ("key", "topic", "partition")

    def __init__(self, k):
        self.key, self.topic, self.partition = k, "t", 0


core = SubscriberCore(None, ["a:1"], "g", ["t"], ordering="key", ack_deadline=30,
                      max_outstanding_messages=1000, max_outstanding_bytes=1 << 20,
                      start="earliest", filter="", max_delivery_attempts=0,
                      dead_letter_topic="", client_id="x", ack_batch=(500, 0.005),
                      max_extension=60, reconnect_backoff=(0.1, 1))
msgs = [M(b"key-%d" % i) for i in range(1000)]
lock = threading.Lock()


def per_call():
    ready, _ = core.admit_handlers(core.chain_keys(msgs))
    for _, key in ready:
        with lock:
            core.handler_done(key)


def per_chunk():
    ready = core.admit_handlers(core.chain_keys(msgs))
    for i in range(0, len(ready), 32):
        chained = ready[i:i + 32]
        while chained:
            with lock:
                chained = core.chains_done(chained)


once = per_chunk if hasattr(core, "chains_done") else per_call


best = []
for _ in range(5):
    t = time.process_time()
    for _ in range(500):
        once()
    best.append((time.process_time() - t) / 500 / 1000 * 1e9)
print("%s: %.0f ns/msg CPU (best of 5; all %s)" % (
    sys.argv[1], min(best), " ".join("%.0f" % b for b in best)))
