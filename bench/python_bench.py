#!/usr/bin/env python3
"""The Python SDK beside confluent-kafka (issue 18): publish and consume msgs/s
per core of the Python process, the same work against the same broker in one
run. Hand-run, not CI.

    .cache/python-venv/bin/python bench/python_bench.py                 starts Kafka + ferryd
    .cache/python-venv/bin/python bench/python_bench.py --runs 3 --messages 100000
    ... --server 127.0.0.1:7400 --bootstrap 127.0.0.1:9092              running ones

Needs scripts/build (ferryd, the ferry CLI) and a virtualenv with
ferry-client[fallback] (confluent-kafka), e.g. scripts/test-python's.

Each client runs in a child process of its own, so its CPU time
(getrusage: user + system of all its threads, gRPC's and librdkafka's
included) is its work alone. Publish: --messages values of --size bytes, a
future per message (Ferry's publish), a callback per message (Ferry's
publish(callback=)), one future per --many messages (Ferry's publish_many)
or a delivery callback per message (confluent-kafka, acks=all, idempotence
on), then flush; each client into a topic of its own.
Consume: the first --messages of one backlog (written before the run by
publish_many), a fresh group from the earliest offset, every message's value
read and every message acked: Ferry's iterator (receive + ack), callback API
(auto-ack) and batch form (receive_batch, then batch.values or each
message's value in turn ("batch-each"), + batch.ack), and confluent-kafka's
consume(500) loop and poll() loop (auto-commit). msgs/s per core = messages /
CPU seconds of the process; ratio = Ferry's over confluent-kafka's (target
>= 1): every form over consume(500), then the per-message forms (one message
a call) over poll(), the like for like. --detail splits each process's time
into user and system and counts its minor faults and context switches, to
tell a slow run's cause (kernel work, waits, preemption) from the next one's.
--ordered: only the callback API with key ordering, natively and pure, beside
the unordered callback form and poll(), on a backlog of --keys keys.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


USAGES = []  # every reading of a worker: its first and last bound its measured loop


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    USAGES.append(usage)
    return usage.ru_utime + usage.ru_stime


def usage_detail():
    """User and system seconds, minor faults and context switches (voluntary:
    the process waited; involuntary: it was preempted) of the measured loop."""
    first, last = USAGES[0], USAGES[-1]
    return {field: getattr(last, "ru_" + field) - getattr(first, "ru_" + field)
            for field in ("utime", "stime", "minflt", "nvcsw", "nivcsw")}


# -- workers (each in its own process) ----------------------------------------

def ferry_publish(args):
    import ferry
    value = os.urandom(args.size)
    with ferry.Publisher([args.server]) as pub:
        on_path(pub)
        start, cpu = time.monotonic(), cpu_seconds()
        futures = [pub.publish(args.topic, value) for _ in range(args.messages)]
        pub.flush()
        failed = sum(1 for f in futures if f.exception() is not None)
        return time.monotonic() - start, cpu_seconds() - cpu, args.messages - failed


def ferry_publish_callback(args):
    import ferry
    value = os.urandom(args.size)
    delivered = [0]

    def on_outcome(outcome):
        if isinstance(outcome, ferry.PublishResult):
            delivered[0] += 1  # only the publisher's thread calls it

    with ferry.Publisher([args.server]) as pub:
        on_path(pub)
        start, cpu = time.monotonic(), cpu_seconds()
        for _ in range(args.messages):
            pub.publish(args.topic, value, callback=on_outcome)
        pub.flush()
        # flush() returns once every outcome is known; the last callbacks may
        # still be running on the publisher's thread.
        deadline = time.monotonic() + 10
        while delivered[0] < args.messages and time.monotonic() < deadline:
            time.sleep(0.001)
        return time.monotonic() - start, cpu_seconds() - cpu, delivered[0]


def ferry_publish_many(args):
    import ferry
    value = os.urandom(args.size)
    with ferry.Publisher([args.server]) as pub:
        on_path(pub)
        start, cpu = time.monotonic(), cpu_seconds()
        futures = []
        for first in range(0, args.messages, args.many):
            futures.append(pub.publish_many(args.topic,
                                            [value] * min(args.many, args.messages - first)))
        pub.flush()
        delivered = sum(1 for f in futures for r in f.result()
                        if isinstance(r, ferry.PublishResult))
        return time.monotonic() - start, cpu_seconds() - cpu, delivered


def ferry_publish_many_keyed(args):
    """The keyed backlog of --ordered: --keys keys in turn."""
    import ferry
    value = os.urandom(args.size)
    keys = ["key-%d" % k for k in range(args.keys)]
    with ferry.Publisher([args.server]) as pub:
        on_path(pub)
        start, cpu = time.monotonic(), cpu_seconds()
        futures = [pub.publish_many(args.topic, [
            (value, keys[i % args.keys]) for i in range(first, min(first + args.many,
                                                                    args.messages))])
            for first in range(0, args.messages, args.many)]
        delivered = sum(1 for f in futures for r in f.result()
                        if isinstance(r, ferry.PublishResult))
        return time.monotonic() - start, cpu_seconds() - cpu, delivered


def kafka_publish(args):
    from confluent_kafka import Producer
    value = os.urandom(args.size)
    producer = Producer({"bootstrap.servers": args.bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5})
    delivered = [0]

    def on_delivery(err, _msg):
        if err is None:
            delivered[0] += 1

    start, cpu = time.monotonic(), cpu_seconds()
    for _ in range(args.messages):
        while True:
            try:
                producer.produce(args.topic, value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush()
    return time.monotonic() - start, cpu_seconds() - cpu, delivered[0]


def on_path(client):
    """Says which path a Ferry client took (stderr, echoed by run_worker) and
    exits unless it is the one FERRY_NATIVE asks for, so a column cannot
    silently measure the other path. A --baseline package's form may take
    the other (main's keyed callback form is pure only): said, not fatal."""
    want = os.environ.get("FERRY_NATIVE") != "0"
    print("path: %s" % ("native" if client.native else "pure"), file=sys.stderr)
    if client.native != want and not os.environ.get("PYTHON_BENCH_BASELINE"):
        sys.exit("python_bench: %s path wanted, %s taken" % (
            "native" if want else "pure", "native" if client.native else "pure"))


def ferry_for_consume(args):
    import ferry
    if args.keep_freed_memory:
        ferry.keep_freed_memory()
    return ferry


def ferry_consume_iterator(args):
    ferry = ferry_for_consume(args)
    start, cpu = time.monotonic(), cpu_seconds()
    count = 0
    with ferry.Subscriber([args.server], "pybench-" + uuid.uuid4().hex[:8], [args.topic],
                          start="earliest") as sub:
        on_path(sub)
        while count < args.messages:
            message = sub.receive(timeout=60)
            if message is None:
                break
            message.value
            message.ack()
            count += 1
    return time.monotonic() - start, cpu_seconds() - cpu, count


def ferry_consume_callback(args, ordering="none"):
    ferry = ferry_for_consume(args)
    done = threading.Event()
    lock = threading.Lock()
    count = [0]

    def handle(message):
        message.value
        with lock:
            count[0] += 1
            if count[0] >= args.messages:
                done.set()

    start, cpu = time.monotonic(), cpu_seconds()
    sub = ferry.Subscriber([args.server], "pybench-" + uuid.uuid4().hex[:8], [args.topic],
                           start="earliest", callback=handle, ordering=ordering)
    on_path(sub)
    done.wait(120)
    sub.close()
    return time.monotonic() - start, cpu_seconds() - cpu, min(count[0], args.messages)


def ferry_consume_callback_key(args):
    """The callback API with key ordering (the keyed backlog of --ordered)."""
    return ferry_consume_callback(args, ordering="key")


def consume_batches(args, each):
    """receive_batch + batch.ack(); the values read with batch.values, or each
    message's in turn (`each`, as kafka_consume reads consume(500)'s)."""
    ferry = ferry_for_consume(args)
    start, cpu = time.monotonic(), cpu_seconds()
    count = 0
    with ferry.Subscriber([args.server], "pybench-" + uuid.uuid4().hex[:8], [args.topic],
                          start="earliest") as sub:
        on_path(sub)
        while count < args.messages:
            batch = sub.receive_batch(timeout=60, max_messages=args.messages - count)
            if batch is None:
                break
            if each:
                for message in batch:
                    message.value
            else:
                batch.values
            batch.ack()
            count += len(batch)
    return time.monotonic() - start, cpu_seconds() - cpu, count


def ferry_consume_batch(args):
    return consume_batches(args, each=False)


def ferry_consume_batch_each(args):
    return consume_batches(args, each=True)


def kafka_consumer(args):
    """A fresh group from the earliest offset, auto-commit, as every Ferry form."""
    from confluent_kafka import Consumer
    return Consumer({"bootstrap.servers": args.bootstrap,
                     "group.id": "pybench-" + uuid.uuid4().hex[:8],
                     "auto.offset.reset": "earliest", "enable.auto.commit": True})


def kafka_consume(args):
    consumer = kafka_consumer(args)
    start, cpu = time.monotonic(), cpu_seconds()
    consumer.subscribe([args.topic])
    count, idle_since = 0, time.monotonic()
    while count < args.messages and time.monotonic() - idle_since < 60:
        batch = consumer.consume(num_messages=min(500, args.messages - count), timeout=1.0)
        for message in batch:
            if message.error() is None:
                message.value()
                count += 1
        if batch:
            idle_since = time.monotonic()
    consumer.close()
    return time.monotonic() - start, cpu_seconds() - cpu, count


def kafka_poll(args):
    """confluent-kafka one message per call, as Ferry's receive(): the
    per-message forms' like for like (kafka_consume takes 500 a call)."""
    consumer = kafka_consumer(args)
    start, cpu = time.monotonic(), cpu_seconds()
    consumer.subscribe([args.topic])
    count, idle_since = 0, time.monotonic()
    while count < args.messages and time.monotonic() - idle_since < 60:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error() is None:
            message.value()
            count += 1
        idle_since = time.monotonic()
    consumer.close()
    return time.monotonic() - start, cpu_seconds() - cpu, count


WORKERS = {
    "ferry-publish": ferry_publish,
    "ferry-publish-callback": ferry_publish_callback,
    "ferry-publish-many": ferry_publish_many,
    "kafka-publish": kafka_publish,
    # The same on the pure-Python path (FERRY_NATIVE=0), beside the native one.
    "ferry-pure-publish": ferry_publish,
    "ferry-pure-publish-callback": ferry_publish_callback,
    "ferry-pure-publish-many": ferry_publish_many,
    "ferry-consume-iterator": ferry_consume_iterator,
    "ferry-consume-callback": ferry_consume_callback,
    "ferry-publish-many-keyed": ferry_publish_many_keyed,
    "ferry-consume-callback-key": ferry_consume_callback_key,
    "ferry-pure-consume-callback-key": ferry_consume_callback_key,
    "ferry-consume-batch": ferry_consume_batch,
    "ferry-consume-batch-each": ferry_consume_batch_each,
    "kafka-consume": kafka_consume,
    "kafka-poll": kafka_poll,
}


def run_worker(args, name, topic, messages):
    base = name.startswith("base-")  # the same form from --baseline's package
    name = name[len("base-"):] if base else name
    command = [sys.executable, os.path.abspath(__file__), "--worker", name,
               "--server", args.server, "--bootstrap", args.bootstrap, "--topic", topic,
               "--messages", str(messages), "--size", str(args.size), "--many", str(args.many),
               "--keys", str(args.keys)]
    if name.startswith("ferry-consume-") and args.keep_freed_memory:
        command.append("--keep-freed-memory")
    env = None
    if name.startswith("ferry-") and args.ferry_env:
        env = dict(os.environ, **dict(item.split("=", 1) for item in args.ferry_env))
    if name.startswith("ferry-pure-"):
        env = dict(env or os.environ, FERRY_NATIVE="0")
    if base:
        env = dict(env or os.environ, PYTHONPATH=args.baseline, PYTHON_BENCH_BASELINE="1")
    done_run = subprocess.run(command, capture_output=True, text=True, env=env)
    for line in done_run.stderr.splitlines():
        print("python_bench: %s%s: %s" % ("base-" if base else "", name, line), file=sys.stderr)
    done_run.check_returncode()
    wall, cpu, done, detail = json.loads(done_run.stdout.strip().splitlines()[-1])
    if done < messages:
        sys.exit("python_bench: %s did only %d of %d messages" % (name, done, messages))
    return wall, cpu, detail


# -- the broker and ferryd (unless given) -------------------------------------

def free_port_pair():
    while True:
        a, b = socket.socket(), socket.socket()
        try:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
        finally:
            a.close()
            b.close()


class Cluster:
    """One local Kafka broker with a ferryd in front, stopped on exit."""

    def __init__(self, build):
        self.name = "pybench-%d" % os.getpid()
        self.work = tempfile.mkdtemp(prefix="python_bench.")
        self.ferryd = None
        self.kafka = os.path.join(REPO, "scripts/kafka/kafka")
        port = free_port_pair()
        self.bootstrap = "127.0.0.1:%d" % port
        print("python_bench: starting Kafka %s on %s" % (self.name, self.bootstrap),
              file=sys.stderr)
        subprocess.run([self.kafka, "start", self.name, str(port)], check=True,
                       stdout=subprocess.DEVNULL)
        self.server = "127.0.0.1:%d" % free_port_pair()
        http = free_port_pair()
        log = open(os.path.join(self.work, "ferryd.log"), "w")
        self.ferryd = subprocess.Popen(
            [os.path.join(build, "src/server/ferryd"), "--set", "clusters.main.type=kafka",
             "--set", "clusters.main.bootstrap=" + self.bootstrap,
             "--set", "listen.grpc=" + self.server,
             "--set", "listen.http=127.0.0.1:%d" % http, "--set", "node.id=py-bench"],
            stdout=log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/healthz" % http, timeout=1)
                return
            except OSError:
                if self.ferryd.poll() is not None:
                    break
                time.sleep(0.2)
        self.close()
        sys.exit("python_bench: ferryd did not become healthy (log: %s)" % log.name)

    def close(self):
        if self.ferryd is not None and self.ferryd.poll() is None:
            self.ferryd.send_signal(signal.SIGTERM)
            self.ferryd.wait(30)
        subprocess.run([self.kafka, "wipe", self.name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(self.work, ignore_errors=True)


def create_topic(args, topic):
    subprocess.run([os.path.join(args.build, "src/cli/ferry"), "--server", args.server,
                    "topics", "create", topic, "--partitions", str(args.partitions)],
                   check=True, stdout=subprocess.DEVNULL)


def delete_topic(args, topic):
    """A broker kept across runs (--server) would otherwise fill the disk."""
    subprocess.run([os.path.join(args.build, "src/cli/ferry"), "--server", args.server,
                    "topics", "delete", topic], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def per_core(messages, cpu):
    return messages / cpu if cpu > 0 else float("inf")


PUBLISHERS = ["ferry-publish", "ferry-publish-callback", "ferry-publish-many",
              "ferry-pure-publish", "ferry-pure-publish-callback", "ferry-pure-publish-many",
              "kafka-publish"]
CONSUMERS = ["ferry-consume-iterator", "ferry-consume-callback", "ferry-consume-batch",
             "ferry-consume-batch-each", "kafka-consume", "kafka-poll"]
#: --ordered: on a backlog of --keys keys, the callback API with key ordering
#: (native, pure), without ordering, and confluent-kafka's poll() loop.
ORDERED = ["ferry-consume-callback-key", "ferry-pure-consume-callback-key",
           "ferry-consume-callback", "kafka-poll"]


def bench(args):
    rows = []
    publishers = [] if args.skip_publish else PUBLISHERS
    if args.baseline:  # each Ferry form beside the same form from the baseline
        publishers = [form for name in publishers for form in
                      ([name, "base-" + name] if name.startswith("ferry-") else [name])]
    if args.ordered:
        return bench_ordered(args)
    for run in range(1, args.runs + 1):
        tag = "%d-%s" % (run, uuid.uuid4().hex[:6])
        topics = {name: "pybench-%s-%s" % (name, tag) for name in publishers + ["backlog"]}
        for topic in topics.values():
            create_topic(args, topic)
        print("python_bench: run %d: backlog" % run, file=sys.stderr)
        run_worker(args, "ferry-publish-many", topics["backlog"], args.messages)
        results = {}
        # Alternate the order, so no client always meets a colder broker
        # (and each --baseline pair runs base-X before X on even runs).
        for name in publishers if run % 2 else reversed(publishers):
            print("python_bench: run %d: %s" % (run, name), file=sys.stderr)
            results[name] = run_worker(args, name, topics[name], args.messages)
        for name in [] if args.skip_consume else CONSUMERS if run % 2 else reversed(CONSUMERS):
            print("python_bench: run %d: %s" % (run, name), file=sys.stderr)
            results[name] = run_worker(args, name, topics["backlog"], args.messages)
        rows.append(results)
        for topic in topics.values():
            delete_topic(args, topic)

    n = args.messages
    print_header(args)
    if args.ferry_env:
        print("Ferry's workers ran with %s" % " ".join(args.ferry_env))
    if args.keep_freed_memory:
        print("Ferry's consumers called ferry.keep_freed_memory()")
    print("msgs/s per core of the Python process (CPU µs/msg; wall msgs/s); ratio = "
          "Ferry / confluent-kafka per core (target >= 1); publish_many: %d messages "
          "per call" % args.many)

    def table(names, reference, shown=None):
        print_table(rows, n, names, reference, shown)

    if args.baseline:
        print("base-: the same form with the ferry package of %s" % args.baseline)
    if publishers:
        table(publishers, "kafka-publish")
    if not args.skip_consume:
        table(CONSUMERS, "kafka-consume", CONSUMERS[:4])
        print()
        print("The per-message forms beside confluent-kafka's poll() (one message a call):")
        table(["ferry-consume-iterator", "ferry-consume-callback", "kafka-poll"], "kafka-poll")
    if args.detail:
        print()
        print("Where each process's time went, per message of the measured loop: user / "
              "system µs; per 1,000 messages: minor faults, voluntary (waits) and "
              "involuntary (preempted) context switches")
        names = publishers + ([] if args.skip_consume else CONSUMERS)
        print()
        print("| run | form | user µs | sys µs | faults | waits | preempted |")
        print("|---|---|--:|--:|--:|--:|--:|")
        for run, r in enumerate(rows, 1):
            for name in names:
                d = r[name][2]
                print("| %d | %s | %.2f | %.2f | %.1f | %.1f | %.1f |" % (
                    run, name, d["utime"] / n * 1e6, d["stime"] / n * 1e6,
                    d["minflt"] / n * 1e3, d["nvcsw"] / n * 1e3, d["nivcsw"] / n * 1e3))


def print_header(args):
    print()
    print("%d messages of %d B, %d partitions, one local broker, ferryd in front; load "
          "before: %s, after: %s" % (args.messages, args.size, args.partitions, args.load,
                                     "%.2f %.2f %.2f" % os.getloadavg()))


def print_table(rows, n, names, reference, shown=None):
    """One row per run: each form's msgs/s per core (CPU µs/msg; wall
    msgs/s), then each Ferry form's per-core ratio over ``reference``."""
    def cell(result):
        wall, cpu = result[:2]
        return "%.0f (%.1f; %.0f)" % (per_core(n, cpu), cpu / n * 1e6, n / wall)

    labels = [name.replace("ferry-", "Ferry ").replace("kafka-", "confluent-kafka ")
              for name in names]
    ferry_names = [name for name in names if name != reference and name in (shown or names)]
    print()
    print("| run | %s | ratio %s |" % (" | ".join(labels), " / ".join(
        name.replace("ferry-", "") for name in ferry_names)))
    print("|---|%s--:|" % ("--:|" * len(names)))
    for run, r in enumerate(rows, 1):
        base = per_core(n, r[reference][1])
        print("| %d | %s | %s |" % (run, " | ".join(cell(r[name]) for name in names),
                                    " / ".join("%.2f" % (per_core(n, r[name][1]) / base)
                                               for name in ferry_names)))


def bench_ordered(args):
    """--ordered: the ORDERED forms on one backlog of --keys keys per run,
    in alternating order."""
    forms = ORDERED + (["base-ferry-consume-callback-key", "base-ferry-pure-consume-callback-key"]
                       if args.baseline else [])
    rows = []
    for run in range(1, args.runs + 1):
        topic = "pybench-keyed-%d-%s" % (run, uuid.uuid4().hex[:6])
        create_topic(args, topic)
        print("python_bench: run %d: keyed backlog" % run, file=sys.stderr)
        run_worker(args, "ferry-publish-many-keyed", topic, args.messages)
        results = {}
        for name in forms if run % 2 else reversed(forms):
            print("python_bench: run %d: %s" % (run, name), file=sys.stderr)
            before = ferryd_cpu(args)
            results[name] = run_worker(args, name, topic, args.messages) + (
                ferryd_cpu(args) - before,)
        rows.append(results)
        delete_topic(args, topic)
    print_header(args)
    print("%d keys; msgs/s per core of the Python process (CPU µs/msg; wall msgs/s); "
          "ratio = Ferry / confluent-kafka poll() per core" % args.keys)
    if args.baseline:
        print("base-: the keyed forms with the ferry package of %s (each worker's "
              "stderr above says which path it took)" % args.baseline)
    print_table(rows, args.messages, forms, "kafka-poll")
    if args.ferryd_pid is not None:
        print("\nferryd's CPU µs per message over each form's run (/proc/PID/stat, 10 ms ticks)")
        print("\n| run | %s |\n|---|%s" % (" | ".join(forms), "--:|" * len(forms)))
        for run, r in enumerate(rows, 1):
            print("| %d | %s |" % (run, " | ".join(
                "%.2f" % (r[name][3] / args.messages * 1e6) for name in forms)))


def ferryd_cpu(args):
    """ferryd's CPU seconds so far (user + system), when the bench started it."""
    if args.ferryd_pid is None:
        return 0.0
    with open("/proc/%d/stat" % args.ferryd_pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", help="a running ferryd (host:port); needs --bootstrap")
    parser.add_argument("--bootstrap", help="the Kafka broker of --server's cluster")
    parser.add_argument("--build", default=os.path.join(REPO, "build"))
    parser.add_argument("--messages", type=int, default=100000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--many", type=int, default=1000,
                        help="messages per publish_many call (default 1000)")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="Ferry's consumers call ferry.keep_freed_memory() first")
    parser.add_argument("--skip-publish", action="store_true",
                        help="the consume forms only (the backlog is still written)")
    parser.add_argument("--skip-consume", action="store_true",
                        help="the publish forms only")
    parser.add_argument("--ordered", action="store_true",
                        help="only the callback API with key ordering (native and pure) "
                             "beside the unordered one and confluent-kafka's poll(), on a "
                             "backlog of --keys keys")
    parser.add_argument("--keys", type=int, default=1000,
                        help="keys of the --ordered backlog (default 1000)")
    parser.add_argument("--ferry-env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment of Ferry's workers only (repeatable), e.g. "
                             "GLIBC_TUNABLES=glibc.malloc.trim_threshold=16777216")
    parser.add_argument("--baseline", metavar="DIR",
                        help="a directory holding another ferry package (e.g. main's, "
                             "with its _native): each Ferry publish form runs from it too "
                             "(PYTHONPATH), right after the same form, as base-...; with "
                             "--ordered, its keyed callback forms")
    parser.add_argument("--detail", action="store_true",
                        help="also print each process's user/system time, faults and "
                             "context switches per message")
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(list(WORKERS[args.worker](args)) + [usage_detail()]))
        return
    if (args.server is None) != (args.bootstrap is None):
        parser.error("--server and --bootstrap go together")
    args.load = "%.2f %.2f %.2f" % os.getloadavg()
    cluster, args.ferryd_pid = None, None
    if args.server is None:
        cluster = Cluster(args.build)
        args.server, args.bootstrap = cluster.server, cluster.bootstrap
        args.ferryd_pid = cluster.ferryd.pid
    try:
        bench(args)
    finally:
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()
