#!/usr/bin/env python3
"""Runs one Ferry backlog pass of BUILD/bench/consume_bench, stops the bench
(SIGSTOP, its subscription still open) when the pass ends, and prints
ferryd's VmRSS every 5 s for 30 s: the memory ferryd holds once fetching
has stopped. Then lets the bench finish.

    bench/consume_idle_rss.py LABEL BUILD [-- BENCH ARGS]

BENCH ARGS default to `--skip-latency --skip-filter --messages 200000
--rounds 1`. The bench's output goes to /tmp/consume-idle-rss-LABEL.out.
Used for bench/RESULTS.md (arenapurge).
"""
import os
import re
import signal
import subprocess
import sys
import time

DEFAULT_ARGS = ["--skip-latency", "--skip-filter", "--messages", "200000", "--rounds", "1"]


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    return None


def main():
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    label, build = argv[:split]
    bench_args = argv[split + 1:] or DEFAULT_ARGS
    load = open("/proc/loadavg").read().split()[0]
    started = time.strftime("%H:%M:%S", time.gmtime())
    bench = subprocess.Popen(
        ["nice", os.path.join(build, "bench/consume_bench"), *bench_args],
        stdout=open(f"/tmp/consume-idle-rss-{label}.out", "w"), stderr=subprocess.PIPE,
        text=True)
    pid = None
    samples = []
    for line in bench.stderr:
        if m := re.search(r"ferryd \S+ \(pid (\d+)\)", line):
            pid = m.group(1)
        elif re.search(r"ferry run: \d+ messages in", line) and pid and not samples:
            os.kill(bench.pid, signal.SIGSTOP)
            for second in range(0, 35, 5):
                samples.append(f"{second}s:{rss_mib(pid)}")
                if second < 30:
                    time.sleep(5)
            os.kill(bench.pid, signal.SIGCONT)
    bench.wait()
    if not samples:
        raise SystemExit(f"{label}: no Ferry pass finished")
    print(f"{label} {started} load {load}: ferryd VmRSS MiB after the pass "
          + " ".join(samples))


if __name__ == "__main__":
    main()
