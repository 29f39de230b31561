package ferry

import (
	"sync"
	"sync/atomic"
	"time"

	ferryv1 "ferry.dev/ferry/sdk/go/gen/ferry/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

type settleKind int

const (
	settleAck settleKind = iota
	settleNack
)

// delivery ties a received message to the stream that delivered it: its
// receipt is valid there only.
type delivery struct {
	stream  *stream
	receipt []byte
	place   runPlace // acks go as spans of the run when it has one
	settled int32    // atomic: only the first Ack or Nack counts
}

func (d *delivery) settle(kind settleKind, delay time.Duration) {
	if atomic.CompareAndSwapInt32(&d.settled, 0, 1) {
		d.stream.settle(d, kind, delay)
	}
}

type lease struct {
	delivered time.Time
	expires   time.Time // when the node redelivers, as far as we know
}

// stream holds one Subscribe stream's outgoing side: the acks and nacks of
// the messages it delivered, batched, and the deadline extensions of those
// not settled yet. Handlers call settle; the stream's writer goroutine
// (writeLoop) is the only one that sends, as gRPC requires.
type stream struct {
	cfg   *subscriberConfig
	stats *counters
	wake  chan struct{} // buffered: something is due earlier than planned

	mu        sync.Mutex
	accepting bool // false once broken or closing: settlements are dropped
	closing   bool // send what is pending, then half-close
	acks      pendingAcks
	runSeq    uint64 // numbers the runs of delivered batches
	nacks     map[time.Duration][][]byte
	pending   int
	since     time.Time // when the oldest pending settlement came
	leases    map[string]*lease
}

func newStream(cfg *subscriberConfig, stats *counters) *stream {
	return &stream{cfg: cfg, stats: stats, wake: make(chan struct{}, 1), accepting: true,
		nacks: map[time.Duration][][]byte{}, leases: map[string]*lease{}}
}

func (s *stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// delivered starts tracking the batch's receipts for extension and returns
// each message's delivery; nil when the stream no longer accepts
// settlements (the messages are not handed out then: the node redelivers
// them once the stream ends).
func (s *stream) delivered(batch *ferryv1.MessageBatch, now time.Time) []*delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.accepting {
		return nil
	}
	places := placeInRuns(len(batch.Messages), batch.Runs, &s.runSeq)
	deliveries := make([]*delivery, len(batch.Messages))
	for i, m := range batch.Messages {
		s.leases[string(m.Receipt)] = &lease{delivered: now, expires: now.Add(s.cfg.ackDeadline)}
		deliveries[i] = &delivery{stream: s, receipt: m.Receipt, place: places[i]}
	}
	s.signal() // their extensions may be due before anything planned
	return deliveries
}

func (s *stream) settle(d *delivery, kind settleKind, delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.accepting {
		atomic.AddInt64(&s.stats.droppedSettlements, 1)
		return
	}
	delete(s.leases, string(d.receipt))
	if kind == settleAck {
		s.acks.add(d.place, d.receipt)
	} else {
		s.nacks[delay] = append(s.nacks[delay], d.receipt)
	}
	s.pending++
	if s.pending == 1 {
		s.since = time.Now()
	}
	if s.pending == 1 || s.pending >= s.cfg.ackBatchCount {
		s.signal()
	}
}

// forget drops a receipt the node refused: extending it is pointless.
func (s *stream) forget(receipt []byte) {
	s.mu.Lock()
	delete(s.leases, string(receipt))
	s.mu.Unlock()
}

// close asks the writer to send what is pending and half-close.
func (s *stream) close() {
	s.mu.Lock()
	s.accepting = false
	s.closing = true
	s.leases = map[string]*lease{}
	s.mu.Unlock()
	s.signal()
}

// broken: nothing more is sent; pending settlements are counted as dropped.
func (s *stream) broken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accepting = false
	atomic.AddInt64(&s.stats.droppedSettlements, int64(s.pending))
	s.acks, s.nacks, s.pending = pendingAcks{}, map[time.Duration][][]byte{}, 0
	s.leases = map[string]*lease{}
}

// due returns the requests to send now, when to look again (zero: only
// when woken) and whether to half-close after sending.
func (s *stream) due(now time.Time) (requests []*ferryv1.SubscribeRequest, next time.Time, halfClose bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending > 0 {
		at := s.since.Add(s.cfg.ackBatchDelay)
		if s.closing || s.pending >= s.cfg.ackBatchCount || !now.Before(at) {
			requests = s.takeLocked()
		} else {
			next = at
		}
	}
	if s.closing {
		return requests, time.Time{}, true
	}
	// Extend when 2/3 of the deadline passed: a third is left for the
	// extension to reach the node.
	margin := s.cfg.ackDeadline / 3
	var extend [][]byte
	for receipt, l := range s.leases {
		if now.Sub(l.delivered) >= s.cfg.maxExtension {
			delete(s.leases, receipt) // given up: the node will redeliver it
			continue
		}
		if !now.Before(l.expires.Add(-margin)) {
			extend = append(extend, []byte(receipt))
			l.expires = now.Add(s.cfg.ackDeadline)
		}
		if at := l.expires.Add(-margin); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if len(extend) > 0 {
		requests = append(requests, &ferryv1.SubscribeRequest{Request: &ferryv1.SubscribeRequest_Extend{
			Extend: &ferryv1.Extensions{Receipts: extend, Deadline: durationpb.New(s.cfg.ackDeadline)}}})
	}
	return requests, next, false
}

func (s *stream) takeLocked() []*ferryv1.SubscribeRequest {
	var requests []*ferryv1.SubscribeRequest
	if acks := s.acks.take(); acks != nil {
		requests = append(requests, &ferryv1.SubscribeRequest{Request: &ferryv1.SubscribeRequest_Ack{Ack: acks}})
	}
	for delay, receipts := range s.nacks {
		requests = append(requests, &ferryv1.SubscribeRequest{Request: &ferryv1.SubscribeRequest_Nack{
			Nack: &ferryv1.Nacks{Receipts: receipts, Delay: durationpb.New(delay)}}})
	}
	s.nacks, s.pending = map[time.Duration][][]byte{}, 0
	return requests
}

// writeLoop sends due requests until the stream half-closes or send fails.
// stop ends it at once (the stream is being torn down).
func (s *stream) writeLoop(send func(*ferryv1.SubscribeRequest) error, closeSend func() error, stop <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		requests, next, halfClose := s.due(time.Now())
		for _, r := range requests {
			if err := send(r); err != nil {
				atomic.AddInt64(&s.stats.droppedSettlements, int64(ackedMessages(r.GetAck())+len(r.GetNack().GetReceipts())))
				s.broken()
				return
			}
			atomic.AddInt64(&s.stats.acksSent, int64(ackedMessages(r.GetAck())))
			atomic.AddInt64(&s.stats.nacksSent, int64(len(r.GetNack().GetReceipts())))
			atomic.AddInt64(&s.stats.extensionsSent, int64(len(r.GetExtend().GetReceipts())))
		}
		if halfClose {
			closeSend()
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		var tick <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			tick = timer.C
		}
		select {
		case <-s.wake:
		case <-tick:
		case <-stop:
			return
		}
	}
}
