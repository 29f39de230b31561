#!/usr/bin/env python3
"""Bytes on the wire and ferryd CPU per message of the Go and Node SDKs, two
SDK source trees against one ferryd (issue 18: compact publish results and
receipt spans). Hand-run, not CI.

    bench/sdk_wire_bytes.py --tree main=/tmp/base --tree branch=. --runs 3

Each --tree is a checkout whose sdk/go and sdk/node are measured (through its
bench/sdk_bench clients); the trees are alternated within each run. One
Kafka broker and one ferryd (--build, default this tree's build) serve all
runs. Each client publishes --messages values of --size bytes to a fresh
3-partition topic, then consumes that backlog from the start with a fresh
group, acking every message (bench/sdk_bench's clients). The clients talk to
ferryd through a byte-counting TCP relay in this process, so "up" is what
the client sent (publish requests; subscribe acks) and "down" what ferryd
sent back (publish results; deliveries), gRPC framing included. franz-go and
kafkajs (straight to Kafka) run once per run for the ratio; their bench
clients come from the first tree. ferryd's CPU is read from /proc around
each client process (bench/sdk_bench/run.py).
Needs what bench/sdk_bench/run.py needs for Go and Node.
"""
import argparse
import importlib.util
import os
import pathlib
import signal
import socket
import shutil
import subprocess
import tempfile
import threading
import uuid

HERE = pathlib.Path(__file__).resolve().parent
SDKS = ("go-sdk", "node-sdk")
DIRECT = ("franz-go", "kafkajs")  # bench/sdk_bench's direct clients of the same languages


def load_sdk_bench(tree):
    spec = importlib.util.spec_from_file_location(
        "sdk_bench_" + uuid.uuid4().hex[:6], tree / "bench" / "sdk_bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Relay:
    """Forwards 127.0.0.1:port to target, counting bytes each way."""

    def __init__(self, target):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.up = self.down = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = "127.0.0.1:%d" % self.listener.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.listener.accept()
            server = socket.create_connection(self.target)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.pump, args=(client, server, "up"), daemon=True).start()
            threading.Thread(target=self.pump, args=(server, client, "down"), daemon=True).start()

    def pump(self, source, sink, direction):
        try:
            while True:
                data = source.recv(1 << 18)
                if not data:
                    break
                sink.sendall(data)
                with self.lock:
                    setattr(self, direction, getattr(self, direction) + len(data))
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def counts(self):
        with self.lock:
            return self.up, self.down


def prepare(tree):
    subprocess.run(["go", "build", "-o", str(tree / ".cache" / "sdk-bench" / "go-client"), "."],
                   cwd=tree / "bench" / "sdk_bench" / "go", check=True)
    for project in (tree / "sdk" / "node", tree / "bench" / "sdk_bench" / "node"):  # the SDK; kafkajs
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=project, check=True, stdout=subprocess.DEVNULL)


def run_client(args, stack, relay, bench, build, number, label, client):
    """Publishes a backlog with one client, consumes it, prints a row for each."""
    topic = "wb-%s-%s" % (client, uuid.uuid4().hex[:8])
    stack.create_topic(topic)
    direct = client in DIRECT
    common = ["--target", stack.bootstrap if direct else relay.endpoint, "--topic", topic,
              "--size", str(args.size), "--messages", str(args.messages)]
    for mode in ("publish", "consume"):
        extra = ["--group", "g-" + topic] if mode == "consume" else []
        load = open("/proc/loadavg").read().split()[0]
        perf = None
        if args.perf_consume and mode == "consume" and not direct:
            perf = subprocess.Popen(
                ["perf", "record", "-q", "-e", "cpu-clock", "-F", "499", "--call-graph", "dwarf,16384",
                 "-p", str(stack.ferryd.pid),
                 "-o", os.path.join(args.perf_consume, "%d-%s-%s.data" % (number, label, client))],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = relay.counts()
        result = bench.measure(stack, bench.command(client, build) + ["--mode", mode] + common + extra, 600)
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        up, down = (a - b for a, b in zip(relay.counts(), before))
        if "error" in result:
            print("%-4d %-7s %-9s %-8s FAILED: %s" % (number, label, client, mode, result["error"]),
                  flush=True)
            continue
        n = result["messages"]
        if direct:
            print("%-4d %-7s %-9s %-8s %12s %12s %10s %9.2f  %s" % (
                number, label, client, mode, "-", "-", "-", result["cpu"] / n * 1e6, load), flush=True)
            continue
        print("%-4d %-7s %-9s %-8s %12.1f %12.1f %10.2f %9.2f  %s" % (
            number, label, client, mode, up / n, down / n, result["ferryd"] / n * 1e6,
            result["cpu"] / n * 1e6, load), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", required=True, metavar="LABEL=PATH")
    parser.add_argument("--build", default=str(HERE.parent / "build"))
    parser.add_argument("--messages", type=int, default=200000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", nargs="+", default=["go-sdk", "node-sdk"], choices=SDKS)
    parser.add_argument("--direct", nargs="*", default=list(DIRECT), choices=DIRECT,
                        help="direct Kafka clients run once per run, for the ratio (default: both)")
    parser.add_argument("--skip-prepare", action="store_true")
    parser.add_argument("--perf-consume", metavar="DIR",
                        help="also record ferryd (perf record, DWARF call graphs) during each consume "
                             "into DIR/RUN-TREE-CLIENT.data; its CPU figures then include perf's cost")
    args = parser.parse_args()
    trees = [(label, pathlib.Path(path).resolve())
             for label, path in (t.split("=", 1) for t in args.tree)]
    if not args.skip_prepare:
        for _, tree in trees:
            prepare(tree)
    benches = {label: load_sdk_bench(tree) for label, tree in trees}
    build = pathlib.Path(args.build)
    first = benches[trees[0][0]]
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="sdk-wire-bytes-"))
    stack = first.Stack(build, workdir)
    relay = Relay(stack.endpoint)
    print("%-4s %-7s %-9s %-8s %12s %12s %10s %9s  %s" % (
        "run", "tree", "client", "phase", "up B/msg", "down B/msg", "ferryd µs", "client µs", "load"))
    try:
        for number in range(1, args.runs + 1):
            for client in args.direct:  # the same in every tree: once per run
                run_client(args, stack, relay, first, build, number, "direct", client)
            for label, _ in trees:
                for client in args.clients:
                    run_client(args, stack, relay, benches[label], build, number, label, client)
    finally:
        stack.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
