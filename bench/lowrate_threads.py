#!/usr/bin/env python3
"""CPU and wake-ups per request of each thread of the SDK process and ferryd
(and the broker) over the measured window of a paced publish_profile run.

    bench/lowrate_threads.py --ferryd-pid PID [--broker-pid PID] -- \\
        build/bench/publish_profile --ferryd HOST:PORT --rate 2000 \\
        --warmup 4000 --messages 20000 --keys 0

It starts the driver, reads /proc/TID/schedstat (time on CPU, time runnable
but waiting, number of runs on a CPU) and /proc/TID/status (voluntary and
involuntary context switches) of every thread of the driver, ferryd and the
broker when the driver prints "window start" and again at "window end", and
divides the differences by the requests the driver reports ("..., N batches
(...)"). Threads of the same name (gRPC's callback threads, librdkafka's
broker threads) are summed; "n" says how many there were. A voluntary switch
is a thread going to sleep, so it counts the wake-ups that thread needed.
"""
import argparse
import collections
import os
import re
import subprocess
import sys

from run_queue_sampler import read  # a /proc file, or None once gone


def snapshot(pid):
    """{tid: (name, cpu_ns, wait_ns, runs, voluntary, involuntary)}."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        sched = read(f"/proc/{pid}/task/{tid}/schedstat")
        status = read(f"/proc/{pid}/task/{tid}/status")
        comm = read(f"/proc/{pid}/task/{tid}/comm")
        if sched is None or status is None or comm is None:
            continue
        cpu, wait, runs = (int(x) for x in sched.split()[:3])
        vol = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
        invol = int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
        out[tid] = (comm.strip(), cpu, wait, runs, vol, invol)
    return out


def difference(before, after, process_name):
    """Per thread name: [threads, cpu_ns, wait_ns, runs, voluntary, involuntary].
    Threads that kept the process's name (std::threads nobody named) are
    listed one by one when they ran in the window."""
    rows = collections.defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for tid, now in after.items():
        then = before.get(tid, (now[0], 0, 0, 0, 0, 0))
        name = re.sub(r"\d+$", "", now[0]) or now[0]
        if now[0] == process_name:
            name = f"{now[0]}/{tid}"
        row = rows[name]
        row[0] += 1
        for k in range(1, 6):
            row[k] += now[k] - then[k]
    return rows


def report(label, rows, requests, messages):
    total = [0] * 6
    print(f"\n{label}: per request ({requests} requests, {messages / requests:.2f} "
          f"messages each)")
    print(f"{'thread':<18} {'n':>3} {'CPU µs':>8} {'wait µs':>8} {'runs':>6} "
          f"{'vol cs':>7} {'invol cs':>8}")
    for name, row in sorted(rows.items(), key=lambda kv: -kv[1][1]):
        if row[1] == 0 and row[4] == 0:
            continue
        for k in range(6):
            total[k] += row[k]
        print(f"{name:<18} {row[0]:>3} {row[1] / 1e3 / requests:>8.1f} "
              f"{row[2] / 1e3 / requests:>8.1f} {row[3] / requests:>6.2f} "
              f"{row[4] / requests:>7.2f} {row[5] / requests:>8.2f}")
    print(f"{'all':<18} {total[0]:>3} {total[1] / 1e3 / requests:>8.1f} "
          f"{total[2] / 1e3 / requests:>8.1f} {total[3] / requests:>6.2f} "
          f"{total[4] / requests:>7.2f} {total[5] / requests:>8.2f}"
          f"   = {total[1] / 1e3 / messages:.1f} µs CPU per message")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ferryd-pid", type=int, required=True)
    parser.add_argument("--broker-pid", type=int)
    parser.add_argument("driver", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.driver[1:] if args.driver[:1] == ["--"] else args.driver
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    pids = {"SDK process": driver.pid, "ferryd": args.ferryd_pid}
    if args.broker_pid:
        pids["broker"] = args.broker_pid
    before = after = None
    summary = None
    for line in driver.stdout:
        sys.stdout.write(line)
        if line.startswith("window start"):
            before = {k: snapshot(p) for k, p in pids.items()}
            names = {k: (read(f"/proc/{p}/comm") or "").strip() for k, p in pids.items()}
        elif line.startswith("window end"):
            after = {k: snapshot(p) for k, p in pids.items()}
        elif "batches" in line:
            summary = line
    if driver.wait() != 0 or before is None or after is None or summary is None:
        sys.exit(f"driver failed (exit {driver.returncode})")
    m = re.match(r"(\d+) messages .*?, (\d+) batches", summary)
    messages, requests = int(m.group(1)), int(m.group(2))
    for label in pids:
        report(label, difference(before[label], after[label], names[label]), requests,
               messages)


if __name__ == "__main__":
    main()
