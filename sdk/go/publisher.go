package ferry

import (
	"context"
	"fmt"
	"sync"
	"time"

	ferryv1 "ferry.dev/ferry/sdk/go/gen/ferry/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// Publisher publishes messages to Ferry nodes. It is safe for concurrent use.
//
// Messages are batched per topic and sent round-robin to the healthy
// endpoints. A message's result is OK only after the broker acknowledged it
// (Kafka: acks=all). Failed messages are retried when the node says a retry
// may succeed, on another node when one is unreachable, until the delivery
// timeout. Messages with the same ordering key (OrderingKey, else Key) keep
// their publish order across retries and failover: a key is in at most one
// in-flight batch, and its later messages wait while a retry is pending.
//
// One goroutine forms batches; each batch call runs in a goroutine of its
// own and applies its outcome under the publisher's lock.
type Publisher struct {
	cfg       publisherConfig
	endpoints []string
	conns     []*grpc.ClientConn
	clients   []ferryv1.PublisherClient
	// Cancelled by Close: ends the calls still in flight.
	callCtx    context.Context
	cancelCall context.CancelFunc
	wake       chan struct{} // buffered: the sender goroutine has work
	senderDone chan struct{}
	calls      sync.WaitGroup
	// Buffered: a node answered after a call to it failed; the settings
	// fetcher asks again.
	reconnected chan struct{}

	mu               sync.Mutex
	settings         Settings // in effect: own, pushed or default
	core             *batcher
	health           *endpointHealth
	seqs             seqWindow // unresolved: the message has no result yet
	outstandingBytes int
	inflight         int
	flushing         int
	closed           bool
	// Closed and replaced whenever messages resolve: Publish waiting for
	// room and Flush watch it.
	resolved chan struct{}
}

// NewPublisher returns a publisher for the given nodes ("host:port" or any
// gRPC target). Connections are made lazily, so a node that is down is no
// error here; ctx is only checked. Bad options give an INVALID_ARGUMENT
// *Error naming the option.
func NewPublisher(ctx context.Context, endpoints []string, opts ...PublisherOption) (*Publisher, error) {
	if err := ctx.Err(); err != nil {
		return nil, contextError(err)
	}
	cfg := defaultPublisherConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	if err := validateEndpoints(endpoints); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	secure, err := cfg.security.dialOptions()
	if err != nil {
		return nil, err
	}
	conns, err := dial(endpoints, cfg.backoff, append(secure, cfg.dialOptions...))
	if err != nil {
		return nil, err
	}
	p := &Publisher{
		cfg:         cfg,
		endpoints:   append([]string(nil), endpoints...),
		conns:       conns,
		wake:        make(chan struct{}, 1),
		senderDone:  make(chan struct{}),
		core:        newBatcher(cfg.maxBatchMessages, cfg.maxBatchBytes, cfg.linger),
		health:      newEndpointHealth(len(endpoints), cfg.backoff),
		resolved:    make(chan struct{}),
		reconnected: make(chan struct{}, 1),
	}
	for _, c := range conns {
		p.clients = append(p.clients, ferryv1.NewPublisherClient(c))
	}
	p.settings = effectiveSettings(cfg, nil)
	p.callCtx, p.cancelCall = context.WithCancel(context.Background())
	go p.run()
	if cfg.pushedSettings {
		p.calls.Add(1)
		go func() {
			defer p.calls.Done()
			fetchSettings(p.callCtx, conns, p.reconnected, p.applySettings)
		}()
	}
	return p, nil
}

// Settings returns the pushable settings in effect: the application's own,
// else the ones pushed by the nodes (see WithPushedSettings), else defaults.
func (p *Publisher) Settings() Settings {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.settings
}

func (p *Publisher) applySettings(pushed *ferryv1.ClientSettings) {
	s := effectiveSettings(p.cfg, pushed)
	p.mu.Lock()
	p.settings = s
	p.core.maxMessages, p.core.maxBytes, p.core.linger = s.MaxBatchMessages, s.MaxBatchBytes, s.Linger
	p.mu.Unlock()
	p.signal()
}

// Publish queues m (m.Topic is required) and returns at once, except at the
// outstanding-bytes cap with WithBlockWhenFull, where it waits for room as
// long as ctx allows. Failures, including bad messages, are reported through
// the result. The publisher keeps no reference to m.
func (p *Publisher) Publish(ctx context.Context, m *Message) *PublishResult {
	r := newPublishResult()
	proto, size := toProto(m)
	fail := func(err error) *PublishResult {
		r.complete(Written{ID: proto.Id}, err)
		return r
	}
	if size > p.cfg.maxOutstandingBytes {
		return fail(&Error{Code: codes.InvalidArgument, Message: fmt.Sprintf(
			"message of %d bytes exceeds WithMaxOutstandingBytes (%d)", size, p.cfg.maxOutstandingBytes)})
	}
	p.mu.Lock()
	for !p.closed && p.outstandingBytes+size > p.cfg.maxOutstandingBytes {
		if !p.cfg.blockWhenFull {
			p.mu.Unlock()
			return fail(&Error{Code: codes.ResourceExhausted, Retryable: true, Message: fmt.Sprintf(
				"WithMaxOutstandingBytes (%d) reached", p.cfg.maxOutstandingBytes)})
		}
		resolved := p.resolved
		p.mu.Unlock()
		select {
		case <-resolved:
		case <-ctx.Done():
			return fail(contextError(ctx.Err()))
		}
		p.mu.Lock()
	}
	if p.closed {
		p.mu.Unlock()
		return fail(closedError("publisher", nil))
	}
	now := time.Now()
	p.core.add(&pending{
		seq: p.seqs.add(), topic: m.Topic, orderKey: orderKey(m), proto: proto, size: size,
		deadline: now.Add(p.settings.DeliveryTimeout), avoid: -1, result: r,
	}, now)
	p.outstandingBytes += size
	p.mu.Unlock()
	p.signal()
	return r
}

func orderKey(m *Message) string {
	if len(m.OrderingKey) > 0 {
		return string(m.OrderingKey)
	}
	return string(m.Key)
}

// Flush sends queued messages without waiting for linger and waits until
// every message published before the call has its result, or ctx ends
// (nothing is cancelled then).
func (p *Publisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	upto := p.seqs.last()
	p.flushing++
	defer func() {
		p.mu.Lock()
		p.flushing--
		p.mu.Unlock()
	}()
	for p.seqs.lowestUnresolved() <= upto {
		resolved := p.resolved
		p.mu.Unlock()
		p.signal()
		select {
		case <-resolved:
		case <-ctx.Done():
			return contextError(ctx.Err())
		}
		p.mu.Lock()
	}
	p.mu.Unlock()
	return nil
}

// Close flushes (up to WithPublisherCloseTimeout), then fails every message
// still without a result with an UNAVAILABLE error matching ErrClosed (a
// message in flight may have been stored all the same), and closes the
// connections. It returns the flush's error, if any. Later calls do nothing.
func (p *Publisher) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.closeTimeout)
	flushErr := p.Flush(ctx)
	cancel()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	for _, m := range p.core.drain() {
		p.resolveLocked(m, Written{}, closedError("publisher", m.lastErr))
	}
	p.mu.Unlock()
	p.cancelCall()
	p.signal()
	<-p.senderDone
	p.calls.Wait()
	closeAll(p.conns)
	return flushErr
}

func (p *Publisher) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run is the sender goroutine: it forms batches and starts their calls.
func (p *Publisher) run() {
	defer close(p.senderDone)
	timer := time.NewTimer(time.Hour)
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		now := time.Now()
		p.core.releaseDue(now)
		var calls []*batchCall
		for p.inflight < p.cfg.maxInflightBatches {
			due := p.core.due(now, p.flushing > 0)
			if len(due) == 0 {
				break
			}
			for _, t := range due {
				if p.inflight >= p.cfg.maxInflightBatches {
					break
				}
				b, expired := p.core.take(t, now)
				for _, m := range expired {
					p.resolveLocked(m, Written{}, expiredError(m, p.settings.DeliveryTimeout))
				}
				if b != nil {
					p.inflight++
					calls = append(calls, &batchCall{batch: b, endpoint: p.health.pick(now, avoided(b)),
						timeout: p.settings.RequestTimeout})
				}
			}
		}
		wakeAt := p.core.nextWakeup(now)
		if p.inflight >= p.cfg.maxInflightBatches {
			wakeAt = time.Time{} // a finishing call wakes us
		}
		p.mu.Unlock()

		for _, c := range calls {
			p.calls.Add(1)
			go p.send(c)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if !wakeAt.IsZero() {
			timer.Reset(time.Until(wakeAt))
			select {
			case <-p.wake:
			case <-timer.C:
			}
		} else {
			<-p.wake
		}
	}
}

func avoided(b *batch) int {
	for _, m := range b.messages {
		if m.avoid >= 0 {
			return m.avoid
		}
	}
	return -1
}

func expiredError(m *pending, timeout time.Duration) *Error {
	if m.lastErr != nil {
		return m.lastErr
	}
	return &Error{Code: codes.DeadlineExceeded, Retryable: true, Message: fmt.Sprintf(
		"not sent within the delivery timeout (%s): queued behind earlier messages of its key", timeout)}
}

type batchCall struct {
	batch    *batch
	endpoint int
	timeout  time.Duration
}

func (p *Publisher) send(c *batchCall) {
	defer p.calls.Done()
	// compact_results: a fully written batch comes back as packed arrays
	// instead of a PublishResult per message; nodes that predate the flag
	// ignore it and answer per message.
	request := &ferryv1.PublishRequest{Topic: c.batch.topic, CompactResults: true}
	for _, m := range c.batch.messages {
		request.Messages = append(request.Messages, m.proto)
	}
	ctx, cancel := context.WithTimeout(p.callCtx, c.timeout)
	response, err := p.clients[c.endpoint].Publish(ctx, request)
	cancel()
	p.finish(c, response, err)
	p.signal()
}

// finish applies a call's outcome: results, retries, endpoint health.
func (p *Publisher) finish(c *batchCall, response *ferryv1.PublishResponse, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight--
	now := time.Now()
	endpoint := p.endpoints[c.endpoint]
	messages := c.batch.messages
	var retries []*pending
	retry := func(m *pending, e *Error) {
		if r := p.retryOrResolve(m, e, now); r != nil {
			retries = append(retries, r)
		}
	}
	compact, resultErr := results(response, len(messages))
	switch {
	case err == nil && resultErr == "":
		if p.health.succeeded(c.endpoint) {
			select { // the settings fetcher asks again; one pending signal is enough
			case p.reconnected <- struct{}{}:
			default:
			}
		}
		for i, m := range messages {
			m.avoid = -1
			if compact != nil {
				w := compactWritten(compact, i)
				w.ID = m.proto.Id
				p.resolveLocked(m, w, nil)
				continue
			}
			result := response.Results[i]
			if st := result.Status; st != nil && st.Code != 0 {
				retry(m, &Error{Code: codes.Code(st.Code), Message: st.Message,
					Retryable: retryable(codes.Code(st.Code), &st.Retryable), Endpoint: endpoint})
				continue
			}
			w := Written{ID: m.proto.Id, Cluster: result.Cluster, Partition: result.Partition, Offset: result.Offset}
			if result.Timestamp != nil {
				w.Timestamp = result.Timestamp.AsTime()
			}
			p.resolveLocked(m, w, nil)
		}
	case err == nil:
		// A node that breaks the protocol: the messages' fate is unknown.
		e := &Error{Code: codes.Internal, Endpoint: endpoint, Message: resultErr}
		for _, m := range messages {
			retry(m, e)
		}
	case p.callCtx.Err() != nil: // cancelled by Close
		for _, m := range messages {
			p.resolveLocked(m, Written{}, closedError("publisher", m.lastErr))
		}
		messages = nil
	default:
		e := callError(err, endpoint)
		avoid := -1
		if nodeFailure(e.Code) {
			p.health.failed(c.endpoint, now)
			avoid = c.endpoint
		}
		for _, m := range messages {
			m.avoid = avoid
			retry(m, e)
		}
	}
	p.core.complete(c.batch, retries)
}

// retryOrResolve returns m for a retry after the retryable failure e, or
// resolves it with e and returns nil.
func (p *Publisher) retryOrResolve(m *pending, e *Error, now time.Time) *pending {
	if !e.Retryable {
		p.resolveLocked(m, Written{}, e)
		return nil
	}
	m.lastErr = e
	if p.closed {
		p.resolveLocked(m, Written{}, closedError("publisher", e))
		return nil
	}
	m.attempts++
	at := now.Add(p.cfg.backoff.delay(m.attempts))
	if !at.Before(m.deadline) {
		p.resolveLocked(m, Written{}, e)
		return nil
	}
	m.notBefore = at
	return m
}

func (p *Publisher) resolveLocked(m *pending, w Written, err error) {
	if err != nil {
		w.ID = m.proto.Id
	}
	m.result.complete(w, err)
	p.outstandingBytes -= m.size
	p.seqs.resolve(m.seq)
	close(p.resolved)
	p.resolved = make(chan struct{})
}
