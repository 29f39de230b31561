#!/usr/bin/env python3
"""Splits a callgrind dump of bench/publish_profile into the C++ SDK's components,
as instructions (Ir) per message: bench/RESULTS.md, branch sdkpub.

  valgrind --tool=callgrind --callgrind-out-file=cg.%p build/bench/publish_profile \
      --ferryd HOST:PORT --messages 20000 [--callbacks] [--size 1024]
  bench/publish_profile_split.py 20000 cg.PID.1 [more dumps...]

With --event D1mr+D1mw (a dump of --cache-sim=yes), the same split counts
those events (here: first-level data cache misses) instead of instructions.

A part is the inclusive cost of the function that owns the work (inlined code
counts with the function it was inlined into; names are merged across files).
"""
import collections
import re
import sys

# The events counted, summed: `--event` on the command line.
EVENTS = ['Ir']


def parse(path):
    """Self cost and call costs per function name, of EVENTS."""
    names = {}
    columns = [0]
    self_cost = collections.Counter()
    calls = collections.defaultdict(collections.Counter)
    fn = cfn = pending_call = None

    def name(tok):
        m = re.match(r'\((\d+)\)(?: (.*))?', tok)
        if m:
            if m.group(2) is not None: names[m.group(1)] = m.group(2)
            return names[m.group(1)]
        return tok
    for line in open(path, errors='replace'):
        line = line.rstrip('\n')
        if line.startswith('events:'):
            recorded = line.split()[1:]
            columns = [recorded.index(e) for e in EVENTS]
        elif line.startswith('fn='):
            fn = name(line[3:])
        elif line.startswith('cfn='):
            cfn = name(line[4:])
        elif line.startswith('calls='):
            pending_call = cfn  # the next cost line is the call's inclusive cost
        elif line and (line[0].isdigit() or line[0] in '+-*'):
            parts = line.split()
            cost = sum(int(parts[1 + c]) for c in columns if 1 + c < len(parts))
            if pending_call is not None:
                if pending_call != fn: calls[fn][pending_call] += cost
                pending_call = None
            else:
                self_cost[fn] += cost
    return self_cost, calls


def table(path, n):
    self_cost, calls = parse(path)
    incl = collections.Counter()
    for f in set(self_cost) | set(calls):
        incl[f] = self_cost[f] + sum(calls[f].values())

    def I(pattern):  # inclusive cost of the costliest function matching
        r = re.compile(pattern)
        hits = [v for f, v in incl.items() if r.search(f)]
        return max(hits) if hits else 0

    def call(frm, to):  # cost of the calls from functions `frm` to `to`
        rf, rt, s = re.compile(frm), re.compile(to), 0
        for f in calls:
            if rf.search(f):
                s += sum(v for c, v in calls[f].items() if rt.search(c))
        return s
    total = sum(self_cost.values())
    app = I(r'^\(anonymous namespace\)::Publish(Futures|Callbacks)\(')
    pub = I(r'^ferry::client::Publisher::Publish\(std')
    completion_new = I(r'BasicCompletion<ferry::client::PublishResult>::With(Future|Callback)')
    ids = call(r'^ferry::client::Publisher::Impl::Publish\(std', r'IdGenerator::Next|NewId|WriteNewId')
    admit = I(r'Impl::Admit<ferry::client::internal::Pending>')
    sender = I(r'^ferry::client::Publisher::Impl::Run\(\)$')
    add = call(r'Impl::Run\(\)', r'Batcher::Add\(')
    nextb = call(r'Impl::Run\(\)', r'Batcher::NextBatch')
    start = call(r'Impl::Run\(\)', r'Impl::Start\(')
    finish = call(r'Impl::Run\(\)', r'Impl::Finish\(')
    complete_keys = call(r'Impl::Finish\(', r'Batcher::Complete\(')
    resolve = call(r'Impl::Run\(\)', r'Impl::Resolve')
    cb = call(r'BasicCompletion<ferry::client::PublishResult>::Complete', r'_Function_handler|PublishCallbacks')
    collector = I(r'PublishFutures.*lambda')
    rows = [
        ("application: Message built and freed (bench's own)", app - pub),
        ("Publish: completion set up (promise + future / std::function)", completion_new),
        ("Publish: id (32 hex digits)", ids),
        ("Publish: Pending, encode, Message's strings freed", pub - completion_new - ids - admit),
        ("Publish: admission (lock, seq, queue)", admit),
        ("sender: Batcher::Add (key queue)", add),
        ("sender: batch build (Batcher::NextBatch)", nextb),
        ("sender: request + gRPC start (Start)", start),
        ("sender: response read, results (Finish w/o Batcher::Complete)", finish - complete_keys),
        ("sender: keys released (Batcher::Complete)", complete_keys),
        ("sender: completion (Resolve: futures set / callbacks run, Pending freed)", resolve),
        ("  of which the application's callback body", cb),
        ("sender: loop (wait, swap queues), rest", sender - add - nextb - start - finish - resolve),
        ("future waiter thread: get(), result and shared state freed", collector),
        ("gRPC threads, other", total - app - sender - collector),
    ]
    return total, rows


def main(table=table):
    """Prints `table`'s rows for the dumps named on the command line."""
    args = sys.argv[1:]
    if args[0] == '--event':
        EVENTS[:] = args[1].split('+')
        args = args[2:]
    n = float(args[0])
    paths = args[1:]
    digits = 0 if EVENTS == ['Ir'] else 1
    out = [table(p, n) for p in paths]
    print("| component | " + " | ".join(p.split('/')[-1] for p in paths) + " |")
    print("|---|" + "--:|" * len(paths))
    for i in range(len(out[0][1])):
        print(f"| {out[0][1][i][0]} | " +
              " | ".join(f"{o[1][i][1]/n:,.{digits}f}" for o in out) + " |")
    print(f"| **total {'+'.join(EVENTS)} per message** | " +
          " | ".join(f"**{o[0]/n:,.{digits}f}**" for o in out) + " |")


if __name__ == '__main__':
    main()
