#!/usr/bin/env python3
"""One benchmark client of bench/sdk_bench: publishes or consumes --messages
messages of --size bytes with the Ferry Python SDK (--client ferry, through
ferryd) or with confluent-kafka (--client confluent, straight to Kafka), and
prints one JSON line: messages, seconds of the measured window and the
process's own user+system CPU seconds in it (getrusage)."""
import argparse
import json
import resource
import threading
import time


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start():
    wall, cpu = time.monotonic(), cpu_seconds()
    return lambda messages: {"messages": messages, "seconds": time.monotonic() - wall,
                             "cpu": cpu_seconds() - cpu}


def key(i):
    return b"k%d" % (i % 1000)


def ferry_publish(args, value):
    import ferry
    with ferry.Publisher([args.target]) as publisher:
        stop = start()
        futures = [publisher.publish(args.topic, value, key=key(i)) for i in range(args.messages)]
        for future in futures:
            future.result()
        return stop(args.messages)


def ferry_consume(args, value):
    import ferry
    done = threading.Event()
    lock = threading.Lock()
    received = [0]

    def handle(message):  # auto_ack: returning acks the message
        with lock:
            received[0] += 1
            if received[0] == args.messages:
                done.set()

    stop = start()
    subscriber = ferry.Subscriber([args.target], args.group, [args.topic], start="earliest",
                                  callback=handle, max_outstanding_messages=5000,
                                  max_outstanding_bytes=64 << 20)
    done.wait()
    result = stop(received[0])
    subscriber.close()
    return result


def confluent_publish(args, value):
    import confluent_kafka
    producer = confluent_kafka.Producer({
        "bootstrap.servers": args.target, "acks": "all", "enable.idempotence": True,
        "linger.ms": 5})
    failed = [0]

    def report(error, _message):
        if error is not None:
            failed[0] += 1

    stop = start()
    for i in range(args.messages):
        while True:
            try:
                producer.produce(args.topic, value, key(i), on_delivery=report)
                break
            except BufferError:  # local queue full: serve delivery reports
                producer.poll(0.01)
        producer.poll(0)
    producer.flush()
    if failed[0]:
        raise SystemExit("%d messages failed" % failed[0])
    return stop(args.messages)


def confluent_consume(args, value):
    import confluent_kafka
    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": args.target, "group.id": args.group,
        "auto.offset.reset": "earliest"})
    consumer.subscribe([args.topic])
    stop = start()
    received = 0
    while received < args.messages:
        for message in consumer.consume(500, 1.0):
            if message.error() is None:
                received += 1
    result = stop(received)
    consumer.close()
    return result


RUNS = {("ferry", "publish"): ferry_publish, ("ferry", "consume"): ferry_consume,
        ("confluent", "publish"): confluent_publish, ("confluent", "consume"): confluent_consume}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", choices=["ferry", "confluent"], default="ferry")
    parser.add_argument("--mode", choices=["publish", "consume"], default="publish")
    parser.add_argument("--target", default="127.0.0.1:7400")
    parser.add_argument("--topic", default="bench")
    parser.add_argument("--group", default="bench")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--messages", type=int, default=100000)
    args = parser.parse_args()
    result = RUNS[(args.client, args.mode)](args, b"x" * args.size)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
