#!/usr/bin/env python3
"""Runs BUILD/bench/consume_bench and counts ferryd over its first (or Nth)
Ferry backlog pass with perf stat: CPU time, page faults and context switches per
message. Needs root and perf.

    bench/consume_pass_stat.py LABEL BUILD [--out DIR] [--pass N] [--record]
        [--call-graph MODE] [-- BENCH ARGS]

BENCH ARGS default to `--skip-latency --skip-filter --messages 1000000
--rounds 1`. `perf stat -p` does not follow threads created after it
attaches, and the consumer's librdkafka threads are, so ferryd is moved into
a cgroup v2 group and counted there (`perf stat -a -G`), enabled at the
bench's "ferry run: group" line and disabled at "ferry run: N messages in".
--record also samples the pass (`perf record --call-graph dwarf,16384`, -G
after -e as perf wants it) into DIR/LABEL.data.
Prints one line: ferryd µs/msg, faults and context switches per 1000
messages, steal, and the bench's peak RSS. Used for bench/RESULTS.md.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import time

CGROUP = "/sys/fs/cgroup/unified/ferry-bench"
EVENTS = ["cpu-clock", "page-faults", "context-switches"]
DEFAULT_ARGS = ["--skip-latency", "--skip-filter", "--messages", "1000000", "--rounds", "1"]


def steal_and_total():
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return fields[7], sum(fields)


def fifo(path):
    if os.path.exists(path):
        os.unlink(path)
    os.mkfifo(path)
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("label")
    parser.add_argument("build")
    parser.add_argument("--out", default=".")
    parser.add_argument("--pass", dest="ferry_pass", type=int, default=1,
                        help="which Ferry pass to count (with --rounds N)")
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--events", default="",
                        help="more perf events to count, comma-separated (e.g. uprobes "
                        "on the allocator, `perf probe -x LIB malloc`), printed per message")
    parser.add_argument("--call-graph", default="dwarf,16384",
                        help="perf record's --call-graph (ferryd has no frame pointers)")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    a = parser.parse_args(argv[:split])
    bench_args = argv[split + 1:] or DEFAULT_ARGS
    events = EVENTS + [e for e in a.events.split(",") if e]
    out = os.path.join(a.out, a.label)
    load = open("/proc/loadavg").read().split()[0]
    started = time.strftime("%H:%M:%S", time.gmtime())
    os.makedirs(CGROUP, exist_ok=True)
    ctl, ack = fifo(out + ".ctl"), fifo(out + ".ack")

    def control(word):
        with open(ctl, "w") as c:
            c.write(word + "\n")
        with open(ack) as r:
            r.readline()

    bench = subprocess.Popen(
        ["nice", os.path.join(a.build, "bench/consume_bench"), *bench_args],
        stdout=open(out + ".out", "w"), stderr=subprocess.PIPE, text=True)
    log = open(out + ".err", "w")
    stat = record = None
    messages = steal_before = steal_after = None
    passes = 0
    for line in bench.stderr:
        log.write(line)
        if m := re.search(r"ferryd \S+ \(pid (\d+)\)", line):
            with open(os.path.join(CGROUP, "cgroup.procs"), "w") as procs:
                procs.write(m.group(1))
            stat = subprocess.Popen(
                ["perf", "stat", "-x,", "-o", out + ".perf", "-a", "-D", "-1",
                 "--control", f"fifo:{ctl},{ack}", "-e", ",".join(events),
                 "-G", ",".join([os.path.basename(CGROUP)] * len(events))])
        elif "ferry run: group" in line and stat and (passes := passes + 1) == a.ferry_pass:
            control("enable")
            steal_before = steal_and_total()
            if a.record:
                record = subprocess.Popen(
                    ["perf", "record", "-q", "-a", "-e", "cpu-clock", "-G",
                     os.path.basename(CGROUP), "-F", "499", "--call-graph", a.call_graph,
                     "-o", out + ".data"])
        elif ((m := re.search(r"ferry run: (\d+) messages in", line)) and steal_before
              and messages is None):
            control("disable")
            steal_after = steal_and_total()
            messages = int(m.group(1))
            for perf in (stat, record):
                if perf:
                    perf.send_signal(signal.SIGINT)
    bench.wait()
    for perf in (stat, record):
        if perf and perf.poll() is None:
            perf.send_signal(signal.SIGINT)
        if perf:
            perf.wait()
    os.unlink(ctl)
    os.unlink(ack)
    try:
        os.rmdir(CGROUP)
    except OSError as error:  # Still holds a ferryd that has not exited.
        print(f"{CGROUP}: {error}")
    if not messages:
        raise SystemExit(f"{a.label}: no Ferry pass finished; see {out}.err")
    counts = {}
    for row in open(out + ".perf"):
        fields = row.strip().split(",")
        if len(fields) > 3 and fields[0][:1].isdigit():
            counts[fields[2]] = float(fields[0])
    steal = 100 * (steal_after[0] - steal_before[0]) / max(1, steal_after[1] - steal_before[1])
    rss = re.search(r"ferryd memory: peak VmRSS sampled every 20 ms (\d+ MiB)",
                    open(out + ".out").read())
    print(f"{a.label} {started} load {load}: ferryd "
          f"{counts['cpu-clock'] * 1000 / messages:.3f} µs/msg, "
          f"{counts['page-faults'] * 1000 / messages:.1f} faults and "
          f"{counts['context-switches'] * 1000 / messages:.1f} context switches per 1000 msgs; "
          f"steal {steal:.1f} %; peak RSS {rss.group(1) if rss else '?'}"
          + "".join(f"; {e} {counts.get(e, 0) / messages:.2f}/msg" for e in events[3:]))


if __name__ == "__main__":
    main()
