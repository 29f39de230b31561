package ferry

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	ferryv1 "ferry.dev/ferry/sdk/go/gen/ferry/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// How long an ending Receive waits for nodes to end half-closed streams
// before cancelling them (a node that is gone never answers).
const streamCloseGrace = 5 * time.Second

// Subscriber consumes a consumer group's messages from Ferry nodes, at least
// once. Receive opens one stream to every endpoint (each node serves some
// partitions of the group) and reopens broken ones with backoff. A message
// is redelivered after Nack, when its ack deadline passes (it is extended
// automatically while the handler runs, up to WithMaxExtension), or when the
// stream that delivered it breaks.
type Subscriber struct {
	cfg       subscriberConfig
	endpoints []string
	conns     []*grpc.ClientConn
	clients   []ferryv1.SubscriberClient
	open      *ferryv1.SubscribeRequest
	stats     counters

	mu        sync.Mutex
	receiving bool
	closed    bool
}

// Stats are counters since the subscriber was created.
type Stats struct {
	Received           int64
	AcksSent           int64
	NacksSent          int64
	ExtensionsSent     int64
	DroppedSettlements int64 // acks and nacks lost with their broken stream
	ReceiptFailures    int64 // settlements the node refused (a refused span: each of its messages)
	Reconnects         int64
	OpenStreams        int64
}

type counters struct {
	received, acksSent, nacksSent, extensionsSent, droppedSettlements,
	receiptFailures, reconnects, openStreams int64
}

// NewSubscriber validates the options and prepares connections to the nodes
// (made lazily); ctx is only checked. Bad options give an INVALID_ARGUMENT
// *Error naming the option.
func NewSubscriber(ctx context.Context, endpoints []string, group string, topics []string,
	opts ...SubscriberOption) (*Subscriber, error) {
	if err := ctx.Err(); err != nil {
		return nil, contextError(err)
	}
	cfg := defaultSubscriberConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	if err := validateEndpoints(endpoints); err != nil {
		return nil, err
	}
	if err := cfg.validate(group, topics); err != nil {
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
	s := &Subscriber{cfg: cfg, endpoints: append([]string(nil), endpoints...), conns: conns,
		open: cfg.openRequest(group, append([]string(nil), topics...))}
	for _, c := range conns {
		s.clients = append(s.clients, ferryv1.NewSubscriberClient(c))
	}
	return s, nil
}

// Receive calls handler for each message until ctx ends (it then returns
// nil) or a fatal error stops it: INVALID_ARGUMENT (bad subscription),
// NOT_FOUND (unknown topic), UNIMPLEMENTED (e.g. a filter the nodes do not
// support), UNAUTHENTICATED or PERMISSION_DENIED, returned as an *Error. Other stream failures are reconnected
// and reported to WithErrorHandler.
//
// handler gets ctx and must settle each message with Ack or Nack; it runs
// on up to WithConcurrency goroutines, serially per key in OrderingKey mode
// and per partition in OrderingPartition mode. When ending, Receive stops
// handing out messages (those received but not handed out are nacked),
// waits up to WithSubscriberCloseTimeout for running handlers, sends the
// pending acks and half-closes the streams. One Receive at a time.
func (s *Subscriber) Receive(ctx context.Context, handler func(context.Context, *Message)) error {
	s.mu.Lock()
	switch {
	case handler == nil:
		s.mu.Unlock()
		return invalidOption("Receive: handler must not be nil")
	case s.closed:
		s.mu.Unlock()
		return closedError("subscriber", nil)
	case s.receiving:
		s.mu.Unlock()
		return &Error{Code: codes.FailedPrecondition, Message: "Receive is already running"}
	}
	s.receiving = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.receiving = false
		s.mu.Unlock()
	}()

	handlerCtx, cancelHandlers := context.WithCancel(ctx)
	defer cancelHandlers()
	r := &receiveRun{sub: s, dispatch: newDispatcher(handlerCtx, handler, s.cfg.ordering, s.cfg.concurrency),
		stopping: make(chan struct{}), closeStreams: make(chan struct{}), fatal: make(chan *Error, 1)}
	var streams sync.WaitGroup
	for i := range s.endpoints {
		streams.Add(1)
		go func(i int) {
			defer streams.Done()
			r.serve(i)
		}(i)
	}
	var err error
	select {
	case <-ctx.Done():
	case fatal := <-r.fatal:
		err = fatal
	}
	close(r.stopping)
	cancelHandlers()
	r.dispatch.stop(s.cfg.closeTimeout)
	close(r.closeStreams)
	streams.Wait()
	return err
}

// Stats returns a snapshot of the counters.
func (s *Subscriber) Stats() Stats {
	c := &s.stats
	return Stats{Received: atomic.LoadInt64(&c.received), AcksSent: atomic.LoadInt64(&c.acksSent),
		NacksSent: atomic.LoadInt64(&c.nacksSent), ExtensionsSent: atomic.LoadInt64(&c.extensionsSent),
		DroppedSettlements: atomic.LoadInt64(&c.droppedSettlements),
		ReceiptFailures:    atomic.LoadInt64(&c.receiptFailures),
		Reconnects:         atomic.LoadInt64(&c.reconnects), OpenStreams: atomic.LoadInt64(&c.openStreams)}
}

// Close closes the connections; call it after Receive returned. Later calls
// do nothing.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		closeAll(s.conns)
	}
	return nil
}

// receiveRun is one Receive call's state.
type receiveRun struct {
	sub      *Subscriber
	dispatch *dispatcher
	// stopping: no new streams, no reconnects. closeStreams: handlers are
	// done, so streams send their last acks and half-close.
	stopping, closeStreams chan struct{}
	fatal                  chan *Error
}

// A subscription every node would refuse the same way (credentials and ACLs
// are the tier's, not one node's).
func fatal(code codes.Code) bool {
	switch code {
	case codes.InvalidArgument, codes.NotFound, codes.Unimplemented, codes.Unauthenticated,
		codes.PermissionDenied:
		return true
	}
	return false
}

// serve keeps one stream to endpoint i open until Receive ends.
func (r *receiveRun) serve(i int) {
	s := r.sub
	failures := 0
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			atomic.AddInt64(&s.stats.reconnects, 1)
		}
		opened, err := r.runStream(i)
		select {
		case <-r.stopping:
			return
		default:
		}
		if err != nil && fatal(err.Code) {
			select {
			case r.fatal <- err:
			default:
			}
			return
		}
		if err != nil && s.cfg.onError != nil {
			s.cfg.onError(err)
		}
		// A stream that was serving restarts the backoff; one that never
		// opened (node down, overloaded) makes it grow.
		if opened {
			failures = 1
		} else {
			failures++
		}
		select {
		case <-time.After(s.cfg.backoff.delay(failures)):
		case <-r.stopping:
			return
		}
	}
}

// runStream runs one stream until it ends; returns whether the node opened
// it, and why it ended (nil: the node ended it after our half-close).
func (r *receiveRun) runStream(i int) (opened bool, _ *Error) {
	s := r.sub
	endpoint := s.endpoints[i]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client, err := s.clients[i].Subscribe(ctx)
	if err == nil {
		err = client.Send(s.open)
	}
	if err != nil {
		return false, callError(err, endpoint)
	}
	st := newStream(&s.cfg, &s.stats)
	writerDone := make(chan struct{})
	stopWriter := make(chan struct{})
	go func() {
		defer close(writerDone)
		st.writeLoop(client.Send, client.CloseSend, stopWriter)
	}()
	readerDone := make(chan struct{})
	defer func() {
		close(readerDone)
		st.broken()
		close(stopWriter)
		<-writerDone
		if opened {
			atomic.AddInt64(&s.stats.openStreams, -1)
		}
	}()
	go func() {
		select {
		case <-r.closeStreams:
			st.close()
			select {
			case <-time.After(streamCloseGrace):
				cancel()
			case <-readerDone:
			}
		case <-readerDone:
		}
	}()
	for {
		response, err := client.Recv()
		if err != nil {
			select {
			case <-r.closeStreams:
				return opened, nil
			default:
			}
			if errors.Is(err, io.EOF) {
				return opened, &Error{Code: codes.Unavailable, Message: "stream ended by the node",
					Retryable: true, Endpoint: endpoint}
			}
			return opened, callError(err, endpoint)
		}
		switch body := response.Response.(type) {
		case *ferryv1.SubscribeResponse_Opened:
			if !opened {
				opened = true
				atomic.AddInt64(&s.stats.openStreams, 1)
			}
		case *ferryv1.SubscribeResponse_Messages:
			r.deliver(st, body.Messages)
		case *ferryv1.SubscribeResponse_ReceiptResults:
			r.receiptFailures(st, body.ReceiptResults.Results, endpoint)
		}
	}
}

func (r *receiveRun) deliver(st *stream, batch *ferryv1.MessageBatch) {
	atomic.AddInt64(&r.sub.stats.received, int64(len(batch.Messages)))
	deliveries := st.delivered(batch, time.Now())
	if deliveries == nil {
		return
	}
	for i, in := range batch.Messages {
		m := fromProto(in)
		m.delivery = deliveries[i]
		r.dispatch.submit(m)
	}
}

// receiptFailures reports settlements the node refused: one error per
// result, counted per message (a span the node could not read as a whole
// refused all of its messages; one it could read fails message by message,
// by receipt).
func (r *receiveRun) receiptFailures(st *stream, results []*ferryv1.ReceiptResult, endpoint string) {
	for _, result := range results {
		if result.Status.GetCode() == 0 {
			continue
		}
		refused := int64(1)
		if span := result.GetSpan(); span != nil && len(result.Receipt) == 0 {
			refused = int64(span.Count)
		}
		st.forget(result.Receipt)
		atomic.AddInt64(&r.sub.stats.receiptFailures, refused)
		if r.sub.cfg.onError != nil {
			r.sub.cfg.onError(&Error{Code: codes.Code(result.Status.Code), Message: result.Status.Message,
				Retryable: result.Status.Retryable, Endpoint: endpoint})
		}
	}
}
