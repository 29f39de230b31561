package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	ferry "ferry.dev/ferry/sdk/go"
)

// consume acks messages of topic from earliest until stop(seen values) is
// true or timeout passes; returns every delivered value, duplicates included.
func consume(t *testing.T, endpoints []string, topic string, timeout time.Duration,
	opts []ferry.SubscriberOption, onMessage func(delivered int), stop func(seen map[string]bool) bool) []string {
	t.Helper()
	opts = append([]ferry.SubscriberOption{ferry.WithStart(ferry.StartEarliest)}, opts...)
	sub, err := ferry.NewSubscriber(context.Background(), endpoints, unique("g"), []string{topic}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var mu sync.Mutex
	var delivered []string
	seen := map[string]bool{}
	err = sub.Receive(ctx, func(_ context.Context, m *ferry.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		delivered = append(delivered, string(m.Value))
		seen[string(m.Value)] = true
		if onMessage != nil {
			onMessage(len(delivered))
		}
		if stop(seen) {
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return delivered
}

func containsAll(want map[string]bool) func(map[string]bool) bool {
	return func(seen map[string]bool) bool {
		for v := range want {
			if !seen[v] {
				return false
			}
		}
		return true
	}
}

func TestRoundTripKeepsKeysHeadersAndPlacement(t *testing.T) {
	topic := createTopic(t, kafkaNode.endpoint, unique("go-rt"), 3)
	ctx := context.Background()
	publisher, err := ferry.NewPublisher(ctx, []string{kafkaNode.endpoint})
	if err != nil {
		t.Fatal(err)
	}
	written, err := publisher.Publish(ctx, &ferry.Message{Topic: topic, Key: []byte("k5"), Value: []byte("v5"),
		Headers: []ferry.Header{{Key: "h", Value: []byte("x5")}}}).Get(ctx)
	publisher.Close()
	if err != nil || written.Cluster != "main" || written.Offset < 0 {
		t.Fatalf("got %+v, %v", written, err)
	}
	var got *ferry.Message
	sub, err := ferry.NewSubscriber(ctx, []string{kafkaNode.endpoint}, unique("g"), []string{topic},
		ferry.WithStart(ferry.StartEarliest))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	receiveCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sub.Receive(receiveCtx, func(_ context.Context, m *ferry.Message) {
		m.Ack()
		got = m
		cancel()
	})
	if got == nil {
		t.Fatal("nothing received")
	}
	h, _ := got.Header("h")
	if string(got.Key) != "k5" || string(h) != "x5" || got.ID != written.ID || got.Partition != written.Partition ||
		got.Offset != written.Offset || got.Cluster != "main" || got.DeliveryAttempt != 1 || got.Timestamp.IsZero() {
		t.Errorf("received %+v, written %+v", got, written)
	}
}

func TestPublishSurvivesNodeKill(t *testing.T) {
	a, b := nodePair(t)
	topic := createTopic(t, a.endpoint, unique("go-failover"), 3)
	ctx := context.Background()
	publisher, err := ferry.NewPublisher(ctx, []string{a.endpoint, b.endpoint}, ferry.WithLinger(2*time.Millisecond),
		ferry.WithMaxBatchMessages(50), ferry.WithRequestTimeout(5*time.Second), ferry.WithDeliveryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var results []*ferry.PublishResult
	for i := 0; i < 3000; i++ {
		results = append(results, publisher.Publish(ctx, &ferry.Message{Topic: topic,
			Key: []byte(fmt.Sprintf("k%d", i%13)), Value: []byte(fmt.Sprintf("f-%05d", i))}))
		// Spread over ~1.5 s, so that batches are in flight to a at the kill.
		if i%20 == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		if i == 1500 {
			a.kill9()
		}
	}
	publisher.Close()
	acknowledged := map[string]bool{}
	var failures []error
	for i, r := range results {
		if _, err := r.Get(ctx); err != nil {
			failures = append(failures, err)
		} else {
			acknowledged[fmt.Sprintf("f-%05d", i)] = true
		}
	}
	if len(acknowledged) < 2900 {
		t.Fatalf("only %d of 3000 acknowledged, e.g. %v", len(acknowledged), failures[0])
	}
	delivered := consume(t, []string{b.endpoint}, topic, 90*time.Second, nil, nil, containsAll(acknowledged))
	seen := map[string]bool{}
	for _, v := range delivered {
		seen[v] = true
	}
	lost := 0
	for v := range acknowledged {
		if !seen[v] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d acknowledged messages lost", lost)
	}
	// Every message has a distinct value, so what is stored beyond one record
	// per message are the duplicates that retries after the kill caused.
	t.Logf("kill -9 during publish: %d acknowledged, %d failed, %d lost, %d duplicates stored",
		len(acknowledged), len(failures), lost, storedRecords(t, b.endpoint, topic)-int64(len(results)))
}

func TestSubscribeSurvivesNodeKill(t *testing.T) {
	a, b := nodePair(t)
	topic := createTopic(t, a.endpoint, unique("go-sub-failover"), 4)
	endpoints := []string{a.endpoint, b.endpoint}
	ctx := context.Background()
	publisher, err := ferry.NewPublisher(ctx, endpoints)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	var results []*ferry.PublishResult
	for i := 0; i < 2000; i++ {
		v := fmt.Sprintf("s-%05d", i)
		want[v] = true
		results = append(results, publisher.Publish(ctx, &ferry.Message{Topic: topic, Key: []byte(v[len(v)-2:]), Value: []byte(v)}))
	}
	for _, r := range results {
		if _, err := r.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	publisher.Close()
	killed := false
	// Small flow-control windows: little is buffered in the client at the
	// kill, so node a's partitions must really move to node b.
	delivered := consume(t, endpoints, topic, 120*time.Second, []ferry.SubscriberOption{
		ferry.WithAckDeadline(5 * time.Second), ferry.WithFlowControl(20, 1<<20)},
		func(n int) {
			if n == 500 {
				a.kill9() // its partitions move to b after the session timeout
				killed = true
			}
		}, containsAll(want))
	if !killed {
		t.Fatal("never got to the kill")
	}
	seen := map[string]bool{}
	for _, v := range delivered {
		seen[v] = true
	}
	missing := 0
	for v := range want {
		if !seen[v] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d messages never delivered after the kill", missing)
	}
	t.Logf("kill -9 during subscribe: %d delivered, %d duplicates", len(delivered), len(delivered)-len(seen))
}
