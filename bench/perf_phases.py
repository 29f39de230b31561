#!/usr/bin/env python3
"""Splits a perf profile of ferryd and publish_bench into publish-path phases,
or (--subscribe) one of ferryd alone into subscribe-path phases.

    perf record -e cpu-clock -F 499 --call-graph dwarf,16384 -p FERRYD,BENCH -- sleep 8
    perf script -F comm,pid,tid,ip,sym,dso > script.txt
    bench/perf_phases.py script.txt FERRYD_PID BENCH_PID
    bench/perf_phases.py --subscribe script.txt FERRYD_PID

Each sample goes to the first phase (in table order) whose pattern occurs in
any frame of its call stack, so the order of the rules matters: for example
a malloc inside the request copy counts as the copy. Prints, per process,
the share of each phase, the share of samples whose leaf is in malloc/free,
and the top leaf symbols. Used for bench/RESULTS.md.
"""
import collections
import re
import sys


def comm_in(*names):
    return lambda sample: sample["comm"] in names


# Last in every table: what is left to gRPC's threads and the kernel.
GRPC_TRANSPORT = [
    ("gRPC transport: recvmsg", "recvmsg"),
    ("gRPC transport: sendmsg", "sendmsg"),
    ("gRPC transport/epoll/other",
     comm_in("nexting_thread", "default-executo", "grpc_global_tim",
             "resolver-execut")),
    ("other", lambda sample: True),
]

FERRYD_PHASES = [
    ("librdkafka broker thread (build + send ProduceRequests, read acks)",
     lambda sample: sample["comm"].startswith("rdk:")),
    ("gRPC parse PublishRequest (Deserialize)",
     "CallbackUnaryHandler<ferry::v1::PublishRequest, "
     "ferry::v1::PublishResponse>::Deserialize"),
    ("parse PublishRequest in place (ReceivedBatch::Decode)", "ReceivedBatch::Decode"),
    ("handler: copy of the whole PublishRequest (PublisherService::Publish)",
     "ferry::v1::PublishRequest::PublishRequest"),
    ("handler: Prepare (validate, size, route)", "BatchPublisher::Prepare"),
    ("handler: Dispatch -> Record -> rd_kafka_producev", "BatchPublisher::Dispatch"),
    ("response: write by hand (ReceivedBatch::Response)", "ReceivedBatch::Response"),
    ("response: serialize + send (ServerUnaryReactor::Finish)",
     "ServerUnaryReactor::Finish"),
    ("delivery reports: OnDelivery (result, metrics, free record)",
     "KafkaCluster::OnDelivery"),
    ("gRPC: destroy request/response after the call (OnDone)", "CallOnDone"),
    ("poll thread other (rd_kafka_poll)", "rd_kafka_poll"),
] + GRPC_TRANSPORT


# ferryd serving a backlog to a subscriber (consume_bench): the member thread
# is the process's main-named thread, the acks and deliveries run on gRPC's.
SUBSCRIBE_PHASES = [
    ("librdkafka threads (fetch: recvmsg, parse)",
     lambda sample: sample["comm"].startswith("rdk:")),
    ("member: read queues, make records (KafkaGroupMember::Take)",
     "KafkaGroupMember::Take"),
    ("member: buffer records (GroupDispatcher::OnRecords)", "GroupDispatcher::OnRecords"),
    ("member: other (queue reads, poll, nudges)", "KafkaGroupMember::"),
    ("ack read: parse SubscribeRequest (Deserialize)", "Deserialize"),
    ("ack read: Pump (deliver, encode, copy values)", "GroupDispatcher::Pump"),
    ("ack read: send responses (StartWrite inline)", "GroupDispatcher::Flush"),
    ("ack read: apply acks (GroupDispatcher::Ack less the above)",
     "GroupDispatcher::Ack"),
] + GRPC_TRANSPORT


def harness_only(sample):
    frames = sample["frames"]
    return any("RunFerry" in f for f in frames) and not any(
        "Publisher::Impl::Publish" in f or "Publisher::Publish" in f for f in frames)


BENCH_PHASES = [
    ("bench harness: build Message / MessageView, collector thread, callbacks",
     harness_only),
    ("SDK PublishMany(): ids, encode the parts", "Publisher::Impl::PublishMany"),
    ("SDK Publish(): id, encode into the Pending, promise/future, lock",
     "Publisher::Impl::Publish"),
    ("SDK sender: Batcher (queues, maps; parts' keys)", "internal::Batcher::"),
    ("SDK sender: Start / StartPart (concatenate the request, send)",
     "Publisher::Impl::Start"),
    ("SDK sender: Finish / FinishPart (read results)", "Publisher::Impl::Finish"),
    ("SDK sender: Resolve (set futures / complete calls, free messages)",
     "Publisher::Impl::Resolve"),
    ("SDK sender: other", "Publisher::Impl::Run"),
    ("gRPC client: parse PublishResponse",
     "GenericDeserialize<grpc::ProtoBufferReader, ferry::v1::PublishResponse>"),
] + GRPC_TRANSPORT

MALLOC_LEAF = re.compile(
    r"^(malloc|_int_malloc|_int_free|cfree|free|malloc_consolidate|unlink_chunk|"
    r"__GI___libc_malloc|__GI___libc_free|operator new|operator delete|sysmalloc|"
    r"tcache|calloc|__libc_calloc|realloc|_int_realloc)")


def read_samples(path):
    samples, current = [], None
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if current:
                    samples.append(current)
                current = None
            elif not line[0].isspace():
                m = re.match(r"(.+?)\s+(\d+)/(\d+)", line)
                current = {"comm": m.group(1).strip(), "pid": m.group(2), "frames": []}
            elif current is not None:
                parts = line.strip().split(" ", 1)
                current["frames"].append(parts[1] if len(parts) > 1 else "")
    if current:
        samples.append(current)
    return samples


def phase_of(phases, sample):
    for name, rule in phases:
        if callable(rule):
            if rule(sample):
                return name
        elif any(rule in frame for frame in sample["frames"]):
            return name
    return "other"


def report(samples, title, pid, phases):
    mine = [s for s in samples if s["pid"] == pid]
    if not mine:
        print(f"\n{title}: no samples for pid {pid}")
        return
    total = len(mine)
    print(f"\n{title}: {total} samples ({100 * total / len(samples):.1f}% of all)")
    counts = collections.Counter(phase_of(phases, s) for s in mine)
    for name, _ in phases:
        if counts[name]:
            print(f"  {100 * counts[name] / total:5.1f}%  {name}")
    leaves = [s["frames"][0].split(" (")[0] for s in mine if s["frames"]]
    in_malloc = sum(1 for leaf in leaves if MALLOC_LEAF.match(leaf))
    print(f"  leaf in malloc/free: {100 * in_malloc / total:.1f}%")
    print("  top leaf symbols:")
    for symbol, n in collections.Counter(leaves).most_common(12):
        print(f"    {100 * n / total:5.1f}%  {symbol[:110]}")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--subscribe":
        report(read_samples(sys.argv[2]), "ferryd", sys.argv[3], SUBSCRIBE_PHASES)
        return
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    path, ferryd_pid, bench_pid = sys.argv[1:]
    samples = read_samples(path)
    report(samples, "ferryd", ferryd_pid, FERRYD_PHASES)
    report(samples, "publish_bench (SDK client + harness)", bench_pid, BENCH_PHASES)


if __name__ == "__main__":
    main()
