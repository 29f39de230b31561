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
sent back (publish results; deliveries), gRPC framing included. ferryd's CPU
is read from /proc around each client process (bench/sdk_bench/run.py), its
context switches ("cs", per 1000 messages) from its threads' /proc status.
Needs what bench/sdk_bench/run.py needs for Go and Node.
"""
import argparse
import importlib.util
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import uuid

HERE = pathlib.Path(__file__).resolve().parent


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


def switches(pid):
    """Context switches of a process's live threads so far (/proc/PID/task)."""
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, task)) as f:
                total += sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
        except OSError:
            pass  # the thread ended
    return total


def prepare(tree):
    subprocess.run(["go", "build", "-o", str(tree / ".cache" / "sdk-bench" / "go-client"), "."],
                   cwd=tree / "bench" / "sdk_bench" / "go", check=True)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                   cwd=tree / "sdk" / "node", check=True, stdout=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", required=True, metavar="LABEL=PATH")
    parser.add_argument("--build", default=str(HERE.parent / "build"))
    parser.add_argument("--messages", type=int, default=200000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", nargs="+", default=["go-sdk", "node-sdk"])
    parser.add_argument("--skip-prepare", action="store_true")
    parser.add_argument("--perf-consume", metavar="DIR",
                        help="also record ferryd (perf record -e cpu-clock -g) during each consume "
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
    workdir = pathlib.Path(subprocess.check_output(["mktemp", "-d"]).decode().strip())
    stack = first.Stack(build, workdir)
    relay = Relay(stack.endpoint)
    print("%-4s %-7s %-9s %-8s %12s %12s %10s %10s %9s  %s" % (
        "run", "tree", "client", "phase", "up B/msg", "down B/msg", "ferryd µs", "ferryd cs", "client µs",
        "load"))
    try:
        for number in range(1, args.runs + 1):
            for label, _ in trees:
                bench = benches[label]
                for client in args.clients:
                    topic = "wb-%s-%s" % (client, uuid.uuid4().hex[:8])
                    stack.create_topic(topic)
                    common = ["--target", relay.endpoint, "--topic", topic, "--size", str(args.size),
                              "--messages", str(args.messages)]
                    for mode in ("publish", "consume"):
                        extra = ["--group", "g-" + topic] if mode == "consume" else []
                        load = open("/proc/loadavg").read().split()[0]
                        perf = None
                        if args.perf_consume and mode == "consume":
                            perf = subprocess.Popen(
                                ["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-p",
                                 str(stack.ferryd.pid), "-o", os.path.join(
                                     args.perf_consume, "%d-%s-%s.data" % (number, label, client))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        before, switched = relay.counts(), switches(stack.ferryd.pid)
                        result = bench.measure(stack, bench.command(client, build) + ["--mode", mode]
                                               + common + extra, 600)
                        if perf:
                            perf.send_signal(signal.SIGINT)
                            perf.wait()
                        up, down = (a - b for a, b in zip(relay.counts(), before))
                        switched = switches(stack.ferryd.pid) - switched
                        if "error" in result:
                            print("%-4d %-7s %-9s %-8s FAILED: %s" % (number, label, client, mode,
                                                                     result["error"]), flush=True)
                            continue
                        n = result["messages"]
                        print("%-4d %-7s %-9s %-8s %12.1f %12.1f %10.2f %10.2f %9.2f  %s" % (
                            number, label, client, mode, up / n, down / n, result["ferryd"] / n * 1e6,
                            switched / n * 1000, result["cpu"] / n * 1e6, load), flush=True)
    finally:
        stack.close()


if __name__ == "__main__":
    main()
