#!/usr/bin/env python3
"""Instructions per message of each thread of a profile driver (publish_profile,
direct_profile), from two whole runs under callgrind that differ only in the
number of messages: (long - short) / (difference in messages), so start-up,
warm-up and shutdown cancel. callgrind's client requests zero and dump only the
calling thread when threads are separated (--separate-threads=yes), and a
combined dump charges the warm-up to calls still active at the zeroing (a
thread's main loop), so per-thread figures are taken this way instead
(bench/RESULTS.md, branch pubfloor).

  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=short.%p \\
      build/bench/direct_profile --bootstrap HOST:PORT --messages 20000
  (the same with --messages 40000 and --callgrind-out-file=long.%p)
  bench/profile_threads.py 20000 'short.PID-*' 'long.PID-*'

A thread is named by the function its start routine spends most in (merged
across threads of the same name, e.g. librdkafka's broker threads).
"""
import collections
import glob
import re
import sys


def thread_costs(pattern):
    """Total Ir per thread name over the per-thread dumps matching `pattern`."""
    out = collections.Counter()
    for path in sorted(glob.glob(pattern)):
        total, entry, best = 0, None, -1
        fn = cfn = None
        pending = False
        names = {}

        def name(tok):
            m = re.match(r'\((\d+)\)(?: (.*))?', tok)
            if not m: return tok
            if m.group(2) is not None: names[m.group(1)] = m.group(2)
            return names.get(m.group(1), tok)
        for line in open(path, errors='replace'):
            if line.startswith('totals:'):
                total = int(line.split()[1])
            elif line.startswith('fn='):
                fn = name(line[3:].strip())
            elif line.startswith('cfn='):
                cfn = name(line[4:].strip())
            elif line.startswith('calls='):
                pending = True
            elif pending and line[:1].isdigit() or (pending and line[:1] in '+-*'):
                pending = False
                cost = int(line.split()[1])
                # The entry point: what the thread start routine (or main's
                # caller) spends the most in.
                if fn in ('start_thread', '(below main)') and cost > best:
                    best, entry = cost, cfn
        if fn is None: continue
        out[re.sub(r'\(.*', '', entry or '?')[:70]] += total
    return out


def main():
    n = float(sys.argv[1])
    short, long_ = thread_costs(sys.argv[2]), thread_costs(sys.argv[3])
    rows = sorted(set(short) | set(long_), key=lambda k: -(long_[k] - short[k]))
    print("| thread (entry function) | Ir per message |")
    print("|---|--:|")
    for k in rows:
        print(f"| {k} | {(long_[k] - short[k]) / n:,.0f} |")
    print(f"| **total** | **{(sum(long_.values()) - sum(short.values())) / n:,.0f}** |")


if __name__ == '__main__':
    main()
