"""The subscriber's state machine, without I/O: the one core of both flavours.

:class:`ferry.Subscriber` (threads) and :class:`ferry.aio.Subscriber`
(asyncio) are thin shells around :class:`SubscriberCore`. A shell owns the
clock reads, the locking (or the event loop), the gRPC streams, the waiting
and the user's callbacks; the core owns the rest: options and the open
request, one :class:`Stream` state per endpoint, the delivery queue, ack /
nack / extension batching per stream, automatic deadline extension,
reconnect backoff, fatal codes, close, and the per-key (per-partition) serial
order of handler calls. Every method is plain and single-threaded (the shell
holds its lock or runs on its loop around each call) and returns what the
shell must do next; the core is tested without a server (tests/test_core.py).

How a shell drives it, per endpoint ``i``::

    stream = core.open_stream(i, send)   # send(request) queues on the gRPC
    if stream is None: stop              #   stream; send(None) half-closes
    for response in Subscribe(requests queued by send):
        delivered, receipt_errors = core.on_response(stream, response, now)
        wake receivers if delivered; report receipt_errors to the user
    report, delay = core.on_stream_end(stream, error or None)
    tell the user ``report`` (if any); if report.fatal: core.fail(report.error)
    reconnect after ``delay`` (None: stop)

and beside that: ``next(core.hand, None)`` and then ``core.next_message()``
for receivers (``hand`` is taken without a lock: see :meth:`next_message`),
``core.next_batch()``, ``core.acks_pending(stream, now)`` from Message.ack
(which flags its message ACKED without a lock), ``core.settle(...)`` from
Message.nack/extend and ``core.settle_batch(...)`` from MessageBatch.ack/nack
(wake the maintenance timer when they return True), ``core.maintain(now)``
when that timer fires (it returns the next time), ``core.begin_close()`` /
``core.end_close()`` from close.

A response's messages stay in one :class:`ferry._message.Received` (the
parsed protobuf and a settled flag per message) from arrival to their last
settlement; a ``Message`` is a view built when handed out.
"""
import collections
import os
import socket
from itertools import repeat
from typing import Dict, List, Optional

from google.protobuf import duration_pb2

from ferry import _common, _types
from ferry._message import (ACKED, VERSION, Message, MessageBatch, Received, Stats,
                            SubscriberError, unsettled_pieces)
from ferry.errors import FerryError, Unavailable, error_from_status
from ferry.v1 import subscriber_pb2


def duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromMilliseconds(int(round(seconds * 1000)))
    return d


def default_client_id() -> str:
    return "ferry-python/%s %s:%d" % (VERSION, socket.gethostname(), os.getpid())


class Settlements:
    """Acks, nacks and extensions of one stream waiting to be sent. Acks are
    receipts and spans ``[run, first, count]`` of receipt runs; a span that
    continues the last one of its run grows it, so messages acked one by one
    in order still go as one span."""
    __slots__ = ("acks", "spans", "span_messages", "nacks", "extensions", "since", "count")

    def __init__(self):
        self.acks: List[bytes] = []
        self.spans: List[list] = []
        self.span_messages = 0
        self.nacks: Dict[float, List[bytes]] = {}
        self.extensions: Dict[float, List[bytes]] = {}
        self.since: Optional[float] = None  # when the oldest pending one was added
        self.count = 0

    def add_spans(self, spans, now: float) -> None:
        # SubscriberCore.settle() inlines this for one ack: keep them alike.
        pending = self.spans
        for run, first, count in spans:
            last = pending[-1] if pending else None
            if last is not None and last[0] is run and last[1] + last[2] == first:
                last[2] += count
            else:
                pending.append([run, first, count])
            self.span_messages += count
            self.count += count
        if self.since is None:
            self.since = now

    def add(self, kind: str, receipts: List[bytes], seconds: float, now: float) -> None:
        if kind == "ack":
            self.acks.extend(receipts)
        elif kind == "nack":
            self.nacks.setdefault(seconds, []).extend(receipts)
        else:
            self.extensions.setdefault(seconds, []).extend(receipts)
        if self.since is None:
            self.since = now
        self.count += len(receipts)

    def take(self):
        """Returns the requests to send and (acks, nacks, extensions) counts."""
        requests = []
        counts = (len(self.acks) + self.span_messages, sum(map(len, self.nacks.values())),
                  sum(map(len, self.extensions.values())))
        if self.acks or self.spans:
            span = subscriber_pb2.ReceiptSpan
            requests.append(subscriber_pb2.SubscribeRequest(ack=subscriber_pb2.Acks(
                receipts=self.acks,
                spans=[span(run=run, first=first, count=count)
                       for run, first, count in self.spans])))
        for delay, receipts in self.nacks.items():
            requests.append(subscriber_pb2.SubscribeRequest(
                nack=subscriber_pb2.Nacks(receipts=receipts, delay=duration(delay))))
        for deadline, receipts in self.extensions.items():
            requests.append(subscriber_pb2.SubscribeRequest(
                extend=subscriber_pb2.Extensions(receipts=receipts,
                                                 deadline=duration(deadline))))
        self.acks = []
        self.spans = []
        self.span_messages = 0
        self.nacks = {}
        self.extensions = {}
        self.since = None
        self.count = 0
        return requests, counts


class Stream:
    """One connection attempt to one endpoint. Receipts are valid on it only.

    ``send`` is the shell's: it queues a request on the gRPC stream, and
    ``send(None)`` half-closes it. ``call`` is the shell's call object.

    Message.ack, without a lock, counts in ``acked`` (about: two threads may
    count one) and calls the shell when ``acks_waiting`` is False (no ack
    waits for the timer yet) or ``acked`` reached ``ack_batch``."""
    __slots__ = ("index", "send", "call", "alive", "pending", "unsettled", "acked",
                 "acks_waiting", "ack_batch")

    def __init__(self, index, send, ack_batch=1):
        self.index = index
        self.send = send
        self.call = None
        self.alive = True
        self.pending = Settlements()
        self.unsettled: Dict[Received, None] = {}  # responses with unsettled messages
        self.acked = 0              # ACKED flags since the last collection
        self.acks_waiting = False   # the timer is set for them
        self.ack_batch = ack_batch

    def half_close(self):
        self.send(None)


class SubscriberCore:
    """Options and delivery state of one subscriber (see the module doc).

    ``owner`` is the shell: delivered messages call ``owner._settle(message,
    kind, seconds)`` from ack/nack/extend."""

    def __init__(self, owner, endpoints, group, topics, *, ordering, ack_deadline,
                 max_outstanding_messages, max_outstanding_bytes, start, filter,
                 max_delivery_attempts, dead_letter_topic, client_id, ack_batch,
                 max_extension, reconnect_backoff):
        self.targets = _common.check_endpoints(endpoints)
        if not isinstance(group, str) or not group:
            raise ValueError("group must be a non-empty string")
        if isinstance(topics, str):
            topics = [topics]
        topics = list(topics or [])
        if not topics:
            raise ValueError("topics must name at least one topic")
        if max_outstanding_messages < 1 or max_outstanding_bytes < 1:
            raise ValueError("max_outstanding_messages and max_outstanding_bytes must be >= 1")
        self.ordering = _types.ordering_of(ordering)
        self.one_topic = len(set(topics)) == 1
        self.ack_deadline = _types.seconds_of(ack_deadline, "ack_deadline")
        self.ack_batch_count = int(ack_batch[0])
        self.ack_batch_delay = _types.seconds_of(ack_batch[1], "ack_batch delay")
        self.max_extension = _types.seconds_of(max_extension, "max_extension")
        self.backoff_initial, self.backoff_max = (
            _types.seconds_of(v, "reconnect_backoff") for v in reconnect_backoff)
        self.open_request = subscriber_pb2.SubscribeRequest(open=subscriber_pb2.SubscriptionOpen(
            group=group, topics=topics, ordering=self.ordering.value,
            ack_deadline=duration(self.ack_deadline),
            flow=subscriber_pb2.FlowControl(max_outstanding_messages=max_outstanding_messages,
                                            max_outstanding_bytes=max_outstanding_bytes),
            start=_types.position_of(start), filter=filter or "",
            max_delivery_attempts=max_delivery_attempts,
            dead_letter_topic=dead_letter_topic or "",
            client_id=client_id or default_client_id()))
        self.owner = owner
        self.streams: List[Optional[Stream]] = [None] * len(self.targets)
        self.backoff = [self.backoff_initial] * len(self.targets)
        self.delivery = collections.deque()
        self.stats = Stats()
        self.failure: Optional[FerryError] = None
        self.closing = False     # no new streams or deliveries
        self.accepting = True    # settlements still sent (until close's last flush)
        self.next_scan: Optional[float] = None
        self.running = 0         # handler calls running or waiting in a chain
        # A running chain's key -> its waiting messages (None: none waits).
        self.chains: Dict[object, Optional[collections.deque]] = {}
        # The response receive() hands out a message at a time: ``hand``
        # builds the Messages of ``_hand_indices`` of ``_hand_received``.
        self.hand = iter(())
        self._hand_received: Optional[Received] = None
        self._hand_indices = iter(())

    # -- streams ----------------------------------------------------------

    def open_stream(self, index: int, send) -> Optional[Stream]:
        """A new stream to endpoint ``index`` (its open request already sent);
        None once closing."""
        if self.closing:
            return None
        stream = self.streams[index] = Stream(index, send, self.ack_batch_count)
        send(self.open_request)
        return stream

    def on_response(self, stream: Stream, response, now: float):
        """Applies one response: (messages were queued, receipt errors)."""
        kind = response.WhichOneof("response")
        if kind == "messages":
            if self.closing:
                return False, ()  # not acked: the node redelivers once the stream ends
            batch = response.messages.messages
            if not batch:
                return False, ()
            self.stats.received += len(batch)
            received = Received(batch, stream, now, self.ack_deadline,
                                response.messages.runs, self.owner)
            stream.unsettled[received] = None
            self.delivery.append(received)
            return True, ()
        if kind == "opened":
            self.backoff[stream.index] = self.backoff_initial
        elif kind == "receipt_results":
            results = response.receipt_results.results
            self.stats.receipt_failures += len(results)
            endpoint = self.targets[stream.index]
            return False, [error_from_status(r.status.code, r.status.message,
                                             retryable=r.status.retryable, endpoint=endpoint)
                           for r in results]
        return False, ()

    def on_stream_end(self, stream: Stream, error: Optional[FerryError]):
        """The stream ended (``error`` None: the node closed it cleanly).
        Returns (SubscriberError to report or None, seconds to wait before
        reconnecting or None to stop). After a fatal report the shell calls
        :meth:`fail` once it told the user, so ``on_error`` has run by the
        time receivers see the failure."""
        stream.alive = False
        self._collect_acks(stream)  # dropped: the stream is dead
        self.stats.dropped_settlements += stream.pending.count
        stream.pending.take()
        for received in stream.unsettled:
            received.drop()
        stream.unsettled.clear()
        if self.delivery:
            self.delivery = collections.deque(r for r in self.delivery if r.stream is not stream)
        if self._hand_received is not None and self._hand_received.stream is stream:
            self._take_hand()  # void receipts: not handed out
        stream.half_close()
        if self.closing:
            return None, None
        endpoint = self.targets[stream.index]
        if error is None:
            error = Unavailable("stream ended by the node", endpoint=endpoint)
        fatal = error.code in _common.FATAL_STREAM_CODES
        if fatal:
            return SubscriberError(error, endpoint, True), None
        self.stats.reconnects += 1
        delay = self.backoff[stream.index]
        self.backoff[stream.index] = min(delay * 2, self.backoff_max)
        return SubscriberError(error, endpoint, False), delay

    def fail(self, error: FerryError) -> None:
        """Stops the subscriber after a fatal error: receivers get ``error``;
        the other streams send their pending settlements and half-close."""
        self.failure = self.failure or error
        self._take_hand()  # receivers get the error, not these
        self._stop_streams()

    def open_streams(self) -> int:
        return sum(1 for s in self.streams if s is not None and s.alive and s.call is not None)

    def snapshot(self) -> Stats:
        stats = self.stats.copy()
        stats.open_streams = self.open_streams()
        return stats

    # -- delivery ---------------------------------------------------------

    def next_message(self) -> Optional[Message]:
        """The next deliverable message; raises the fatal error after a fatal
        failure; None when there is none (or closing).

        It hands out a response at a time: the rest of the response goes to
        ``hand``, which receivers take from without a lock (``next`` of it is
        one C call that takes an index, so each message goes to one
        receiver). Whatever stops hand-outs (close, a fatal failure, the
        response's stream ending) takes the hand's indices that are left
        (:meth:`_take_hand`), so a message is handed out or taken back,
        never both."""
        if (self.failure is not None or self.closing) and not self._delivering():
            return None
        message = next(self.hand, None)
        if message is not None:
            return message
        delivery = self.delivery
        while delivery:
            received = delivery.popleft()
            if not received.stream.alive:
                continue
            start = received.next
            received.next = received.size
            self._hand_received = received
            self._hand_indices = iter(range(start + 1, received.size))
            self.hand = map(Message, repeat(received), self._hand_indices)
            return Message(received, start)
        return None

    def next_batch(self, max_messages: Optional[int] = None) -> Optional[MessageBatch]:
        """The messages of the oldest response not handed out yet (at most
        ``max_messages``), as one batch; otherwise as next_message."""
        if not self._delivering():
            return None
        delivery = self.delivery
        received, left = self._take_hand()
        if left:  # the rest of the response receive() was handing out
            received.next = left[0]
            delivery.appendleft(received)
        while delivery:
            received = delivery.popleft()
            if not received.stream.alive:
                continue
            start, stop = received.next, received.size
            if max_messages is not None and stop - start > max_messages:
                stop = start + max(1, max_messages)
                delivery.appendleft(received)
            received.next = stop
            return MessageBatch(received, start, stop)
        return None

    def _take_hand(self):
        """Ends the hand-out of one response: (its Received, the indices not
        handed out, in order)."""
        received, left = self._hand_received, list(self._hand_indices)
        self.hand = iter(())
        self._hand_received, self._hand_indices = None, iter(())
        return received, left

    def _delivering(self) -> bool:
        """False once closing; raises the fatal error after a fatal failure."""
        if self.failure is not None:
            raise self.failure
        return not self.closing

    def chain_keys(self, messages: List[Message]):
        """(message, chain key) pairs: messages with one chain key are
        handled one at a time, in order; those with None in no chain. The
        key is the message's key (key ordering; keyless: None) or partition,
        with its topic when the subscription has several (a tuple is hashed
        anew at each lookup, the key bytes once)."""
        if self.ordering is _types.Ordering.KEY:
            if self.one_topic:
                return [(message, message.key) for message in messages]
            return [(message, None if (key := message.key) is None else (message.topic, key))
                    for message in messages]
        if self.ordering is _types.Ordering.PARTITION:
            if self.one_topic:
                return [(message, message.partition) for message in messages]
            return [(message, (message.topic, message.partition)) for message in messages]
        return [(message, None) for message in messages]

    def admit_handlers(self, keyed):
        """Counts a handler call for each (message, key) pair; returns the
        pairs that may run now and the messages outside any chain (key
        None). The others wait behind a running call of their chain
        (``chains``: a running chain's key -> its waiting messages, None
        while none waits)."""
        self.running += len(keyed)
        chains, ready, loose = self.chains, [], []
        for item in keyed:
            key = item[1]
            if key is None:
                loose.append(item[0])
            elif key in chains:
                waiting = chains[key]
                if waiting is None:
                    waiting = chains[key] = collections.deque()
                waiting.append(item[0])
            else:
                chains[key] = None
                ready.append(item)
        return ready, loose

    def handlers_admitted(self, count: int) -> None:
        """``count`` handler calls outside any chain are about to run."""
        self.running += count

    def handlers_done(self, count: int) -> None:
        """``count`` handler calls outside any chain returned."""
        self.running -= count

    def handler_done(self, key) -> Optional[Message]:
        """A call of ``key``'s chain returned; the chain's next message, if
        one waits (the chain stays running for it)."""
        self.running -= 1
        waiting = self.chains[key]
        if waiting:
            return waiting.popleft()
        del self.chains[key]
        return None

    # -- settlements ------------------------------------------------------

    def settle(self, message: Message, kind: str, seconds, now: float) -> bool:
        """Records an ack, nack or extension (only the first ack/nack
        counts); True when the maintenance timer should wake up."""
        received, index = message._received, message._index
        flags = received.settled
        if flags[index]:
            return False
        if kind == "ack":
            # The iterator's per-message path, kept to one frame: by span when
            # the message is in a run (growing the last span when it
            # continues it), else by receipt. It is Settlements.add_spans and
            # _after_queue inlined: a change to either belongs here too.
            flags[index] = 1
            received.unsettled -= 1
            stream = received.stream
            if not received.unsettled:
                stream.unsettled.pop(received, None)
            if not stream.alive or not self.accepting:
                self.stats.dropped_settlements += 1
                return False
            pending = stream.pending
            first = not pending.count
            for run_first, count, run in received.runs:
                if run_first <= index < run_first + count:
                    spans, at = pending.spans, index - run_first
                    last = spans[-1] if spans else None
                    if last is not None and last[0] is run and last[1] + last[2] == at:
                        last[2] += 1
                    else:
                        spans.append([run, at, 1])
                    pending.span_messages += 1
                    pending.count += 1
                    if pending.since is None:
                        pending.since = now
                    break
            else:
                pending.add("ack", (message._pb.receipt,), 0.0, now)
            if pending.count >= self.ack_batch_count:
                self._flush(stream)
                return False
            return first
        if kind == "extend":
            seconds = self.ack_deadline if seconds is None else _types.seconds_of(
                seconds, "deadline")
            if received.extended is None:
                received.extended = {}
            received.extended[index] = now + seconds
        else:
            self._mark_settled(received, ((index, index + 1),))
        return self._queue(received.stream, kind, [message._pb.receipt], seconds, now)

    def acks_pending(self, stream: Stream, now: float) -> bool:
        """Message.ack flagged ACKED with no timer set for the stream's acks,
        or a full batch of them: sets the timer (True: wake the maintenance
        timer) or sends the batch."""
        if stream.acked >= self.ack_batch_count or not stream.alive or not self.accepting:
            self._flush(stream)
            return False
        if stream.acks_waiting:
            return False
        stream.acks_waiting = True
        if stream.pending.since is None:
            stream.pending.since = now
            return True
        return False

    def _collect_acks(self, stream: Stream) -> None:
        """Records the stream's ACKED flags as pending acks (or drops them
        when it is dead or closed), right before its pending settlements are
        sent or dropped: one step per stretch of a response.
        Message.ack checks ``acks_waiting`` after flagging, and this clears
        it before looking at the flags, so an ack it misses calls the shell
        again."""
        stream.acks_waiting = False
        stream.acked = 0
        done = []
        for received in stream.unsettled:
            if ACKED not in received.settled:
                continue
            pieces = received.take_acked()
            if not stream.alive or not self.accepting:
                self.stats.dropped_settlements += sum(stop - start for start, stop in pieces)
            else:
                spans, receipts = received.ack_items(pieces)
                if spans:
                    stream.pending.add_spans(spans, None)
                if receipts:
                    stream.pending.add("ack", receipts, 0.0, None)
            if received.unsettled == 0:
                done.append(received)
        for received in done:
            del stream.unsettled[received]

    def settle_batch(self, batch: MessageBatch, kind: str, seconds, now: float) -> bool:
        """Acks or nacks every message of ``batch`` not settled yet, as one
        settlement; True when the maintenance timer should wake up."""
        received, start, stop = batch._received, batch._start, batch._stop
        if kind == "ack":
            return self._ack_range(received, start, stop, now)
        pieces = unsettled_pieces(received.settled, start, stop)
        if not pieces:
            return False
        self._mark_settled(received, pieces)
        return self._queue(received.stream, kind, received.receipts(pieces), seconds, now)

    def _ack_range(self, received: Received, start: int, stop: int, now: float) -> bool:
        """Acks ``received``'s messages [start, stop) not settled yet."""
        pieces = unsettled_pieces(received.settled, start, stop)
        if not pieces:
            return False
        self._mark_settled(received, pieces)
        return self._queue_acks(received, pieces, now)

    def _queue_acks(self, received: Received, pieces, now: float) -> bool:
        """Queues acks of ``pieces`` of ``received``: spans of its receipt
        runs, receipts for messages in none."""
        spans, receipts = received.ack_items(pieces)
        stream = received.stream
        if not stream.alive or not self.accepting:
            self.stats.dropped_settlements += len(receipts) + sum(span[2] for span in spans)
            return False
        first = stream.pending.count == 0
        if spans:
            stream.pending.add_spans(spans, now)
        if receipts:
            stream.pending.add("ack", receipts, 0.0, now)
        return self._after_queue(stream, first)

    def _mark_settled(self, received: Received, pieces) -> None:
        """Marks the unsettled ``pieces`` ((start, stop) pairs) settled."""
        flags = received.settled
        for start, stop in pieces:
            flags[start:stop] = b"\x01" * (stop - start)
            received.unsettled -= stop - start
        if received.unsettled == 0:
            received.stream.unsettled.pop(received, None)

    def _queue(self, stream: Stream, kind: str, receipts, seconds, now: float) -> bool:
        if not stream.alive or not self.accepting:
            if kind != "extend":
                self.stats.dropped_settlements += len(receipts)
            return False
        first = stream.pending.count == 0
        stream.pending.add(kind, receipts, seconds, now)
        return self._after_queue(stream, first)

    def _after_queue(self, stream: Stream, first: bool) -> bool:
        """Flushes a full batch of settlements; True when the maintenance
        timer should wake up (the first pending one)."""
        if stream.pending.count >= self.ack_batch_count:
            self._flush(stream)
            return False
        return first

    def _flush(self, stream: Stream) -> None:
        self._collect_acks(stream)
        if stream.pending.count == 0:
            stream.pending.since = None  # set by acks_pending for acks sent since
            return
        requests, (acks, nacks, extensions) = stream.pending.take()
        if not stream.alive:
            self.stats.dropped_settlements += acks + nacks
            return
        for request in requests:
            stream.send(request)
        self.stats.acks_sent += acks
        self.stats.nacks_sent += nacks
        self.stats.extensions_sent += extensions

    def maintain(self, now: float) -> float:
        """Flushes settlements that waited ack_batch_delay and, every scan,
        extends the deadlines of messages still being processed. Returns when
        to run again."""
        scan_every = min(1.0, max(0.05, self.ack_deadline / 6))
        if self.next_scan is None:
            self.next_scan = now + scan_every
        wake = self.next_scan
        for stream in self.streams:
            if stream is None or stream.pending.since is None:
                continue
            due = stream.pending.since + self.ack_batch_delay
            if due <= now:
                self._flush(stream)
            else:
                wake = min(wake, due)
        if now >= self.next_scan:
            self._extend_due(now)
            self.next_scan = now + scan_every
            wake = min(wake, self.next_scan)
        return wake

    def _extend_due(self, now: float) -> None:
        threshold = self.ack_deadline / 3
        for stream in self.streams:
            if stream is None or not stream.alive:
                continue
            for received in stream.unsettled:
                if now - received.delivered >= self.max_extension:
                    continue
                due = self._due_for_extension(received, now, threshold)
                if due:
                    views = received.views()
                    stream.pending.add("extend", [views[i].receipt for i in due],
                                       self.ack_deadline, now)
            self._flush(stream)

    def _due_for_extension(self, received: Received, now: float, threshold: float):
        """Indices of ``received``'s unsettled messages whose deadline is
        within ``threshold``; moves their deadlines on by ack_deadline."""
        flags, extended = received.settled, received.extended or {}
        due = []
        if received.expires - now <= threshold:
            received.expires = now + self.ack_deadline
            due = [i for i in range(len(flags)) if not flags[i] and i not in extended]
        for index, expires in extended.items():
            if not flags[index] and expires - now <= threshold:
                extended[index] = now + self.ack_deadline
                due.append(index)
        return due

    # -- closing ----------------------------------------------------------

    def begin_close(self) -> List[Message]:
        """Stops delivering; returns the messages received but not handed
        out (the shell nacks them)."""
        self.closing = True
        received, left = self._take_hand()
        leftovers = [Message(received, i) for i in left]
        leftovers += [Message(r, i) for r in self.delivery
                      for i in range(r.next, len(r.pbs)) if r.stream.alive]
        self.delivery.clear()
        for chain in self.chains.values():
            if chain:
                leftovers.extend(chain)
                self.running -= len(chain)
                chain.clear()
        return leftovers

    def end_close(self) -> None:
        """Sends every pending settlement, then half-closes the streams;
        later settlements are dropped."""
        self._stop_streams()
        self.accepting = False

    def _stop_streams(self):
        self.closing = True
        for stream in self.streams:
            if stream is not None and stream.alive:
                self._flush(stream)
                stream.half_close()
