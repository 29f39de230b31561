#!/usr/bin/env python3
"""Who wakes whom in one process, per unit of work (e.g. per response), from
`perf script` of scheduler and syscall tracepoints. Hand-run, not CI.

    perf record -e sched:sched_switch,sched:sched_waking,raw_syscalls:sys_enter \\
        -D -1 --control fifo:CTL,ACK -o w.data -- python bench/python_consume_window.py ...
    perf script -i w.data -F comm,pid,tid,cpu,time,event,trace > w.txt
    bench/perf_wakeups.py w.txt UNITS PID

(python_consume_window.py drives the fifos: PERF_CTL=CTL PERF_ACK=ACK.)
Prints, per thread of PID (name/tid, the main thread as name/main): syscalls,
futex calls, and times switched out, split into blocked (prev_state S, D:
the thread waited, a wake-up follows; the count the code decides) and
preempted (prev_state R: the scheduler gave the CPU to another runnable
task; grows with the machine's load). Then every waker → wakee pair of at
least 0.02 per unit, each divided by UNITS. sched_waking fires in the
waker's context, so the line's thread is the waker; wake-ups of PID's
threads by other processes do not show, and a timer expiry is charged to
whichever thread the interrupt found running. (sched_wakeup, which older
traces recorded, may fire on the wakee's CPU instead: it is read too, but
its waker is only the thread that was running there.)
"""
import collections
import re
import sys

LINE = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+\[\d+\]\s+[\d.]+:\s+(\S+):\s*(.*)$")
FUTEX = 202  # x86-64


def main():
    path, units, pid = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    syscalls, futex = collections.Counter(), collections.Counter()
    blocked, preempted = collections.Counter(), collections.Counter()
    wakes = collections.Counter()

    def name(comm, tid):
        return "%s/%s" % (comm, "main" if tid == pid else tid)

    with open(path, errors="replace") as lines:
        for line in lines:
            match = LINE.match(line)
            if not match or match.group(2) != pid:
                continue
            comm, _, tid, event, rest = match.groups()
            thread = name(comm, tid)
            if event == "raw_syscalls:sys_enter":
                syscalls[thread] += 1
                futex[thread] += rest.startswith("NR %d " % FUTEX)
            elif event == "sched:sched_switch":
                state = re.search(r"prev_state=(\S+)", rest)
                if state and state.group(1).startswith("R"):
                    preempted[thread] += 1
                else:
                    blocked[thread] += 1
            elif event in ("sched:sched_waking", "sched:sched_wakeup"):
                wakee = re.search(r"comm=(.+?) pid=(\d+)", rest)
                if wakee:
                    wakes[(thread, name(wakee.group(1), wakee.group(2)))] += 1
    print("| thread | syscalls | futex | switched out: blocked | preempted |")
    print("|---|--:|--:|--:|--:|")
    for thread in sorted(set(syscalls) | set(blocked) | set(preempted)):
        print("| %s | %.2f | %.2f | %.2f | %.2f |" % (
            thread, syscalls[thread] / units, futex[thread] / units,
            blocked[thread] / units, preempted[thread] / units))
    print("| **all** | %.2f | %.2f | %.2f | %.2f |" % (
        sum(syscalls.values()) / units, sum(futex.values()) / units,
        sum(blocked.values()) / units, sum(preempted.values()) / units))
    print()
    print("| waker → wakee | per unit |")
    print("|---|--:|")
    for (waker, wakee), count in wakes.most_common():
        if count / units >= 0.02:
            print("| %s → %s | %.2f |" % (waker, wakee, count / units))


if __name__ == "__main__":
    main()
