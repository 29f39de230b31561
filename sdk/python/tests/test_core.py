"""The I/O-free cores both flavours drive (PublisherCore, SubscriberCore),
exercised directly: fake responses in, the requests and resolutions the
shells would act on out. No server, no threads, no event loop; time is a
plain number."""
import datetime
import re

import grpc
import pytest

import ferry
from ferry._message import LOCK_FREE
from ferry._publisher_core import PublisherCore
from ferry._subscriber_core import SubscriberCore
from ferry.v1 import common_pb2, publisher_pb2, subscriber_pb2

#: Tests of the lock-free acks' bookkeeping (ACKED flags collected per stream).
lock_free_acks = pytest.mark.skipif(not LOCK_FREE, reason="acks take the lock here")


class FakeRpcError(grpc.RpcError):
    def __init__(self, code, details="x"):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


class Handle:
    """Stands in for a future: the core only stores it."""


def publisher(**overrides):
    options = dict(max_batch_messages=100, max_batch_bytes=1 << 20, linger=0.005,
                   max_outstanding_bytes=1 << 20, request_timeout=30.0,
                   delivery_timeout=120.0, retry_backoff=(0.1, 1.0), close_timeout=1.0,
                   max_inflight_batches=32)
    options.update(overrides)
    return PublisherCore(["a:1", "b:1"], **options)


def publish(core, topic, value, now, key=None):
    message, size, okey = core.prepare(topic, value, key, None, None, None, None)
    return core.enqueue(message, size, okey, topic, Handle(), now)


def answer(batch, first_offset=0):
    return publisher_pb2.PublishResponse(results=[
        publisher_pb2.PublishResult(cluster="main", partition=0, offset=first_offset + i)
        for i in range(batch.count)])


def test_publisher_core_sends_resolves_and_flushes():
    core = publisher()
    assert publish(core, "t", b"v1", 0.0)  # the first message wakes the sender
    watermark = core.last_seq
    to_send, expired = core.step(0.0)
    assert len(to_send) == 1 and not expired
    request = core.request(to_send[0])
    assert request.topic == "t" and [m.value for m in request.messages] == [b"v1"]
    assert re.fullmatch("[0-9a-f]{32}", request.messages[0].id)  # a generated ferry.id
    assert not core.flushed(watermark)
    resolved = core.on_response(to_send[0], answer(to_send[0], 7), 0.01)
    assert [o for _, o in resolved] == [[ferry.PublishResult("main", 0, 7)]]
    assert core.flushed(watermark) and core.outstanding_bytes == 0 and not core.inflight


def test_publisher_core_asks_for_and_reads_the_compact_answer():
    core = publisher()
    for value in (b"a", b"b", b"c"):
        publish(core, "t", value, 0.0)
    (batch,), _ = core.step(0.0)
    assert core.request(batch).compact_results
    compact = publisher_pb2.CompactPublishResults(
        cluster="main", partitions=[0, 2, 1], offsets=[5, 9, 7], timestamps_ms=[1, 2, 3])
    resolved = core.on_response(batch, publisher_pb2.PublishResponse(compact=compact), 0.01)
    outcomes = [o for _, outcome in resolved for o in outcome]
    assert outcomes == [ferry.PublishResult("main", 0, 5), ferry.PublishResult("main", 2, 9),
                        ferry.PublishResult("main", 1, 7)]


def test_publisher_core_fails_a_compact_answer_of_the_wrong_length():
    core = publisher()
    publish(core, "t", b"a", 0.0)
    publish(core, "t", b"b", 0.0)
    (batch,), _ = core.step(0.0)
    compact = publisher_pb2.CompactPublishResults(cluster="main", partitions=[0], offsets=[5])
    resolved = core.on_response(batch, publisher_pb2.PublishResponse(compact=compact), 0.01)
    outcomes = [o for _, outcome in resolved for o in outcome]
    assert len(outcomes) == 2 and all(isinstance(o, ferry.FerryError) for o in outcomes)


def test_publisher_core_retries_on_the_other_node_after_a_node_failure():
    core = publisher()
    publish(core, "t", b"v", 0.0)
    (batch,), _ = core.step(0.0)
    assert batch.endpoint == 0
    assert core.on_call_error(batch, FakeRpcError(grpc.StatusCode.UNAVAILABLE), 0.0) == []
    assert core.step(0.05) == ([], [])  # backoff: 0.1 s
    assert core.wakeup(0.05) == pytest.approx(0.05)
    publish(core, "u", b"w", 0.05)
    publish(core, "v", b"w", 0.06)
    others = core.step(0.06)[0]
    assert [b.endpoint for b in others] == [1, 1]  # node 0 is avoided for a while
    (retry,), _ = core.step(0.1)
    assert [e.records[0].id for e in retry.entries] == [e.records[0].id for e in batch.entries]
    resolved = core.on_response(retry, answer(retry), 0.2)
    assert isinstance(resolved[0][1][0], ferry.PublishResult)


def test_publisher_core_fails_non_retryable_call_errors_at_once():
    core = publisher()
    publish(core, "t", b"v", 0.0)
    (batch,), _ = core.step(0.0)
    resolved = core.on_call_error(batch, FakeRpcError(grpc.StatusCode.NOT_FOUND, "no t"), 0.0)
    assert [type(o) for _, (o,) in resolved] == [ferry.NotFound]
    assert core.outstanding_bytes == 0


def test_publisher_core_bounds_outstanding_bytes_and_inflight_batches():
    core = publisher(max_outstanding_bytes=300, max_inflight_batches=1, max_batch_messages=1)
    message, size, _ = core.prepare("t", b"x" * 100, None, None, None, None, None)
    assert core.admit(size)
    publish(core, "t", b"x" * 100, 0.0)
    publish(core, "t", b"x" * 100, 0.0)
    assert not core.admit(size)
    with pytest.raises(ferry.InvalidArgument):
        core.prepare("t", b"x" * 400, None, None, None, None, None)
    to_send, _ = core.step(0.0)
    assert len(to_send) == 1  # one batch in flight at most
    assert core.wakeup(0.0) is None  # nothing to do until it completes
    core.on_response(to_send[0], answer(to_send[0]), 0.0)
    assert core.admit(size)
    assert len(core.step(0.0)[0]) == 1


def test_publisher_core_expires_queued_messages_and_close_fails_the_rest():
    core = publisher(delivery_timeout=1.0, max_inflight_batches=1, max_batch_messages=1)
    publish(core, "t", b"a", 0.0)
    publish(core, "t", b"b", 0.0)
    (first,), _ = core.step(0.0)
    core.on_call_error(first, FakeRpcError(grpc.StatusCode.UNAVAILABLE), 0.0)
    to_send, expired = core.step(2.0)  # both past their delivery deadline
    assert to_send == [] and [type(o) for _, (o,) in expired] == [ferry.Unavailable,
                                                                  ferry.DeadlineExceeded]
    publish(core, "t", b"c", 2.0)
    (inflight,), _ = core.step(2.0)
    publish(core, "t", b"d", 2.0)
    leftovers, batches = core.close()
    assert batches == [inflight] and len(leftovers) == 2
    assert all(isinstance(o, ferry.Unavailable) and not o.retryable for _, (o,) in leftovers)
    with pytest.raises(ferry.Unavailable):
        core.admit(1)
    assert core.on_not_sent(inflight, None, 2.1) == []  # already resolved by close


class Owner:
    """The shell: Message.ack() etc. land here."""

    def __init__(self):
        self.core = None

    def _settle(self, message, kind, seconds):
        self.core.settle(message, kind, seconds, self.now)

    def _settle_batch(self, batch, kind, seconds):
        self.core.settle_batch(batch, kind, seconds, self.now)

    def _acks_pending(self, stream):
        self.core.acks_pending(stream, self.now)


OPTIONS = dict(ordering="none", ack_deadline=3.0, max_outstanding_messages=10,
               max_outstanding_bytes=1 << 20, start="earliest", filter="",
               max_delivery_attempts=0, dead_letter_topic="", client_id="test",
               ack_batch=(3, 0.01), max_extension=60.0, reconnect_backoff=(0.1, 0.4))


def subscriber(**overrides):
    options = dict(OPTIONS, **overrides)
    owner = Owner()
    owner.now = 0.0
    owner.core = SubscriberCore(owner, ["a:1", "b:1"], "g", ["t"], **options)
    return owner, owner.core


def deliver(core, stream, *keys, now=0.0, partition=0):
    response = subscriber_pb2.SubscribeResponse(messages=subscriber_pb2.MessageBatch(messages=[
        subscriber_pb2.ReceivedMessage(receipt=b"r-%s-%d" % (k.encode(), i), topic="t",
                                       partition=partition, offset=i, key=k.encode(),
                                       value=b"v%d" % i, delivery_attempt=1)
        for i, k in enumerate(keys)]))
    return core.on_response(stream, response, now)


def kinds(sent):
    return [r.WhichOneof("request") if r is not None else None for r in sent]


def test_subscriber_core_opens_delivers_and_batches_acks():
    owner, core = subscriber()
    sent = []
    stream = core.open_stream(0, sent.append)
    assert kinds(sent) == ["open"] and sent[0].open.group == "g"
    assert deliver(core, stream, "a", "b", "c") == (True, ())
    messages = [core.next_message() for _ in range(3)]
    assert [m.offset for m in messages] == [0, 1, 2] and core.next_message() is None
    assert core.settle(messages[0], "ack", 0.0, 0.0)  # first pending: start the timer
    assert not core.settle(messages[0], "nack", 0.0, 0.0)  # only the first settlement counts
    assert kinds(sent) == ["open"]
    assert core.maintain(0.005) == pytest.approx(0.01)  # waits ack_batch delay
    core.maintain(0.01)
    assert kinds(sent) == ["open", "ack"] and list(sent[1].ack.receipts) == [b"r-a-0"]
    messages[1].nack(2.0)
    messages[2].ack()
    core.settle(messages[1], "extend", None, 0.0)  # settled: extension ignored
    core.maintain(1.0)
    assert sorted(kinds(sent)[2:]) == ["ack", "nack"]
    assert core.snapshot().acks_sent == 2 and core.snapshot().nacks_sent == 1


def test_subscriber_core_flushes_a_full_ack_batch_at_once():
    owner, core = subscriber()
    sent = []
    stream = core.open_stream(0, sent.append)
    deliver(core, stream, "a", "b", "c")
    for _ in range(3):
        core.next_message().ack()
    assert kinds(sent) == ["open", "ack"] and len(sent[1].ack.receipts) == 3


def test_subscriber_core_extends_deadlines_of_unsettled_messages():
    owner, core = subscriber(ack_deadline=3.0, max_extension=5.0)
    sent = []
    stream = core.open_stream(0, sent.append)
    deliver(core, stream, "a")
    core.next_message()
    core.maintain(0.0)  # first scan scheduled at 0.5 s
    core.maintain(1.5)  # 1.5 s left > a third of 3 s: not yet
    assert kinds(sent) == ["open"]
    core.maintain(2.5)
    assert kinds(sent) == ["open", "extend"] and sent[1].extend.deadline.seconds == 3
    core.maintain(6.0)  # past max_extension: no more
    assert kinds(sent) == ["open", "extend"]


def test_subscriber_core_reconnects_with_backoff_and_drops_the_dead_streams_receipts():
    owner, core = subscriber()
    sent = []
    stream = core.open_stream(0, sent.append)
    deliver(core, stream, "a", "b")
    held = core.next_message()
    report, delay = core.on_stream_end(stream, None)
    assert not report.fatal and report.endpoint == "a:1" and delay == pytest.approx(0.1)
    assert sent[-1] is None  # half-closed
    assert held.settled and core.next_message() is None  # the queued one is dropped too
    held.ack()
    assert core.snapshot().reconnects == 1
    again = core.open_stream(0, sent.append)
    assert core.on_stream_end(again, ferry.Unavailable("x"))[1] == pytest.approx(0.2)
    again = core.open_stream(0, sent.append)
    core.on_response(again, subscriber_pb2.SubscribeResponse(opened=subscriber_pb2.Opened()), 0)
    assert core.on_stream_end(again, None)[1] == pytest.approx(0.1)  # reset by opened


def test_subscriber_core_stops_on_a_fatal_code_and_flushes_the_other_streams():
    owner, core = subscriber()
    sent_a, sent_b = [], []
    a = core.open_stream(0, sent_a.append)
    b = core.open_stream(1, sent_b.append)
    deliver(core, b, "x")
    core.next_message().ack()
    report, delay = core.on_stream_end(a, ferry.NotFound("no such topic"))
    assert report.fatal and delay is None
    assert core.failure is None  # not before the shell told the user (on_error)
    core.fail(report.error)
    assert kinds(sent_b) == ["open", "ack", None]
    with pytest.raises(ferry.NotFound):
        core.next_message()
    assert core.open_stream(0, sent_a.append) is None


def test_subscriber_core_reports_receipt_failures():
    owner, core = subscriber()
    stream = core.open_stream(0, lambda r: None)
    response = subscriber_pb2.SubscribeResponse(receipt_results=subscriber_pb2.ReceiptResults(
        results=[subscriber_pb2.ReceiptResult(receipt=b"r", status=common_pb2.Status(
            code=9, message="receipt expired"))]))
    delivered, errors = core.on_response(stream, response, 0.0)
    assert not delivered and [type(e) for e in errors] == [ferry.FailedPrecondition]
    assert errors[0].endpoint == "a:1" and core.snapshot().receipt_failures == 1


def test_subscriber_core_serialises_handlers_per_key_and_close_returns_the_waiting():
    owner, core = subscriber(ordering="key")
    stream = core.open_stream(0, lambda r: None)
    deliver(core, stream, "a", "b", "a", "a")
    m = [core.next_message() for _ in range(4)]
    keyed = core.chain_keys(m)
    assert [key for _, key in keyed] == [b"a", b"b", b"a", b"a"]
    assert core.admit_handlers(keyed) == (keyed[:2], [])  # the later a's wait behind the first
    assert core.handler_done(b"a") is m[2]
    assert core.running == 3
    leftovers = core.begin_close()
    assert leftovers == [m[3]] and core.running == 2
    assert core.handler_done(b"b") is None and core.handler_done(b"a") is None
    assert core.running == 0 and not core.chains


def test_subscriber_core_close_sends_pending_settlements_then_drops_later_ones():
    owner, core = subscriber()
    sent = []
    stream = core.open_stream(0, sent.append)
    deliver(core, stream, "a", "b", "c")
    first, second, third = (core.next_message() for _ in range(3))
    first.ack()
    assert core.begin_close() == [] and core.next_message() is None
    second.nack()
    core.end_close()
    assert kinds(sent) == ["open", "ack", "nack", None]
    third.ack()
    assert core.snapshot().dropped_settlements == 1
    assert deliver(core, stream, "late") == (False, ())  # closing: not queued


def test_message_builds_headers_and_publish_time_as_the_received_record_had_them():
    from google.protobuf import timestamp_pb2
    from ferry._message import Message, Received
    time = timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=123_456_789)
    pb = subscriber_pb2.ReceivedMessage(
        receipt=b"r", topic="t", value=b"v", publish_time=time,
        headers=[common_pb2.Header(key="h", value=b"1"), common_pb2.Header(key="h", value=b"2")])
    message = Message(Received([pb], None, 0.0, 30.0), 0)
    assert message.publish_time == time.ToDatetime(tzinfo=datetime.timezone.utc)
    assert message.publish_time.tzinfo is not None
    assert message.header_list == [("h", b"1"), ("h", b"2")]
    assert message.headers == {"h": b"2"}
    bare = Message(Received([subscriber_pb2.ReceivedMessage(receipt=b"r", topic="t")], None,
                            0.0, 30.0), 0)
    assert bare.publish_time is None and bare.headers == {} and bare.key is None


class ManyFuture:
    """Stands in for the future of a publish_many call."""

    def __init__(self):
        self.result = None

    def done(self):
        return self.result is not None

    def set_result(self, result):
        self.result = result


def publish_many(core, topic, items, now):
    from ferry._outgoing import ManyResults
    chunks, count, size = core.prepare_many(topic, items)
    future = ManyFuture()
    assert core.admit(size)
    core.enqueue_many(topic, chunks, ManyResults(future, count), now)
    return future


def deliver_all(resolutions):
    from ferry._publisher_core import deliver
    for target, outcomes in resolutions:
        deliver(target, outcomes)


def test_publish_many_chunks_by_key_and_limits_and_answers_in_call_order():
    core = publisher(max_batch_messages=3)
    items = [b"v0", (b"v1", "a"), b"v2", (b"v3", "b"), (b"v4", "a"), b"v5", b"v6", b"v7"]
    future = publish_many(core, "t", items, 0.0)
    sent = core.step(0.0)[0]
    # Unkeyed values in chunks of at most 3, key a's two in one chunk, key b's one.
    assert sorted(e.count for b in sent for e in b.entries) == [1, 2, 2, 3]
    values = {}
    for batch in sent:
        request = core.request(batch)
        assert len(request.messages) == batch.count <= 3
        for m in request.messages:
            assert re.fullmatch("[0-9a-f]{32}", m.id)
            values[m.value] = m.key
    assert values == {b"v%d" % i: (b"a" if i in (1, 4) else b"b" if i == 3 else b"")
                      for i in range(8)}
    offsets = iter(range(100))
    for batch in sent:
        deliver_all(core.on_response(batch, answer(batch, next(offsets) * 10), 0.01))
    assert future.result is not None and len(future.result) == 8
    assert all(isinstance(r, ferry.PublishResult) for r in future.result)
    # Key a kept its order inside its chunk: v1 before v4.
    assert future.result[1].offset + 1 == future.result[4].offset
    assert core.outstanding_bytes == 0 and core.flushed(core.last_seq)


def test_publish_many_retries_only_the_failed_messages_of_a_chunk_with_their_ids():
    core = publisher()
    future = publish_many(core, "t", [b"a", b"b", b"c", b"d"], 0.0)
    (batch,), _ = core.step(0.0)
    ids = [m.id for m in core.request(batch).messages]
    response = answer(batch)
    response.results[1].status.code = 14       # UNAVAILABLE, retryable
    response.results[1].status.retryable = True
    response.results[2].status.code = 3        # INVALID_ARGUMENT: final
    resolved = core.on_response(batch, response, 0.0)
    deliver_all(resolved)
    assert future.result is None and not core.flushed(core.last_seq)
    assert core.outstanding_bytes > 0
    (retry,), _ = core.step(0.2)
    request = core.request(retry)
    assert [(m.value, m.id) for m in request.messages] == [(b"b", ids[1])]
    deliver_all(core.on_response(retry, answer(retry, 50), 0.2))
    a, b, c, d = future.result
    assert (a.offset, b.offset, d.offset) == (0, 50, 3)
    assert isinstance(c, ferry.InvalidArgument)
    assert core.outstanding_bytes == 0 and core.flushed(core.last_seq)


def test_publish_many_rejects_bad_items_and_calls_larger_than_the_bound():
    core = publisher(max_outstanding_bytes=1000)
    with pytest.raises(TypeError):
        core.prepare_many("t", [b"ok", 5])
    with pytest.raises(ferry.InvalidArgument):
        core.prepare_many("t", [b"x" * 600, b"y" * 600])


def test_subscriber_core_hands_out_a_response_as_one_batch_and_acks_it_in_one_request():
    owner, core = subscriber(ack_batch=(100, 0.01))
    sent = []
    stream = core.open_stream(0, sent.append)
    deliver(core, stream, "a", "b", "c", "d")
    deliver(core, stream, "e")
    first = core.next_message()  # the two forms mix: each message goes out once
    batch = core.next_batch(max_messages=2)
    assert first.offset == 0 and [m.offset for m in batch] == [1, 2]
    assert batch.values == [b"v1", b"v2"] and batch[-1].key == b"c"
    rest = core.next_batch()
    assert [m.value for m in rest] == [b"v3"]  # the rest of the first response only
    assert [m.value for m in core.next_batch()] == [b"v0"] and core.next_batch() is None
    batch[0].nack()
    batch.ack()  # the nacked one is not acked too
    core.maintain(1.0)
    assert kinds(sent) == ["open", "ack", "nack"]
    assert list(sent[1].ack.receipts) == [b"r-c-2"] and batch[1].settled
    rest.ack()
    rest.ack()  # only the first settlement counts
    core.maintain(2.0)
    assert list(sent[3].ack.receipts) == [b"r-d-3"] and kinds(sent).count("ack") == 2


def test_subscriber_core_extends_a_batch_except_what_was_settled_or_extended_alone():
    owner, core = subscriber(ack_deadline=3.0, max_extension=30.0)
    sent = []
    stream = core.open_stream(0, sent.append)
    deliver(core, stream, "a", "b", "c")
    batch = core.next_batch()
    batch[0].ack()
    batch[1].extend(10.0)
    core.maintain(0.0)
    core.maintain(2.5)
    extends = [r for r in sent if r is not None and r.WhichOneof("request") == "extend"]
    assert [list(r.extend.receipts) for r in extends] == [[b"r-b-1"], [b"r-c-2"]]
    core.maintain(9.5)  # b's own 10 s deadline is now within a third of ack_deadline
    extends = [r for r in sent if r is not None and r.WhichOneof("request") == "extend"]
    assert sorted(r for e in extends[2:] for r in e.extend.receipts) == [b"r-b-1", b"r-c-2"]


def test_subscriber_core_drops_a_batch_of_a_broken_stream():
    owner, core = subscriber()
    stream = core.open_stream(0, lambda r: None)
    deliver(core, stream, "a", "b")
    batch = core.next_batch()
    core.on_stream_end(stream, None)
    assert all(m.settled for m in batch)
    batch.ack()
    assert core.snapshot().acks_sent == 0  # its receipts died with the stream


def deliver_with_runs(core, stream, count, runs):
    """``count`` messages; ``runs`` as (first_message, count) pairs, each
    run's token b"run<first>"."""
    response = subscriber_pb2.SubscribeResponse(messages=subscriber_pb2.MessageBatch(
        messages=[subscriber_pb2.ReceivedMessage(receipt=b"r%d" % i, topic="t", offset=i,
                                                 value=b"v%d" % i) for i in range(count)],
        runs=[subscriber_pb2.ReceiptRun(run=b"run%d" % first, first_message=first, count=n)
              for first, n in runs]))
    return core.on_response(stream, response, 0.0)


def handed_out(count, runs, **options):
    """A subscriber with one stream that delivered ``count`` messages with
    ``runs`` (see deliver_with_runs), each handed out by next_message:
    (owner, core, sent requests, stream, messages)."""
    owner, core = subscriber(**options)
    sent = []
    stream = core.open_stream(0, sent.append)
    deliver_with_runs(core, stream, count, runs)
    return owner, core, sent, stream, [core.next_message() for _ in range(count)]


def acks_of(sent):
    """(receipts, spans as (run, first, count)) of the ack requests in ``sent``."""
    acks = [r.ack for r in sent if r is not None and r.WhichOneof("request") == "ack"]
    return ([bytes(x) for a in acks for x in a.receipts],
            [(s.run, s.first, s.count) for a in acks for s in a.spans])


def test_subscriber_core_acks_a_batch_by_spans_of_its_runs_and_receipts_outside_them():
    owner, core = subscriber(ack_batch=(100, 0.01))
    sent = []
    stream = core.open_stream(0, sent.append)
    deliver_with_runs(core, stream, 8, [(0, 3), (4, 4)])  # message 3 is in no run
    batch = core.next_batch()
    batch[5].nack()
    batch.ack()
    core.maintain(1.0)
    assert acks_of(sent) == ([b"r3"], [(b"run0", 0, 3), (b"run4", 0, 1), (b"run4", 2, 2)])
    assert [list(r.nack.receipts) for r in sent if r.WhichOneof("request") == "nack"] == [[b"r5"]]
    assert core.snapshot().acks_sent == 7 and core.snapshot().nacks_sent == 1


@lock_free_acks
def test_subscriber_core_joins_single_acks_into_one_span_per_stretch_of_a_run():
    owner, core, sent, stream, messages = handed_out(6, [(0, 4), (4, 2)], ack_batch=(100, 0.01))
    for index in (0, 1, 4, 5, 3):  # out of order, 2 not yet
        messages[index].ack()
    core.maintain(1.0)
    assert acks_of(sent) == ([], [(b"run0", 0, 2), (b"run0", 3, 1), (b"run4", 0, 2)])
    messages[2].ack()
    core.maintain(2.0)
    assert acks_of(sent)[1][3:] == [(b"run0", 2, 1)]
    assert core.snapshot().acks_sent == 6 and not stream.unsettled


def test_subscriber_core_acks_by_receipt_when_runs_are_absent_or_unusable():
    owner, core = subscriber(ack_batch=(100, 0.01))
    sent = []
    stream = core.open_stream(0, sent.append)
    # past the end, overlapping the previous one, empty: all ignored
    deliver_with_runs(core, stream, 4, [(2, 5), (0, 2), (1, 2), (3, 0)])
    deliver_with_runs(core, stream, 2, [])
    core.next_batch().ack()
    core.next_batch().ack()
    core.maintain(1.0)
    assert acks_of(sent) == ([b"r2", b"r3", b"r0", b"r1"], [(b"run0", 0, 2)])


def test_subscriber_core_admits_a_responses_handlers_at_once_chaining_per_key():
    owner, core = subscriber(ordering="key")
    stream = core.open_stream(0, lambda r: None)
    deliver(core, stream, "a", "b", "a")
    batch = list(core.next_batch())
    ready, loose = core.admit_handlers(core.chain_keys(batch))
    assert [m.key for m, _ in ready] == [b"a", b"b"] and not loose and core.running == 3
    # The second a waited for the first; b's chain ends.
    assert core.handler_done(b"a") is batch[2] and core.handler_done(b"b") is None
    assert core.running == 1 and list(core.chains) == [b"a"]
    owner, core = subscriber(ordering="partition")
    stream = core.open_stream(0, lambda r: None)
    deliver(core, stream, "a", "b")
    batch = list(core.next_batch())
    assert core.admit_handlers(core.chain_keys(batch)) == ([(batch[0], 0)], [])
    # With several topics a chain is a topic's key (partition).
    assert SubscriberCore(owner, ["a:1"], "g", ["t", "u"], **dict(
        OPTIONS, ordering="key")).chain_keys(batch[:1]) == [(batch[0], ("t", b"a"))]
    owner, core = subscriber(ordering="none")
    stream = core.open_stream(0, lambda r: None)
    deliver(core, stream, "a", "a")
    batch = list(core.next_batch())
    assert core.admit_handlers(core.chain_keys(batch)) == ([], batch)
    core.handlers_done(1)
    assert core.running == 1 and not core.chains


@lock_free_acks
def test_subscriber_core_records_single_acks_by_stretches_of_each_response():
    owner, core = subscriber(ack_batch=(100, 0.01))
    sent = []
    stream = core.open_stream(0, sent.append)
    deliver_with_runs(core, stream, 6, [(0, 6)])
    deliver_with_runs(core, stream, 3, [])  # no runs: acked by receipt
    first, second = list(core.next_batch()), list(core.next_batch())
    first[3].nack()  # settled by its handler: not acked again
    for message in first[1:5] + [second[0], second[2]]:  # 1-4 and two of the next response
        message.ack()
    for message in first[1:3]:
        message.ack()  # already acked: nothing more
    assert stream.acked == 5
    core.maintain(1.0)
    assert acks_of(sent) == ([b"r0", b"r2"], [(b"run0", 1, 2), (b"run0", 4, 1)])
    assert [m.settled for m in first] == [False, True, True, True, True, False]
    assert [m.settled for m in second] == [True, False, True]
    assert core.snapshot().acks_sent == 5 and core.snapshot().nacks_sent == 1


@lock_free_acks
def test_subscriber_core_sends_a_full_batch_of_single_acks_at_once_and_sets_the_timer_once():
    owner, core, sent, stream, messages = handed_out(7, [(0, 7)], ack_batch=(3, 10.0))
    calls = []
    owner._acks_pending = lambda s: calls.append(core.acks_pending(s, owner.now))
    messages[0].ack()
    messages[1].ack()
    assert calls == [True] and acks_of(sent) == ([], [])  # the first sets the timer
    messages[2].ack()  # the third fills the batch: sent without waiting
    assert acks_of(sent) == ([], [(b"run0", 0, 3)]) and calls == [True, False]
    messages[4].ack()  # the first since: the timer again
    assert calls == [True, False, True]
    core.maintain(20.0)
    assert acks_of(sent) == ([], [(b"run0", 0, 3), (b"run0", 4, 1)])


def test_subscriber_core_drops_acks_of_a_broken_stream_and_they_do_not_ack_its_redelivery():
    owner, core, sent, stream, old = handed_out(4, [(0, 4)], ack_batch=(100, 0.01))
    old[0].ack()
    old[1].ack()  # flagged, not yet recorded, when the stream breaks
    core.on_stream_end(stream, None)
    old[2].ack()  # after: does nothing
    assert core.snapshot().dropped_settlements == 2
    again = core.open_stream(0, sent.append)
    deliver_with_runs(core, again, 4, [(0, 4)])  # the node redelivers on the new stream
    new = [core.next_message() for _ in range(4)]
    old[3].ack()
    assert not any(m.settled for m in new)
    new[3].ack()
    core.maintain(1.0)
    assert acks_of(sent) == ([], [(b"run0", 3, 1)]) and core.snapshot().acks_sent == 1
    assert list(again.unsettled) == [new[0]._received]


def test_subscriber_core_takes_back_what_receive_had_not_handed_out():
    owner, core = subscriber(ack_batch=(100, 0.01))
    stream = core.open_stream(0, lambda r: None)
    deliver_with_runs(core, stream, 5, [(0, 5)])
    deliver_with_runs(core, stream, 2, [(0, 2)])
    assert core.next_message().offset == 0
    assert next(core.hand).offset == 1  # the rest of the response, without the core
    batch = core.next_batch()  # mixes: the rest of the first response
    assert [m.offset for m in batch] == [2, 3, 4] and next(core.hand, None) is None
    assert core.next_message().offset == 0  # the second response
    leftovers = core.begin_close()
    assert [m.offset for m in leftovers] == [1] and next(core.hand, None) is None
    assert core.next_message() is None

    owner, core = subscriber()
    stream = core.open_stream(0, lambda r: None)
    deliver_with_runs(core, stream, 3, [])
    core.next_message()
    core.on_stream_end(stream, None)  # its receipts are void: not handed out
    assert next(core.hand, None) is None and core.next_message() is None
