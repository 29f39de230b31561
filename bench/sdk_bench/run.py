#!/usr/bin/env python3
"""Cross-SDK benchmark: publish and consume msgs/s and CPU per message of the
Ferry SDKs (C++, Python, Go, Node, through ferryd) beside each language's
direct Kafka client (librdkafka, confluent-kafka, franz-go, kafkajs), in one
run against one local Kafka broker with one ferryd in front.

    bench/sdk_bench/run.py                       # 100 B and 1 KiB, 100k messages
    bench/sdk_bench/run.py --runs 3 --messages 200000

Hand-run, not in CI. Needs scripts/setup and scripts/build (ferryd, the ferry
CLI and build/bench/sdk_bench_cpp_client), Go, Node 18+ and npm. The first run
installs what the clients need: a virtualenv .cache/sdk-bench-venv (the Python
SDK from sdk/python and confluent-kafka from PyPI), the Go client (franz-go
from the Go module proxy, bench/sdk_bench/go/go.mod), kafkajs from npm
(bench/sdk_bench/node/package.json) and sdk/node's build (npm ci there).

Each client is its own process, run one at a time; it publishes --messages
messages of the size to a fresh 3-partition topic (acks=all, idempotence on,
1000 keys), then consumes them back from the start with a fresh group (SDKs:
auto-ack). The client measures its own window (first publish to last result,
subscribe to last message) and its own CPU in it with getrusage; ferryd's and
the broker's CPU are read from /proc/PID/stat around the client's whole
process, and "other" is the rest of the machine's busy time (/proc/stat) in
that span, in cores: anything well above 0 means the row is polluted.
"""
import argparse
import json
import os
import pathlib
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
CACHE = REPO / ".cache"
VENV = CACHE / "sdk-bench-venv"
GO_CLIENT = CACHE / "sdk-bench" / "go-client"
TICK = os.sysconf("SC_CLK_TCK")

# (name, language, through ferryd?)
CLIENTS = [
    ("cpp-sdk", "C++", True), ("librdkafka", "C++", False),
    ("python-sdk", "Python", True), ("confluent-kafka", "Python", False),
    ("go-sdk", "Go", True), ("franz-go", "Go", False),
    ("node-sdk", "Node", True), ("kafkajs", "Node", False),
]


def log(message):
    print("sdk_bench: " + message, file=sys.stderr, flush=True)


def command(name, build):
    """The client's command line, without the common flags."""
    python = str(VENV / "bin" / "python")
    cpp = str(build / "bench" / "sdk_bench_cpp_client")
    node = ["node", str(HERE / "node" / "client.js")]
    return {
        "cpp-sdk": [cpp, "--client", "ferry"],
        "librdkafka": [cpp, "--client", "librdkafka"],
        "python-sdk": [python, str(HERE / "python_client.py"), "--client", "ferry"],
        "confluent-kafka": [python, str(HERE / "python_client.py"), "--client", "confluent"],
        "go-sdk": [str(GO_CLIENT), "--client", "ferry"],
        "franz-go": [str(GO_CLIENT), "--client", "franz"],
        "node-sdk": node + ["--client", "ferry"],
        "kafkajs": node + ["--client", "kafkajs"],
    }[name]


def run(cmd, cwd=None, quiet=True):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL if quiet else None)


def prepare(build, clients):
    languages = {lang for name, lang, _ in CLIENTS if name in clients}
    for binary in (build / "src" / "server" / "ferryd", build / "src" / "cli" / "ferry"):
        if not binary.exists():
            sys.exit("sdk_bench: %s missing: run scripts/build" % binary)
    if "C++" in languages and not (build / "bench" / "sdk_bench_cpp_client").exists():
        sys.exit("sdk_bench: build/bench/sdk_bench_cpp_client missing: run scripts/build")
    if "Python" in languages:
        if not (VENV / "bin" / "python").exists():
            run([sys.executable, "-m", "venv", str(VENV)])
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q",
               "--disable-pip-version-check"]
        log("installing the Python SDK and confluent-kafka into %s" % VENV)
        run(pip + ["--force-reinstall", "--no-deps", str(REPO / "sdk" / "python")])
        run(pip + [str(REPO / "sdk" / "python"), "confluent-kafka>=2.3"])
    if "Go" in languages:
        log("building the Go client")
        GO_CLIENT.parent.mkdir(parents=True, exist_ok=True)
        run(["go", "build", "-o", str(GO_CLIENT), "."], cwd=HERE / "go")
    if "Node" in languages:
        log("building sdk/node and installing kafkajs")
        run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=REPO / "sdk" / "node")
        run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE / "node")


def free_port(consecutive=1):
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            for extra in range(1, consecutive):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + extra))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


def process_cpu(pid):
    """utime + stime of a running process, seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy():
    """Busy CPU seconds of the whole machine so far (/proc/stat)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK


class Stack:
    """A Kafka broker (scripts/kafka/kafka) and one ferryd in front of it."""

    def __init__(self, build, workdir):
        self.build = build
        self.workdir = workdir
        self.name = "sdkbench-%d" % os.getpid()
        port = free_port(2)
        self.bootstrap = "127.0.0.1:%d" % port
        self.kafka = REPO / "scripts" / "kafka" / "kafka"
        log("starting Kafka %s on %s" % (self.name, self.bootstrap))
        run([str(self.kafka), "start", self.name, str(port)])
        state = pathlib.Path(os.environ.get("FERRY_KAFKA_STATE", "/tmp/ferry-kafka"))
        self.broker_pid = int((state / self.name / "broker.pid").read_text())
        self.endpoint = "127.0.0.1:%d" % free_port()
        http = free_port()
        ferryd_log = open(workdir / "ferryd.log", "ab")
        self.ferryd = subprocess.Popen(
            [str(build / "src" / "server" / "ferryd"),
             "--set", "clusters.main.type=kafka", "--set", "clusters.main.bootstrap=" + self.bootstrap,
             "--set", "listen.grpc=" + self.endpoint, "--set", "listen.http=127.0.0.1:%d" % http,
             "--set", "node.id=sdk-bench"],
            stdout=ferryd_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        ferryd_log.close()
        deadline = time.monotonic() + 60
        while True:
            if self.ferryd.poll() is not None or time.monotonic() > deadline:
                self.close()
                sys.exit("sdk_bench: ferryd did not start; see %s" % (workdir / "ferryd.log"))
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % http, timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        log("ferryd %s on %s" % (self.ferryd.pid, self.endpoint))

    def create_topic(self, name):
        run([str(self.build / "src" / "cli" / "ferry"), "--server", self.endpoint, "topics",
             "create", name, "--partitions", "3"])

    def close(self):
        if self.ferryd.poll() is None:
            self.ferryd.terminate()
            try:
                self.ferryd.wait(20)
            except subprocess.TimeoutExpired:
                self.ferryd.kill()
        subprocess.run([str(self.kafka), "wipe", self.name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)


def measure(stack, cmd, timeout):
    """Runs one client; returns its JSON result plus ferryd/broker/other CPU."""
    before = (process_cpu(stack.ferryd.pid), process_cpu(stack.broker_pid), machine_busy(),
              time.monotonic())
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return {"error": "timed out after %ds" % timeout}
    # communicate() reaped it; its rusage is in RUSAGE_CHILDREN's growth.
    ferryd = process_cpu(stack.ferryd.pid) - before[0]
    broker = process_cpu(stack.broker_pid) - before[1]
    busy = machine_busy() - before[2]
    span = time.monotonic() - before[3]
    if proc.returncode != 0:
        return {"error": (err.decode(errors="replace").strip().splitlines() or ["exit %d" %
                                                                                proc.returncode])[-1]}
    result = json.loads(out.decode().strip().splitlines()[-1])
    result.update(ferryd=ferryd, broker=broker, busy=busy, span=span)
    return result


def run_matrix(stack, build, clients, sizes, messages, timeout):
    rows = []
    for size in sizes:
        for name, language, via_ferry in CLIENTS:
            if name not in clients:
                continue
            topic = "sb-%s-%d-%s" % (name, size, uuid.uuid4().hex[:6])
            stack.create_topic(topic)
            common = ["--target", stack.endpoint if via_ferry else stack.bootstrap,
                      "--topic", topic, "--size", str(size), "--messages", str(messages)]
            for mode in ("publish", "consume"):
                extra = ["--group", "g-" + topic] if mode == "consume" else []
                children = resource.getrusage(resource.RUSAGE_CHILDREN)
                result = measure(stack, command(name, build) + ["--mode", mode] + common + extra,
                                 timeout)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                whole = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
                row = dict(result, client=name, language=language, via_ferry=via_ferry,
                           size=size, mode=mode, process_cpu=whole)
                rows.append(row)
                log(format_row(row))
    return rows


def format_row(r):
    head = "%-6s %-7s %-16s" % (("100 B" if r["size"] == 100 else "1 KiB" if r["size"] == 1024
                                 else "%d B" % r["size"]), r["mode"], r["client"])
    if "error" in r:
        return head + " FAILED: " + r["error"]
    n = r["messages"]
    other = max(0.0, r["busy"] - r["process_cpu"] - r["ferryd"] - r["broker"]) / r["span"]
    ferryd = "%8.2f" % (r["ferryd"] / n * 1e6) if r["via_ferry"] else "%8s" % "-"
    per_core = "%9.0f" % (n / r["cpu"]) if r["cpu"] > 0 else "%9s" % "-"
    return "%s %10.0f %8.2f %s %8.2f %6.2f %s" % (head, n / r["seconds"], r["cpu"] / n * 1e6,
                                                  ferryd, r["broker"] / n * 1e6, other, per_core)


def print_table(rows, out):
    print("%-6s %-7s %-16s %10s %8s %8s %8s %6s %9s %s" % (
        "size", "phase", "client", "msgs/s", "client", "ferryd", "broker", "other", "msgs/s",
        " SDK client CPU / direct's, / C++ SDK's"), file=out)
    print("%-31s %10s %8s %8s %8s %6s %9s" % ("", "", "µs/msg", "µs/msg", "µs/msg", "cores",
                                             "/client core"), file=out)
    ok = [r for r in rows if "error" not in r]
    direct = {(r["size"], r["mode"], r["language"]): r for r in ok if not r["via_ferry"]}
    cpp_sdk = {(r["size"], r["mode"]): r for r in ok if r["client"] == "cpp-sdk"}

    def ratio(r, base):
        return "  %.2fx %s" % ((r["cpu"] / r["messages"]) / (base["cpu"] / base["messages"]),
                               base["client"])

    for r in rows:
        line = format_row(r)
        if r["via_ferry"] and "error" not in r:
            for base in (direct.get((r["size"], r["mode"], r["language"])),
                         cpp_sdk.get((r["size"], r["mode"]))):
                if base is not None and base is not r:
                    line += ratio(r, base)
        print(line, file=out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1024])
    parser.add_argument("--clients", nargs="+", default=[c[0] for c in CLIENTS],
                        choices=[c[0] for c in CLIENTS])
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole matrix")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per client run")
    parser.add_argument("--build", default=str(REPO / "build"))
    parser.add_argument("--skip-prepare", action="store_true",
                        help="do not (re)install the clients' dependencies")
    parser.add_argument("--json", help="also write every row to this file")
    parser.add_argument("--print-json", metavar="FILE",
                        help="only print the tables of rows saved with --json")
    args = parser.parse_args()
    if args.print_json:
        rows = json.loads(pathlib.Path(args.print_json).read_text())
        for number in sorted({r["run"] for r in rows}):
            print("\nRun %d" % number)
            print_table([r for r in rows if r["run"] == number], sys.stdout)
        return
    build = pathlib.Path(args.build)
    if not args.skip_prepare:
        prepare(build, args.clients)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="sdk-bench-"))
    stack = Stack(build, workdir)
    all_rows = []
    try:
        for number in range(1, args.runs + 1):
            log("run %d of %d" % (number, args.runs))
            rows = run_matrix(stack, build, args.clients, args.sizes, args.messages, args.timeout)
            for row in rows:
                row["run"] = number
            all_rows.extend(rows)
            print("\nRun %d of %d: %d messages per row, ferryd and Kafka on 127.0.0.1, %d cores" % (
                number, args.runs, args.messages, os.cpu_count()))
            print_table(rows, sys.stdout)
            sys.stdout.flush()
    finally:
        stack.close()
        if args.json:
            pathlib.Path(args.json).write_text(json.dumps(all_rows, indent=1))
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
