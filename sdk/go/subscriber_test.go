package ferry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	ferryv1 "ferry.dev/ferry/sdk/go/gen/ferry/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func newTestSubscriber(t *testing.T, endpoint string, opts ...SubscriberOption) *Subscriber {
	t.Helper()
	s, err := NewSubscriber(context.Background(), []string{endpoint}, "g", []string{"t"}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// receiveUntil runs Receive until done is closed (then cancels it) and
// returns Receive's error.
func receiveUntil(t *testing.T, s *Subscriber, done <-chan struct{}, handler func(context.Context, *Message)) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("timed out")
		}
		cancel()
	}()
	return s.Receive(ctx, handler)
}

func TestAcksAreBatchedAndSentWhenReceiveEnds(t *testing.T) {
	requests := make(chan []*ferryv1.SubscribeRequest, 1)
	endpoint := startFakeSubscriber(t, func(stream ferryv1.Subscriber_SubscribeServer, _ int) error {
		stream.Send(opened())
		stream.Send(batchOf("a", "b", "c", "d", "e"))
		requests <- readUntilHalfClose(stream)
		return nil
	})
	s := newTestSubscriber(t, endpoint, WithAckBatch(100, time.Hour))
	done := make(chan struct{})
	var count int
	var mu sync.Mutex
	err := receiveUntil(t, s, done, func(_ context.Context, m *Message) {
		m.Ack()
		m.Ack() // only the first counts
		mu.Lock()
		defer mu.Unlock()
		if count++; count == 5 {
			close(done)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	got := <-requests
	if len(got) != 1 || len(got[0].GetAck().GetReceipts()) != 5 {
		t.Fatalf("want one ack request with 5 receipts, got %v", got)
	}
	if stats := s.Stats(); stats.AcksSent != 5 || stats.Received != 5 {
		t.Errorf("stats %+v", stats)
	}
}

func TestNackCarriesItsDelay(t *testing.T) {
	requests := make(chan []*ferryv1.SubscribeRequest, 1)
	endpoint := startFakeSubscriber(t, func(stream ferryv1.Subscriber_SubscribeServer, _ int) error {
		stream.Send(opened())
		stream.Send(batchOf(""))
		requests <- readUntilHalfClose(stream)
		return nil
	})
	s := newTestSubscriber(t, endpoint)
	done := make(chan struct{})
	receiveUntil(t, s, done, func(_ context.Context, m *Message) {
		m.Nack(2 * time.Second)
		close(done)
	})
	got := <-requests
	if len(got) != 1 || got[0].GetNack().GetDelay().AsDuration() != 2*time.Second ||
		string(got[0].GetNack().GetReceipts()[0]) != "r-0" {
		t.Fatalf("got %v", got)
	}
}

func TestDeadlineIsExtendedWhileTheHandlerRuns(t *testing.T) {
	requests := make(chan []*ferryv1.SubscribeRequest, 1)
	endpoint := startFakeSubscriber(t, func(stream ferryv1.Subscriber_SubscribeServer, _ int) error {
		stream.Send(opened())
		stream.Send(batchOf(""))
		requests <- readUntilHalfClose(stream)
		return nil
	})
	s := newTestSubscriber(t, endpoint, WithAckDeadline(time.Second))
	done := make(chan struct{})
	receiveUntil(t, s, done, func(_ context.Context, m *Message) {
		time.Sleep(1500 * time.Millisecond)
		m.Ack()
		close(done)
	})
	got := <-requests
	if len(got) < 2 || got[0].GetExtend().GetDeadline().AsDuration() != time.Second ||
		len(got[len(got)-1].GetAck().GetReceipts()) != 1 {
		t.Fatalf("want extensions then the ack, got %v", got)
	}
}

func TestBrokenStreamIsReopenedWithBackoff(t *testing.T) {
	endpoint := startFakeSubscriber(t, func(stream ferryv1.Subscriber_SubscribeServer, attempt int) error {
		if attempt < 3 {
			return status.Error(codes.Unavailable, "node restarting")
		}
		stream.Send(opened())
		stream.Send(batchOf(""))
		readUntilHalfClose(stream)
		return nil
	})
	var mu sync.Mutex
	var reported []error
	s := newTestSubscriber(t, endpoint, WithReconnectBackoff(10*time.Millisecond, 20*time.Millisecond),
		WithErrorHandler(func(err error) {
			mu.Lock()
			reported = append(reported, err)
			mu.Unlock()
		}))
	done := make(chan struct{})
	if err := receiveUntil(t, s, done, func(_ context.Context, m *Message) { m.Ack(); close(done) }); err != nil {
		t.Fatal(err)
	}
	if stats := s.Stats(); stats.Reconnects != 2 || stats.AcksSent != 1 {
		t.Errorf("stats %+v", stats)
	}
	if len(reported) != 2 || !errors.Is(reported[0], ErrUnavailable) {
		t.Errorf("reported %v", reported)
	}
}

func TestFatalCodeEndsReceive(t *testing.T) {
	endpoint := startFakeSubscriber(t, func(ferryv1.Subscriber_SubscribeServer, int) error {
		return status.Error(codes.NotFound, "unknown topic t")
	})
	s := newTestSubscriber(t, endpoint)
	err := s.Receive(context.Background(), func(context.Context, *Message) { t.Error("no message expected") })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v", err)
	}
}

func TestKeyModeRunsEachKeySeriallyAndKeysInParallel(t *testing.T) {
	var keys []string
	for i := 0; i < 60; i++ {
		keys = append(keys, fmt.Sprintf("k%d", i%4))
	}
	endpoint := startFakeSubscriber(t, func(stream ferryv1.Subscriber_SubscribeServer, _ int) error {
		stream.Send(opened())
		stream.Send(batchOf(keys...))
		readUntilHalfClose(stream)
		return nil
	})
	s := newTestSubscriber(t, endpoint, WithOrdering(OrderingKey), WithConcurrency(4))
	var mu sync.Mutex
	active := map[string]int{}
	last := map[string]int64{}
	maxParallel, handled := 0, 0
	done := make(chan struct{})
	receiveUntil(t, s, done, func(_ context.Context, m *Message) {
		key := string(m.Key)
		mu.Lock()
		active[key]++
		if active[key] > 1 {
			t.Errorf("key %s handled concurrently", key)
		}
		if prev, ok := last[key]; ok && m.Offset < prev {
			t.Errorf("key %s: offset %d after %d", key, m.Offset, prev)
		}
		last[key] = m.Offset
		running := 0
		for _, n := range active {
			running += n
		}
		if running > maxParallel {
			maxParallel = running
		}
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		m.Ack()
		mu.Lock()
		active[key]--
		if handled++; handled == len(keys) {
			close(done)
		}
		mu.Unlock()
	})
	if maxParallel < 2 {
		t.Errorf("keys never ran in parallel")
	}
}

func TestReceivedMessageFields(t *testing.T) {
	endpoint := startFakeSubscriber(t, func(stream ferryv1.Subscriber_SubscribeServer, _ int) error {
		stream.Send(opened())
		stream.Send(batchOf("k"))
		readUntilHalfClose(stream)
		return nil
	})
	s := newTestSubscriber(t, endpoint)
	done := make(chan struct{})
	receiveUntil(t, s, done, func(_ context.Context, m *Message) {
		n, ok := m.Header("n")
		if string(m.Key) != "k" || string(m.Value) != "v-0" || m.ID != "id-0" || !ok || string(n) != "2" ||
			m.DeliveryAttempt != 1 || m.Topic != "t" {
			t.Errorf("got %+v", m)
		}
		m.Ack()
		close(done)
	})
}

func TestBadSubscriberOptionsAreRefused(t *testing.T) {
	ctx := context.Background()
	if _, err := NewSubscriber(ctx, []string{"a:1"}, "", []string{"t"}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty group: %v", err)
	}
	if _, err := NewSubscriber(ctx, []string{"a:1"}, "g", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no topics: %v", err)
	}
	if _, err := NewSubscriber(ctx, []string{"a:1"}, "g", []string{"t"}, WithAckDeadline(time.Millisecond)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("tiny deadline: %v", err)
	}
}
