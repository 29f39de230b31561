#!/usr/bin/env python3
"""Samples the CPU time and run-queue wait of a process tree, per thread.

    bench/run_queue_sampler.py --root PID --out FILE [--interval 0.02]

Every interval it reads /proc/TID/schedstat (time on CPU, time runnable but
waiting for a CPU, in ns) of every thread of PID and its descendants (found
again each second, so a ferryd or broker the process starts later is
included, and kept after it is re-parented), and the machine's busy CPU time and runnable-task count from
/proc/stat. One tab-separated line per thread and sample:

    mono_ns  pid  comm  tid  thread  cpu_ns  wait_ns

and per sample a line with pid 0: `mono_ns 0 machine 0 - busy_ns procs_running`.
mono_ns is CLOCK_MONOTONIC, the clock of FERRY_STAGE_TRACE's rows. Stops
when the root process is gone. bench/stage_trace_report.py reads the file.
"""

import argparse
import os
import time

TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def children_map():
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = read(f"/proc/{entry}/stat")
        if stat is None:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(root):
    kids = children_map()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(kids.get(pid, []))
    return found


def machine():
    busy_ticks, running = 0, 0
    for line in (read("/proc/stat") or "").splitlines():
        if line.startswith("cpu "):
            f = [int(x) for x in line.split()[1:]]
            busy_ticks = sum(f) - f[3] - f[4]  # all but idle and iowait
        elif line.startswith("procs_running"):
            running = int(line.split()[1])
    return busy_ticks * TICK_NS, running


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--interval", type=float, default=0.02)
    a = ap.parse_args()
    pids, refreshed, names = [], 0.0, {}
    with open(a.out, "w") as out:
        while os.path.exists(f"/proc/{a.root}"):
            now = time.monotonic()
            if now - refreshed > 1.0:
                # Kept once seen: a broker started through a script that
                # exits is re-parented and would drop out of the tree.
                alive = [p for p in pids if os.path.exists(f"/proc/{p}")]
                pids = sorted(set(alive) | set(tree(a.root)))
                refreshed = now
            lines = []
            stamp = time.monotonic_ns()
            busy, running = machine()
            lines.append(f"{stamp}\t0\tmachine\t0\t-\t{busy:.0f}\t{running}\n")
            for pid in pids:
                if pid not in names:
                    names[pid] = (read(f"/proc/{pid}/comm") or "?").strip()
                comm = names[pid]
                try:
                    tids = os.listdir(f"/proc/{pid}/task")
                except OSError:
                    continue
                for tid in tids:
                    s = read(f"/proc/{pid}/task/{tid}/schedstat")
                    if s is None:
                        continue
                    key = (pid, tid)
                    if key not in names:
                        names[key] = (read(f"/proc/{pid}/task/{tid}/comm") or "?").strip()
                    name = names[key]
                    cpu, wait = s.split()[:2]
                    lines.append(f"{stamp}\t{pid}\t{comm}\t{tid}\t{name}\t{cpu}\t{wait}\n")
            out.writelines(lines)
            time.sleep(max(0.0, a.interval - (time.monotonic() - now)))


if __name__ == "__main__":
    main()
