package ferry

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"regexp"
	"sync"
	"testing"
	"time"

	ferryv1 "ferry.dev/ferry/sdk/go/gen/ferry/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func newTestPublisher(t *testing.T, endpoints []string, opts ...PublisherOption) *Publisher {
	t.Helper()
	p, err := NewPublisher(context.Background(), endpoints, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func get(t *testing.T, r *PublishResult) (Written, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.Get(ctx)
}

func TestPublishedMessagesCarryGeneratedOrGivenIDs(t *testing.T) {
	node := newFakePublisher()
	p := newTestPublisher(t, []string{startFakePublisher(t, node)})
	ctx := context.Background()
	generated := p.Publish(ctx, &Message{Topic: "t", Value: []byte("a"), Headers: []Header{{"h", []byte("x")}}})
	given := p.Publish(ctx, &Message{Topic: "t", Value: []byte("b"), ID: "mine"})
	w, err := get(t, generated)
	if err != nil || w.Cluster != "fake" || w.Offset < 1 {
		t.Fatalf("got %+v, %v", w, err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(w.ID) {
		t.Errorf("generated id %q is not 32 hex digits", w.ID)
	}
	if w, err := get(t, given); err != nil || w.ID != "mine" {
		t.Errorf("given id: got %+v, %v", w, err)
	}
	sent := node.calls[0].Messages[0]
	if sent.Id != w.ID || string(sent.Headers[0].Value) != "x" {
		t.Errorf("sent %v", sent)
	}
}

func TestIdlePublisherSendsAtOnceAndBusyOneBatches(t *testing.T) {
	node := newFakePublisher()
	node.delay = 200 * time.Millisecond
	p := newTestPublisher(t, []string{startFakePublisher(t, node)},
		WithLinger(time.Hour), WithMaxBatchMessages(10))
	ctx := context.Background()
	start := time.Now()
	first := p.Publish(ctx, &Message{Topic: "t", Value: []byte("first")})
	for node.callCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	var rest []*PublishResult
	for i := 0; i < 30; i++ {
		rest = append(rest, p.Publish(ctx, &Message{Topic: "t", Value: []byte("x")}))
	}
	if _, err := get(t, first); err != nil {
		t.Fatal(err)
	}
	for _, r := range rest {
		if _, err := get(t, r); err != nil {
			t.Fatal(err)
		}
	}
	// Despite a linger of an hour: the first went alone at once, the rest
	// in full batches of 10 (never more).
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("took %s", elapsed)
	}
	if len(node.calls[0].Messages) != 1 {
		t.Errorf("first call had %d messages", len(node.calls[0].Messages))
	}
	for _, c := range node.calls[1:] {
		if len(c.Messages) != 10 {
			t.Errorf("a later call had %d messages, want 10", len(c.Messages))
		}
	}
}

func TestBatchesRespectTheByteLimit(t *testing.T) {
	node := newFakePublisher()
	node.delay = 50 * time.Millisecond
	p := newTestPublisher(t, []string{startFakePublisher(t, node)}, WithMaxBatchBytes(300), WithLinger(time.Hour))
	var results []*PublishResult
	for i := 0; i < 20; i++ {
		results = append(results, p.Publish(context.Background(), &Message{Topic: "t", Value: make([]byte, 68)}))
	}
	for _, r := range results {
		if _, err := get(t, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range node.calls {
		if len(c.Messages) > 3 { // 68 value + 32 id = 100 bytes each
			t.Errorf("a call had %d messages of 100 bytes, limit 300", len(c.Messages))
		}
	}
}

func TestOnlyRetryableFailuresAreRetried(t *testing.T) {
	node := newFakePublisher()
	attempts := map[string]int{}
	node.answer = func(req *ferryv1.PublishRequest) (*ferryv1.PublishResponse, error) {
		response := &ferryv1.PublishResponse{}
		for _, m := range req.Messages {
			v := string(m.Value)
			attempts[v]++
			st := &ferryv1.Status{}
			switch {
			case v == "flaky" && attempts[v] == 1:
				st = &ferryv1.Status{Code: int32(codes.Unavailable), Message: "broker away", Retryable: true}
			case v == "missing":
				st = &ferryv1.Status{Code: int32(codes.NotFound), Message: "no such topic"}
			case v == "node-says-no":
				// UNAVAILABLE is retryable by code, but the node's word wins.
				st = &ferryv1.Status{Code: int32(codes.Unavailable), Message: "gave up"}
			}
			response.Results = append(response.Results, &ferryv1.PublishResult{Status: st})
		}
		return response, nil
	}
	p := newTestPublisher(t, []string{startFakePublisher(t, node)}, WithRetryBackoff(time.Millisecond, time.Millisecond))
	ctx := context.Background()
	flaky := p.Publish(ctx, &Message{Topic: "t", Value: []byte("flaky")})
	missing := p.Publish(ctx, &Message{Topic: "t", Value: []byte("missing")})
	refused := p.Publish(ctx, &Message{Topic: "t", Value: []byte("node-says-no")})
	if _, err := get(t, flaky); err != nil {
		t.Errorf("flaky: %v", err)
	}
	_, err := get(t, missing)
	var fe *Error
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &fe) || fe.Retryable || status.Code(err) != codes.NotFound {
		t.Errorf("missing: got %v", err)
	}
	if _, err := get(t, refused); !errors.Is(err, ErrUnavailable) || IsRetryable(err) {
		t.Errorf("node-says-no: got %v", err)
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	if attempts["flaky"] != 2 || attempts["missing"] != 1 || attempts["node-says-no"] != 1 {
		t.Errorf("attempts %v", attempts)
	}
}

func TestUnreachableNodeFailsOverToTheOther(t *testing.T) {
	node := newFakePublisher()
	p := newTestPublisher(t, []string{deadEndpoint(t), startFakePublisher(t, node)},
		WithRetryBackoff(10*time.Millisecond, 100*time.Millisecond))
	var results []*PublishResult
	for i := 0; i < 20; i++ {
		results = append(results, p.Publish(context.Background(),
			&Message{Topic: "t", Key: []byte(fmt.Sprint(i % 3)), Value: []byte(fmt.Sprint(i))}))
	}
	for _, r := range results {
		if _, err := get(t, r); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(node.stored["0"]) + len(node.stored["1"]) + len(node.stored["2"]); n != 20 {
		t.Errorf("stored %d of 20", n)
	}
}

func TestKeyOrderHoldsAcrossRetries(t *testing.T) {
	node := newFakePublisher()
	node.delay = 2 * time.Millisecond
	random := rand.New(rand.NewSource(1))
	var mu sync.Mutex
	node.answer = func(req *ferryv1.PublishRequest) (*ferryv1.PublishResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		if random.Intn(10) == 0 {
			return nil, status.Error(codes.Unavailable, "whole call fails")
		}
		response := &ferryv1.PublishResponse{}
		failedKeys := map[string]bool{}
		for _, m := range req.Messages {
			st := &ferryv1.Status{}
			// Like Kafka: once a key's message failed, its later ones in the
			// batch fail too.
			if failedKeys[string(m.Key)] || random.Intn(5) == 0 {
				failedKeys[string(m.Key)] = true
				st = &ferryv1.Status{Code: int32(codes.Aborted), Retryable: true}
			}
			response.Results = append(response.Results, &ferryv1.PublishResult{Status: st})
		}
		return response, nil
	}
	p := newTestPublisher(t, []string{startFakePublisher(t, node)}, WithMaxBatchMessages(7),
		WithRetryBackoff(time.Millisecond, 5*time.Millisecond))
	want := map[string][]string{}
	var results []*PublishResult
	for i := 0; i < 600; i++ {
		key := fmt.Sprintf("k%d", i%6)
		value := fmt.Sprint(i)
		want[key] = append(want[key], value)
		results = append(results, p.Publish(context.Background(), &Message{Topic: "t", Key: []byte(key), Value: []byte(value)}))
	}
	for _, r := range results {
		if _, err := get(t, r); err != nil {
			t.Fatal(err)
		}
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	for key, values := range want {
		if fmt.Sprint(node.stored[key]) != fmt.Sprint(values) {
			t.Errorf("key %s stored out of order: %v", key, node.stored[key])
		}
	}
	if node.overlap {
		t.Error("a key was in two calls at once")
	}
}

func TestOutstandingBytesAreBounded(t *testing.T) {
	node := newFakePublisher()
	node.delay = time.Hour // nothing completes
	endpoint := startFakePublisher(t, node)
	ctx := context.Background()
	value := make([]byte, 28) // + 32 bytes of id = 60

	refusing := newTestPublisher(t, []string{endpoint}, WithMaxOutstandingBytes(100),
		WithBlockWhenFull(false), WithPublisherCloseTimeout(0))
	refusing.Publish(ctx, &Message{Topic: "t", Value: value})
	if _, err := get(t, refusing.Publish(ctx, &Message{Topic: "t", Value: value})); !errors.Is(err, ErrResourceExhausted) {
		t.Errorf("over the cap without blocking: got %v", err)
	}
	if _, err := get(t, refusing.Publish(ctx, &Message{Topic: "t", Value: make([]byte, 200)})); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("message over the cap: got %v", err)
	}

	blocking := newTestPublisher(t, []string{endpoint}, WithMaxOutstandingBytes(100), WithPublisherCloseTimeout(0))
	blocking.Publish(ctx, &Message{Topic: "t", Value: value})
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := get(t, blocking.Publish(short, &Message{Topic: "t", Value: value})); !errors.Is(err, context.DeadlineExceeded) ||
		!errors.Is(err, ErrDeadlineExceeded) {
		t.Errorf("blocked past ctx: got %v", err)
	}
}

func TestDeliveryTimeoutEndsRetries(t *testing.T) {
	node := newFakePublisher()
	node.answer = func(*ferryv1.PublishRequest) (*ferryv1.PublishResponse, error) {
		return nil, status.Error(codes.Unavailable, "cluster down")
	}
	p := newTestPublisher(t, []string{startFakePublisher(t, node)}, WithDeliveryTimeout(300*time.Millisecond),
		WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	start := time.Now()
	_, err := get(t, p.Publish(context.Background(), &Message{Topic: "t", Value: []byte("x")}))
	if !errors.Is(err, ErrUnavailable) || !IsRetryable(err) {
		t.Errorf("got %v", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("gave up after %s", elapsed)
	}
	if node.callCount() < 3 {
		t.Errorf("only %d attempts", node.callCount())
	}
}

func TestCloseFailsWhatIsLeftWithErrClosed(t *testing.T) {
	node := newFakePublisher()
	node.delay = time.Hour
	p := newTestPublisher(t, []string{startFakePublisher(t, node)}, WithPublisherCloseTimeout(100*time.Millisecond))
	inFlight := p.Publish(context.Background(), &Message{Topic: "t", Value: []byte("a")})
	queued := p.Publish(context.Background(), &Message{Topic: "t", Value: []byte("b")})
	if err := p.Close(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v", err)
	}
	for _, r := range []*PublishResult{inFlight, queued} {
		if _, err := get(t, r); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrUnavailable) {
			t.Errorf("got %v", err)
		}
	}
	if _, err := get(t, p.Publish(context.Background(), &Message{Topic: "t"})); !errors.Is(err, ErrClosed) {
		t.Errorf("publish after close: %v", err)
	}
}

func TestFlushWaitsForResults(t *testing.T) {
	node := newFakePublisher()
	node.delay = 20 * time.Millisecond
	p := newTestPublisher(t, []string{startFakePublisher(t, node)}, WithLinger(time.Hour))
	var results []*PublishResult
	for i := 0; i < 50; i++ {
		results = append(results, p.Publish(context.Background(), &Message{Topic: fmt.Sprint(i % 3)}))
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		select {
		case <-r.Ready():
		default:
			t.Fatal("Flush returned before a result")
		}
	}
}

func TestBadPublisherOptionsAreRefused(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		endpoints []string
		opt       PublisherOption
	}{
		"no endpoints":     {nil, WithLinger(0)},
		"bad endpoint":     {[]string{"nohost"}, WithLinger(0)},
		"twice":            {[]string{"a:1", "a:1"}, WithLinger(0)},
		"batch messages":   {[]string{"a:1"}, WithMaxBatchMessages(0)},
		"negative linger":  {[]string{"a:1"}, WithLinger(-1)},
		"backoff reversed": {[]string{"a:1"}, WithRetryBackoff(time.Second, time.Millisecond)},
		"request timeout":  {[]string{"a:1"}, WithRequestTimeout(0)},
	} {
		if _, err := NewPublisher(ctx, tc.endpoints, tc.opt); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestMessagesQueuedBehindTheirKeyExpire(t *testing.T) {
	node := newFakePublisher()
	node.delay = 500 * time.Millisecond // the key's first batch outlives the others' delivery timeout
	p := newTestPublisher(t, []string{startFakePublisher(t, node)}, WithDeliveryTimeout(200*time.Millisecond))
	ctx := context.Background()
	first := p.Publish(ctx, &Message{Topic: "t", Key: []byte("k"), Value: []byte("1")})
	for node.callCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	queued := p.Publish(ctx, &Message{Topic: "t", Key: []byte("k"), Value: []byte("2")})
	if _, err := get(t, first); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, queued); !errors.Is(err, ErrDeadlineExceeded) {
		t.Errorf("got %v", err)
	}
	if node.callCount() != 1 {
		t.Errorf("the expired message was sent")
	}
}

func TestTimedOutCallIsRetriedOnTheOtherNode(t *testing.T) {
	stuck, healthy := newFakePublisher(), newFakePublisher()
	stuck.delay = time.Hour
	p := newTestPublisher(t, []string{startFakePublisher(t, stuck), startFakePublisher(t, healthy)},
		WithRequestTimeout(100*time.Millisecond), WithRetryBackoff(10*time.Millisecond, 10*time.Millisecond))
	var results []*PublishResult
	for i := 0; i < 6; i++ {
		results = append(results, p.Publish(context.Background(), &Message{Topic: fmt.Sprint(i), Value: []byte("x")}))
	}
	for _, r := range results {
		if _, err := get(t, r); err != nil {
			t.Fatal(err)
		}
	}
	if stuck.callCount() == 0 {
		t.Error("the stuck node was never tried")
	}
	if n := len(healthy.stored[""]); n != 6 {
		t.Errorf("healthy node stored %d of 6", n)
	}
}

func TestResultsAreTheSameInTheCompactAndThePerMessageForm(t *testing.T) {
	keys := []string{"", "a", "bb", "a"}
	for _, oldNode := range []bool{false, true} {
		node := newFakePublisher()
		node.oldNode = oldNode
		p := newTestPublisher(t, []string{startFakePublisher(t, node)})
		var results []*PublishResult
		for i, key := range keys {
			results = append(results, p.Publish(context.Background(), &Message{Topic: "t", Key: []byte(key),
				Value: []byte(fmt.Sprint(i)), ID: fmt.Sprint("id-", i)}))
		}
		offsets := map[int64]bool{}
		for i, r := range results {
			w, err := get(t, r)
			if err != nil {
				t.Fatal(err)
			}
			// The fake puts message i in partition len(key) % 3 with a
			// timestamp of 1.7e12 ms + its offset.
			if w.ID != fmt.Sprint("id-", i) || w.Cluster != "fake" || w.Partition != int32(len(keys[i])%3) ||
				!w.Timestamp.Equal(time.UnixMilli(1_700_000_000_000+w.Offset)) {
				t.Errorf("old node %v, message %d: got %+v", oldNode, i, w)
			}
			offsets[w.Offset] = true
		}
		if len(offsets) != len(keys) {
			t.Errorf("old node %v: offsets %v", oldNode, offsets)
		}
		node.mu.Lock()
		if !node.calls[0].CompactResults {
			t.Error("the request did not ask for compact results")
		}
		node.mu.Unlock()
	}
}

func TestCompactResultsThatDoNotFitTheBatchFailIt(t *testing.T) {
	node := newFakePublisher()
	node.answer = func(req *ferryv1.PublishRequest) (*ferryv1.PublishResponse, error) {
		return &ferryv1.PublishResponse{Compact: &ferryv1.CompactPublishResults{
			Cluster: "fake", Partitions: []int32{0}, Offsets: []int64{1, 2}}}, nil
	}
	p := newTestPublisher(t, []string{startFakePublisher(t, node)})
	_, err := get(t, p.Publish(context.Background(), &Message{Topic: "t", Value: []byte("v")}))
	if status.Code(err) != codes.Internal || IsRetryable(err) {
		t.Errorf("got %v, want a non-retryable INTERNAL error", err)
	}
}
