#!/usr/bin/env python3
"""Where the publish tail goes: joins FERRY_STAGE_TRACE rows and run-queue samples.

    FERRY_STAGE_TRACE=DIR publish_bench ... &
    bench/run_queue_sampler.py --root $! --out DIR/sched.tsv
    bench/stage_trace_report.py DIR [FREE_CORE_BUSY]

For each paced pass of the bench (its `bench-*.tsv` rows) it prints, for the
Ferry `Publish` path, each message's time split into stages (SDK rows joined
to ferryd's by the id of the batch's first message):

  sdk wait      published -> request handed to gRPC (linger, key behind an
                in-flight batch, sender thread's turn)
  request leg   handed to gRPC -> ferryd's Dispatch
  broker        Dispatch -> last delivery report (librdkafka, the broker,
                ferryd's poll thread)
  ferryd answer last report -> answer handed to gRPC
  answer leg    -> the SDK's gRPC callback
  pickup        callback -> the SDK's sender thread
  resolve       sender thread -> futures completed

for the median messages (p45-p55) and the slowest 1 % (>= p99), and with
DIR/sched.tsv the CPU cores and run-queue wait (threads waiting for a CPU,
on average) of each process over the pass and over the slow messages'
lifetimes. PublishMany parts have no ferryd join: their SDK stages only.

With DIR/sched.tsv and the bench's direct-publish rows, it ends with each
path's latencies (publish -> acknowledged, per paced pass and size) over
all messages and over only those whose lifetime fell in moments with a core
free (the box's cores busy over the sampler's intervals that the lifetime
touches, at most FREE_CORE_BUSY, default 1.0 of 2): the hop with and without a wait for a CPU,
both paths judged by the same clock and the same box.
"""

import bisect
import glob
import os
import re
import sys
from collections import defaultdict


def rows(pattern):
    out = []
    for path in sorted(glob.glob(pattern)):
        with open(path) as f:
            width = len(next(f, "").split("\t"))
            # A line cut short (a process killed mid-write) is left out.
            out.extend(fields for fields in (line.rstrip("\n").split("\t") for line in f)
                       if len(fields) == width)
    return out


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(p * len(sorted_values) + 0.5) - 1))
    return sorted_values[i]


class Series:
    """Cumulative counters per key, sampled over time; rates over intervals."""

    def __init__(self):
        self.t = defaultdict(list)
        self.v = defaultdict(list)

    def add(self, key, t, v):
        self.t[key].append(t)
        self.v[key].append(v)

    def at(self, key, t):
        ts, vs = self.t[key], self.v[key]
        if not ts:
            return 0.0
        i = bisect.bisect_left(ts, t)
        if i <= 0:
            return vs[0]
        if i >= len(ts):
            return vs[-1]
        f = (t - ts[i - 1]) / max(1, ts[i] - ts[i - 1])
        return vs[i - 1] + f * (vs[i] - vs[i - 1])

    def rate(self, key, a, b):
        return (self.at(key, b) - self.at(key, a)) / max(1, b - a)


def load_sched(path):
    """Per process (comm) cumulative cpu and wait ns, summed over threads; the
    machine's busy ns and runnable count; per thread totals."""
    cpu, wait, machine = Series(), Series(), Series()
    running = []  # (t, procs_running)
    threads = defaultdict(dict)  # t -> {(comm, tid, name): (cpu, wait)}
    with open(path) as f:
        for line in f:
            t, pid, comm, tid, name, a, b = line.rstrip("\n").split("\t")
            t = int(t)
            if pid == "0":
                machine.add("busy", t, float(a))
                running.append((t, int(b)))
            else:
                threads[t][(comm, tid, name)] = (int(a), int(b))
    last = {}
    per_comm_cpu, per_comm_wait = defaultdict(float), defaultdict(float)
    for t in sorted(threads):
        sample = threads[t]
        for key, (c, w) in sample.items():
            pc, pw = last.get(key, (c, w))
            per_comm_cpu[key[0]] += c - pc
            per_comm_wait[key[0]] += w - pw
            last[key] = (c, w)
        for comm in per_comm_cpu:
            cpu.add(comm, t, per_comm_cpu[comm])
            wait.add(comm, t, per_comm_wait[comm])
    return cpu, wait, machine, running, threads


def thread_waits(threads, a, b):
    """Per (comm, thread name without digits): cpu and wait ns in [a, b]."""
    times = sorted(threads)
    lo = bisect.bisect_left(times, a)
    hi = bisect.bisect_right(times, b) - 1
    if lo >= hi:
        return {}
    first, last = threads[times[lo]], threads[times[hi]]
    out = defaultdict(lambda: [0, 0])
    for key, (c, w) in last.items():
        c0, w0 = first.get(key, (c, w))
        name = "".join(ch for ch in key[2] if not ch.isdigit()) or "?"
        out[(key[0], name)][0] += c - c0
        out[(key[0], name)][1] += w - w0
    return out


LINGER_NS = 5e6  # The SDK's default linger, which publish_bench keeps.
STAGES = ["sdk wait", "request leg", "broker", "ferryd answer", "answer leg", "pickup",
          "resolve"]


def stages(s, f):
    published, sent, answered, picked, resolved = s
    if f is None:
        return [sent - published, None, None, None, None, answered and picked - answered,
                resolved - picked]
    dispatched, reported, f_answered = f
    return [sent - published, dispatched - sent, reported - dispatched,
            f_answered - reported, answered - f_answered, picked - answered,
            resolved - picked]


def attempt(candidates, s):
    """ferryd's row of the attempt the SDK's row describes: dispatched
    between the request's send and its answer, else the nearest."""
    if not candidates:
        return None
    sent, answered = s[1], s[2]
    inside = [f for f in candidates if sent <= f[0] <= answered]
    return (inside or sorted(candidates, key=lambda f: abs(f[0] - sent)))[0]


def describe(label, group):
    cols = []
    for k in range(len(STAGES)):
        vals = [g[1][k] for g in group if g[1][k] is not None]
        cols.append(f"{sum(vals) / len(vals) / 1e6:.2f}" if vals else "-")
    total = sum(g[0] for g in group) / len(group) / 1e6
    print(f"| {label} | {len(group)} | {total:.2f} | " + " | ".join(cols) + " |")


def passes_from_log(path):
    """The passes of a bench whose stderr lines were prefixed with
    CLOCK_MONOTONIC ns (a bench without FERRY_STAGE_TRACE, e.g. main's): a
    run starts at its "  PATH run:" line and ends at the next line."""
    out, size, paced, current = [], "0", "0", None
    with open(path) as f:
        for line in f:
            stamp, _, text = line.rstrip("\n").partition(" ")
            if current is not None:
                out.append(current + [stamp])
                current = None
            m = re.match(r"\[bench\] size (\d+): (max|paced) pass", text)
            if m:
                size, paced = m.group(1), "1" if m.group(2) == "paced" else "0"
            m = re.match(r"\[bench\]   (.+) run: \d+ messages", text)
            if m:
                current = [m.group(1), size, paced, stamp]
    return out


def print_sched(sched, path, size, start, end, mid, slow):
    """CPU and run-queue wait per process over the pass, and over the
    lifetimes (published -> future set) of the median and slowest messages."""
    cpu, wait, machine, running, threads = sched
    comms = [c for c in sorted(cpu.t) if cpu.rate(c, start, end) > 0.005]

    def mean_rate(series, key, spans):
        if not spans:
            return float("nan")
        spans = spans[:: max(1, len(spans) // 2000)]
        return sum(series.rate(key, a, b) for a, b in spans) / len(spans)

    run = [r for t, r in running if start <= t <= end]
    print(f"\n{path}, {size} B, pass of {(end - start) / 1e9:.1f} s: "
          f"{machine.rate('busy', start, end):.2f} cores busy; runnable tasks mean "
          f"{sum(run) / max(1, len(run)):.1f}, > 2 in "
          f"{sum(1 for r in run if r > 2) * 100 / max(1, len(run)):.0f} % of {len(run)} "
          f"samples; slow messages' lifetimes: {mean_rate(machine, 'busy', slow):.2f} "
          f"cores busy.\n")
    print("| process | cores, pass | run-queue wait, pass | cores, p45-p55 "
          "lifetimes | wait, p45-p55 | cores, >= p99 lifetimes | wait, >= p99 |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for comm in comms:
        print(f"| {comm} | {cpu.rate(comm, start, end):.2f} | "
              f"{wait.rate(comm, start, end):.2f} | {mean_rate(cpu, comm, mid):.2f} | "
              f"{mean_rate(wait, comm, mid):.2f} | {mean_rate(cpu, comm, slow):.2f} | "
              f"{mean_rate(wait, comm, slow):.2f} |")
    top = sorted(thread_waits(threads, start, end).items(), key=lambda kv: -kv[1][1])
    secs = (end - start) / 1e9
    print("\nThreads that waited most (ms of run-queue wait per s of pass; "
          "CPU ms per s): " + "; ".join(
              f"{c}/{name} {w / 1e6 / secs:.0f} ({cp / 1e6 / secs:.0f})"
              for (c, name), (cp, w) in top[:8]))


FREE_CORE_BUSY = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0  # Cores busy, of 2.


def busy_over(machine, a, b):
    """The box's cores busy over the sampler intervals that [a, b] touches
    (a message lives a few ms, an interval is 20 ms)."""
    ts = machine.t["busy"]
    lo = max(0, bisect.bisect_right(ts, a) - 1)
    hi = min(len(ts) - 1, bisect.bisect_left(ts, b))
    if hi <= lo:
        return float("nan")
    return (machine.v["busy"][hi] - machine.v["busy"][lo]) / (ts[hi] - ts[lo])


def print_free_core(sched, passes, lifetimes):
    """Per paced pass: p50 / p99 / max over all messages and over those that
    lived while a core was free. `lifetimes`: path -> sorted (published, done)."""
    machine = sched[2]
    print(f"\n## Latency with a core free (lifetime's box <= {FREE_CORE_BUSY:.1f} cores "
          f"busy), per paced pass\n")
    print("| path | size | pass | messages (PublishMany: parts) | p50 / p99 / max ms, all | share with a core "
          "free | p50 / p99 / max ms, core free |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    seen = defaultdict(int)
    pooled = defaultdict(lambda: ([], []))  # (path, size) -> (all, core free)
    for path, size, paced, start, end in passes:
        if paced != "1" or path not in lifetimes:
            continue
        start, end = int(start), int(end)
        seen[(path, size)] += 1
        items = lifetimes[path]
        lo = bisect.bisect_left(items, (start, 0))
        hi = bisect.bisect_right(items, (end, 0))
        spans = items[lo:hi]
        if not spans:
            continue
        every = sorted(b - a for a, b in spans)
        free = sorted(b - a for a, b in spans if busy_over(machine, a, b) <= FREE_CORE_BUSY)
        pooled[(path, size)][0].extend(every)
        pooled[(path, size)][1].extend(free)
        print(f"| {path} | {size} | {seen[(path, size)]} | {len(every)} | {spread(every)} | "
              f"{len(free) * 100 / len(every):.0f} % | {spread(free)} |")
    print("\nThe passes of each path pooled, and p99 added by the hop (Ferry's "
          "p99 - direct's of the same size):\n")
    print("| path | size | messages, all; core free | p50 / p99 / max ms, all | p99 added, "
          "all | p50 / p99 / max ms, core free | p99 added, core free |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for (path, size), (every, free) in sorted(pooled.items(), key=lambda kv: (
            int(kv[0][1]), kv[0][0] != "direct", kv[0][0])):
        every.sort()
        free.sort()
        direct = pooled.get(("direct", size))

        def added(mine, theirs):
            if path == "direct" or not mine or not theirs:
                return "-"
            return f"{(pct(mine, 0.99) - pct(sorted(theirs), 0.99)) / 1e6:+.2f} ms"
        print(f"| {path} | {size} | {len(every)}; {len(free)} | {spread(every)} | "
              f"{added(every, direct[0] if direct else [])} | {spread(free)} | "
              f"{added(free, direct[1] if direct else [])} |")


def spread(v):
    """p50 / p99 / max in ms of sorted ns values."""
    if not v:
        return "-"
    return f"{pct(v, 0.5) / 1e6:.2f} / {pct(v, 0.99) / 1e6:.2f} / {v[-1] / 1e6:.2f}"


def main():
    d = sys.argv[1]
    passes = rows(os.path.join(d, "bench-*.tsv"))
    if not passes and os.path.exists(os.path.join(d, "bench.err.ts")):
        passes = passes_from_log(os.path.join(d, "bench.err.ts"))
    sdk = rows(os.path.join(d, "sdk-publish-*.tsv"))
    # A resent batch shows up once per attempt under the same first id.
    ferryd = defaultdict(list)
    for r in rows(os.path.join(d, "ferryd-publish-*.tsv")):
        ferryd[r[0]].append(tuple(int(x) for x in r[2:5]))
    sched_path = os.path.join(d, "sched.tsv")
    sched = load_sched(sched_path) if os.path.exists(sched_path) else None
    msgs = []  # (published, batch, is_part, stamps)
    for r in sdk:
        stamps = tuple(int(x) for x in r[2:7])
        behind = len(r) > 8 and r[8] == "1"
        msgs.append((stamps[0], r[0], r[0] == "part", stamps, behind))
    msgs.sort()
    starts = [m[0] for m in msgs]
    lifetimes = {
        "direct": sorted((int(r[1]), int(r[2]))
                         for r in rows(os.path.join(d, "direct-publish-*.tsv"))),
        "ferry": [(m[3][0], m[3][4]) for m in msgs if not m[2]],
        "ferry PublishMany": [(m[3][0], m[3][4]) for m in msgs if m[2]],
    }
    for path, size, paced, start, end in passes:
        start, end = int(start), int(end)
        if path == "direct":
            if sched is not None and paced == "1":
                print_sched(sched, path, size, start, end, [], [])
            continue
        lo, hi = bisect.bisect_left(starts, start), bisect.bisect_right(starts, end)
        chosen = [m for m in msgs[lo:hi] if m[2] == (path != "ferry")]
        if not chosen:
            if sched is not None and paced == "1":
                print_sched(sched, path, size, start, end, [], [])
            continue
        items = []
        for published, batch, is_part, s, behind in chosen:
            f = None if is_part else attempt(ferryd.get(batch), s)
            items.append((s[4] - s[0], stages(s, f), behind))
        items.sort(key=lambda x: x[0])
        totals = [x[0] for x in items]
        n = len(items)
        p99 = pct(totals, 0.99)
        print(f"\n## {path}, {size} B, {'paced' if paced == '1' else 'max'}: "
              f"{n} {'parts' if path != 'ferry' else 'messages'}, "
              f"{(end - start) / 1e9:.1f} s; published -> future set p50 "
              f"{pct(totals, 0.5) / 1e6:.2f} ms, p99 {p99 / 1e6:.2f} ms, "
              f"max {totals[-1] / 1e6:.2f} ms; joined to ferryd: "
              f"{sum(1 for x in items if x[1][1] is not None)}\n")
        print("| messages | n | total ms | " + " | ".join(STAGES) + " |")
        print("|---|--:|--:|" + "--:|" * len(STAGES))
        describe("p45-p55", items[int(n * 0.45):max(int(n * 0.55), int(n * 0.45) + 1)])
        describe(">= p99", [x for x in items if x[0] >= p99])
        behind = [x for x in items if x[2]]
        if behind:
            describe("behind its key", behind)
            describe("not behind its key", [x for x in items if not x[2]])
        if path == "ferry":
            # Past the linger: behind its key (in an in-flight batch) or
            # behind the sender thread.
            slow = [x for x in items if x[0] >= p99]
            late = LINGER_NS + 1e6
            print(f"\nWaited in the SDK longer than linger + 1 ms: "
                  f"{sum(1 for x in items if x[1][0] > late) * 100 / n:.1f} % of all "
                  f"messages, {sum(1 for x in slow if x[1][0] > late) * 100 / len(slow):.0f} "
                  f"% of the slowest 1 %. Queued behind an earlier message of their "
                  f"key: {len(behind) * 100 / n:.1f} % of all, "
                  f"{sum(1 for x in slow if x[2]) * 100 / len(slow):.0f} % of the slowest "
                  f"1 %.")
        if sched is not None:
            slow = [(m[3][0], m[3][4]) for m in chosen if m[3][4] - m[3][0] >= p99]
            mid = [(m[3][0], m[3][4]) for m in chosen
                   if pct(totals, 0.45) <= m[3][4] - m[3][0] <= pct(totals, 0.55)]
            print_sched(sched, path, size, start, end, mid, slow)
    if sched is not None and lifetimes["direct"]:
        print_free_core(sched, passes, lifetimes)

if __name__ == "__main__":
    main()
