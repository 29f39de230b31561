package ferry

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	ferryv1 "ferry.dev/ferry/sdk/go/gen/ferry/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// serve starts an in-process gRPC server on a free port of 127.0.0.1 and
// returns its address; it stops when the test ends.
func serve(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	register(server)
	go server.Serve(listener)
	t.Cleanup(server.Stop)
	return listener.Addr().String()
}

// deadEndpoint is an address nobody listens on.
func deadEndpoint(t *testing.T) string {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := listener.Addr().String()
	listener.Close()
	return address
}

// fakePublisher answers Publish with `answer` (default: every message OK)
// and records what it stored per key, and whether a key was ever in two
// calls at once. Like ferryd, it answers a fully written batch in the
// compact form when the request asks for it, unless oldNode (a node that
// predates compact_results).
type fakePublisher struct {
	ferryv1.UnimplementedPublisherServer
	answer  func(*ferryv1.PublishRequest) (*ferryv1.PublishResponse, error)
	delay   time.Duration // per call, so calls overlap
	oldNode bool

	mu           sync.Mutex
	calls        []*ferryv1.PublishRequest
	stored       map[string][]string // key -> values, in storage order
	keysInFlight map[string]bool
	overlap      bool
	offset       int64
}

func newFakePublisher() *fakePublisher {
	return &fakePublisher{stored: map[string][]string{}, keysInFlight: map[string]bool{}}
}

func (f *fakePublisher) Publish(ctx context.Context, req *ferryv1.PublishRequest) (*ferryv1.PublishResponse, error) {
	keys := map[string]bool{}
	f.mu.Lock()
	f.calls = append(f.calls, req)
	for _, m := range req.Messages {
		if k := string(m.Key); k != "" && !keys[k] {
			keys[k] = true
			f.overlap = f.overlap || f.keysInFlight[k]
			f.keysInFlight[k] = true
		}
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		for k := range keys {
			delete(f.keysInFlight, k)
		}
		f.mu.Unlock()
	}()
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	response := &ferryv1.PublishResponse{}
	if f.answer != nil {
		var err error
		if response, err = f.answer(req); err != nil {
			return nil, err
		}
		if response.Compact != nil {
			return response, nil // as given: nothing to fill in
		}
	} else {
		for range req.Messages {
			response.Results = append(response.Results, &ferryv1.PublishResult{Status: &ferryv1.Status{}})
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	written := 0
	for i, m := range req.Messages {
		r := response.Results[i]
		if r.Status.GetCode() == 0 {
			f.offset++
			written++
			r.Cluster, r.Offset, r.Id = "fake", f.offset, m.Id
			r.Partition, r.Timestamp = int32(len(m.Key)%3), timestamppb.New(time.UnixMilli(1_700_000_000_000+f.offset))
			f.stored[string(m.Key)] = append(f.stored[string(m.Key)], string(m.Value))
		}
	}
	if req.CompactResults && !f.oldNode && written == len(req.Messages) && written > 0 {
		return compactForm(response), nil
	}
	return response, nil
}

// compactForm is what ferryd sends for a fully written batch of `full`.
func compactForm(full *ferryv1.PublishResponse) *ferryv1.PublishResponse {
	c := &ferryv1.CompactPublishResults{Cluster: full.Results[0].Cluster}
	for _, r := range full.Results {
		c.Partitions = append(c.Partitions, r.Partition)
		c.Offsets = append(c.Offsets, r.Offset)
		c.TimestampsMs = append(c.TimestampsMs, r.Timestamp.AsTime().UnixMilli())
	}
	return &ferryv1.PublishResponse{RequestId: full.RequestId, Compact: c}
}

func (f *fakePublisher) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func startFakePublisher(t *testing.T, f *fakePublisher) string {
	return serve(t, func(s *grpc.Server) { ferryv1.RegisterPublisherServer(s, f) })
}

// fakeSubscriber runs `script` for each Subscribe stream; attempt counts
// streams from 1.
type fakeSubscriber struct {
	ferryv1.UnimplementedSubscriberServer
	script func(stream ferryv1.Subscriber_SubscribeServer, attempt int) error

	mu       sync.Mutex
	attempts int
}

func (f *fakeSubscriber) Subscribe(stream ferryv1.Subscriber_SubscribeServer) error {
	if _, err := stream.Recv(); err != nil { // the open
		return err
	}
	f.mu.Lock()
	f.attempts++
	attempt := f.attempts
	f.mu.Unlock()
	return f.script(stream, attempt)
}

func startFakeSubscriber(t *testing.T, script func(ferryv1.Subscriber_SubscribeServer, int) error) string {
	return serve(t, func(s *grpc.Server) {
		ferryv1.RegisterSubscriberServer(s, &fakeSubscriber{script: script})
	})
}

func opened() *ferryv1.SubscribeResponse {
	return &ferryv1.SubscribeResponse{Response: &ferryv1.SubscribeResponse_Opened{Opened: &ferryv1.Opened{NodeId: "fake"}}}
}

// batchOf delivers messages "v-<i>" with receipts "r-<i>" and the given keys.
func batchOf(keys ...string) *ferryv1.SubscribeResponse {
	batch := &ferryv1.MessageBatch{}
	for i, k := range keys {
		batch.Messages = append(batch.Messages, &ferryv1.ReceivedMessage{
			Receipt: []byte(fmt.Sprintf("r-%d", i)), Topic: "t", Key: []byte(k),
			Value: []byte(fmt.Sprintf("v-%d", i)), Offset: int64(i), DeliveryAttempt: 1,
			Headers: []*ferryv1.Header{{Key: "n", Value: []byte("1")}, {Key: "n", Value: []byte("2")}},
			Id:      fmt.Sprintf("id-%d", i)})
	}
	return &ferryv1.SubscribeResponse{Response: &ferryv1.SubscribeResponse_Messages{Messages: batch}}
}

// readUntilHalfClose returns every request the client sends until it
// half-closes the stream.
func readUntilHalfClose(stream ferryv1.Subscriber_SubscribeServer) []*ferryv1.SubscribeRequest {
	var requests []*ferryv1.SubscribeRequest
	for {
		r, err := stream.Recv()
		if err != nil {
			return requests
		}
		requests = append(requests, r)
	}
}
