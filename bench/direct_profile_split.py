#!/usr/bin/env python3
"""Splits a callgrind dump of bench/direct_profile (the direct librdkafka
producer) into librdkafka's components, as instructions (Ir) per message, the
counterpart of publish_profile_split.py (bench/RESULTS.md, branch pubfloor).

  valgrind --tool=callgrind --callgrind-out-file=cg.%p build/bench/direct_profile \\
      --bootstrap HOST:PORT --messages 20000 [--size 1024]
  bench/direct_profile_split.py 20000 cg.PID.1 [more dumps...]

A part is the inclusive cost of the function that owns the work. The thread
rows are what is left of each thread after its named parts; the threads'
totals come from bench/profile_threads.py (a dump that was zeroed by a client
request charges calls that were active at the zeroing with the warm-up).
"""
import re
import sys

import publish_profile_split
from publish_profile_split import parse


def table(path, n):
    self_cost, calls = parse(path)
    incl = {f: self_cost[f] + sum(calls[f].values()) for f in set(self_cost) | set(calls)}

    def I(name):
        return incl.get(name, 0)

    def call(frm, to):
        rf, rt = re.compile(frm), re.compile(to)
        return sum(v for f in calls if rf.search(f) for c, v in calls[f].items() if rt.search(c))
    total = sum(self_cost.values())
    produce = I(next((f for f in incl if f.startswith('(anonymous namespace)::Produce(')), ''))
    producev = I('rd_kafka_producev')
    topic = call(r'^rd_kafka_producev$', r'^rd_kafka_topic_new0$')
    record = call(r'^rd_kafka_producev$', r'^rd_kafka_msg_new0$')
    partition = call(r'^rd_kafka_producev$', r'^rd_kafka_msg_partitioner$')
    writer = call(r'^rd_kafka_msgset_create_ProduceRequest$', r'^rd_kafka_msgset_writer_write_msg$')
    crc = call(r'^rd_kafka_msgset_create_ProduceRequest$', r'^rd_slice_crc32c$')
    request = I('rd_kafka_ProduceRequest')
    response = I('rd_kafka_handle_Produce')
    freed = call(r'^rd_kafka_poll_cb$', r'^rd_kafka_msg_destroy$')
    app_cb = call(r'^rd_kafka_poll_cb$', r'OnDelivery')
    poll = I('rd_kafka_poll')
    rows = [
        ("application: produce loop, key looked up", produce - producev),
        ("producev: arguments, clock", producev - topic - record - partition),
        ("producev: topic handle looked up by name", topic),
        ("producev: message record allocated, key and value copied", record),
        ("producev: partitioner (murmur2) and partition queue (lock)", partition),
        ("broker thread: msgset writer (fields, varints, copy)", writer),
        ("broker thread: CRC32C", crc),
        ("broker thread: ProduceRequest, rest", request - writer - crc),
        ("broker thread: response parsed, reports queued", response),
        ("poll thread: message record freed", freed),
        ("poll thread: the application's report callback", app_cb),
        ("poll thread: report dispatch, rest", poll - freed - app_cb),
        ("other (broker thread's I/O and loop, librdkafka's main thread)",
         total - produce - request - response - poll),
    ]
    return total, rows


if __name__ == '__main__':
    publish_profile_split.main(table)
