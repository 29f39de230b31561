package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ferry "ferry.dev/ferry/sdk/go"
	"google.golang.org/grpc/codes"
	"gopkg.in/yaml.v3"
)

// scenario is one sdk/conformance/*.yaml file (schema in its README).
type scenario struct {
	Name  string
	Nodes int
	Topic struct {
		Create     *bool
		Name       *string
		Partitions int32
	}
	Publish struct {
		Messages, Keys int
		Endpoints      string
	}
	Subscribe *struct {
		Ordering               string
		AckDeadline            string `yaml:"ack_deadline"`
		MaxOutstandingMessages int64  `yaml:"max_outstanding_messages"`
		Endpoints              string
		Nack                   []struct {
			Message  int
			Attempts []int
			Delay    string
		}
		Timeout, Linger string
	}
	Expect struct {
		PublishError      string `yaml:"publish_error"`
		AllAckedOnce      *bool  `yaml:"all_acked_once"`
		PerKeyOrder       bool   `yaml:"per_key_order"`
		PerPartitionOrder bool   `yaml:"per_partition_order"`
		Deliveries        map[int]int
	}
}

func duration(t *testing.T, text string, fallback time.Duration) time.Duration {
	if text == "" {
		return fallback
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		t.Fatalf("bad duration %q", text)
	}
	return d
}

func TestConformance(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(repo, "sdk", "conformance", "*.yaml"))
	if len(paths) == 0 {
		t.Fatal("no scenarios in sdk/conformance")
	}
	for _, backend := range []string{"kafka", "embedded"} {
		for _, path := range paths {
			backend, path := backend, path
			t.Run(backend+"/"+strings.TrimSuffix(filepath.Base(path), ".yaml"), func(t *testing.T) {
				text, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				var spec scenario
				if err := yaml.Unmarshal(text, &spec); err != nil || spec.Name == "" {
					t.Fatalf("%s: %v (name is required)", path, err)
				}
				runScenario(t, backend, &spec)
			})
		}
	}
}

func runScenario(t *testing.T, backend string, spec *scenario) {
	var nodes []string
	switch {
	case backend == "embedded" && spec.Nodes > 1:
		t.Skip("known difference: an embedded store belongs to one node; several nodes need a shared broker")
	case backend == "embedded":
		nodes = []string{embedded.endpoint}
	case spec.Nodes > 1:
		a, b := nodePair(t)
		nodes = []string{a.endpoint, b.endpoint}
	default:
		nodes = []string{kafkaNode.endpoint}
	}
	endpoints := func(which string) []string {
		if which == "first" {
			return nodes[:1]
		}
		return nodes
	}
	topic := unique("conf-" + spec.Name)
	if spec.Topic.Name != nil {
		topic = *spec.Topic.Name
	}
	if spec.Topic.Create == nil || *spec.Topic.Create {
		partitions := spec.Topic.Partitions
		if partitions == 0 {
			partitions = 3
		}
		createTopic(t, nodes[0], topic, partitions)
	}

	n := spec.Publish.Messages
	key := func(i int) []byte {
		if spec.Publish.Keys == 0 {
			return nil
		}
		return []byte(fmt.Sprintf("k-%d", i%spec.Publish.Keys))
	}
	ctx := context.Background()
	publisher, err := ferry.NewPublisher(ctx, endpoints(spec.Publish.Endpoints))
	if err != nil {
		t.Fatal(err)
	}
	var results []*ferry.PublishResult
	for i := 0; i < n; i++ {
		results = append(results, publisher.Publish(ctx, &ferry.Message{Topic: topic, Key: key(i),
			Value: []byte(fmt.Sprintf("m-%d", i)), Headers: []ferry.Header{{Key: "n", Value: []byte(strconv.Itoa(i))}}}))
	}
	waitCtx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	var failures []error
	for _, r := range results {
		if _, err := r.Get(waitCtx); err != nil {
			failures = append(failures, err)
		}
	}
	publisher.Close()
	if spec.Expect.PublishError != "" {
		var want codes.Code
		if err := want.UnmarshalJSON([]byte(`"` + spec.Expect.PublishError + `"`)); err != nil {
			t.Fatal(err)
		}
		for _, err := range failures {
			var fe *ferry.Error
			if !errors.As(err, &fe) || fe.Code != want {
				t.Errorf("want %s, got %v", want, err)
			}
		}
		if len(failures) != n {
			t.Errorf("%d of %d publishes failed, want all with %s", len(failures), n, want)
		}
		return
	}
	if len(failures) > 0 {
		t.Fatalf("%d publishes failed, e.g. %v", len(failures), failures[0])
	}
	if spec.Subscribe != nil {
		subscribePhase(t, spec, topic, endpoints(spec.Subscribe.Endpoints))
	}
}

type deliveryRecord struct {
	number    int
	key       string
	partition string
	offset    int64
}

func subscribePhase(t *testing.T, spec *scenario, topic string, endpoints []string) {
	sub := spec.Subscribe
	n := spec.Publish.Messages
	type attempt struct{ message, attempt int }
	nacks := map[attempt]time.Duration{}
	for _, nack := range sub.Nack {
		attempts := nack.Attempts
		if len(attempts) == 0 {
			attempts = []int{1}
		}
		for _, a := range attempts {
			nacks[attempt{nack.Message, a}] = duration(t, nack.Delay, 0)
		}
	}
	ordering := map[string]ferry.Ordering{"": ferry.OrderingNone, "none": ferry.OrderingNone,
		"key": ferry.OrderingKey, "partition": ferry.OrderingPartition}[sub.Ordering]
	maxMessages := sub.MaxOutstandingMessages
	if maxMessages == 0 {
		maxMessages = 1000
	}
	subscriber, err := ferry.NewSubscriber(context.Background(), endpoints, unique("conf"), []string{topic},
		ferry.WithStart(ferry.StartEarliest), ferry.WithOrdering(ordering),
		ferry.WithAckDeadline(duration(t, sub.AckDeadline, 10*time.Second)),
		ferry.WithFlowControl(maxMessages, 10<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer subscriber.Close()

	var mu sync.Mutex
	deliveries := map[int]int{}
	acked := map[int]int{}
	var deliveredAfterAck []int
	var deliveryLog, ackLog []deliveryRecord
	var allAckedAt time.Time
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timeout, linger := duration(t, sub.Timeout, 60*time.Second), duration(t, sub.Linger, time.Second)
	go func() {
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			done := !allAckedAt.IsZero() && time.Since(allAckedAt) >= linger
			mu.Unlock()
			if done {
				break
			}
		}
		cancel()
	}()
	err = subscriber.Receive(ctx, func(_ context.Context, m *ferry.Message) {
		i, err := strconv.Atoi(strings.TrimPrefix(string(m.Value), "m-"))
		header, _ := m.Header("n")
		if err != nil || string(header) != strconv.Itoa(i) {
			t.Errorf("unexpected message %q (header n %q)", m.Value, header)
		}
		record := deliveryRecord{i, string(m.Key), fmt.Sprintf("%s/%d", m.Topic, m.Partition), m.Offset}
		mu.Lock()
		defer mu.Unlock()
		deliveries[i]++
		if acked[i] > 0 {
			deliveredAfterAck = append(deliveredAfterAck, i)
		}
		deliveryLog = append(deliveryLog, record)
		if delay, ok := nacks[attempt{i, m.DeliveryAttempt}]; ok {
			m.Nack(delay)
			return
		}
		m.Ack()
		acked[i]++
		ackLog = append(ackLog, record)
		if len(acked) == n && allAckedAt.IsZero() {
			allAckedAt = time.Now()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) != n {
		t.Fatalf("acked %d of %d messages within %s", len(acked), n, timeout)
	}
	if spec.Expect.AllAckedOnce == nil || *spec.Expect.AllAckedOnce {
		for i, count := range acked {
			if count > 1 {
				t.Errorf("message %d acked %d times", i, count)
			}
		}
		if len(deliveredAfterAck) > 0 {
			t.Errorf("delivered again after their ack: %v", deliveredAfterAck)
		}
	}
	for i, want := range spec.Expect.Deliveries {
		if deliveries[i] != want {
			t.Errorf("message %d delivered %d times, want %d", i, deliveries[i], want)
		}
	}
	// Keys: in publish order (message number). Partitions: in offset order.
	if spec.Expect.PerKeyOrder {
		checkOrder(t, "key", deliveryLog, ackLog, func(r deliveryRecord) (string, int64) { return r.key, int64(r.number) })
	}
	if spec.Expect.PerPartitionOrder {
		checkOrder(t, "partition", deliveryLog, ackLog, func(r deliveryRecord) (string, int64) { return r.partition, r.offset })
	}
}

// checkOrder: per group, deliveries never go back to an earlier message and
// acks strictly follow the order.
func checkOrder(t *testing.T, what string, deliveries, acks []deliveryRecord, of func(deliveryRecord) (string, int64)) {
	last := map[string]int64{}
	for _, r := range deliveries {
		group, seq := of(r)
		if group == "" {
			continue
		}
		if prev, ok := last[group]; ok && seq < prev {
			t.Errorf("%s %s: delivered %d after %d", what, group, seq, prev)
		}
		last[group] = seq
	}
	last = map[string]int64{}
	for _, r := range acks {
		group, seq := of(r)
		if group == "" {
			continue
		}
		if prev, ok := last[group]; ok && seq <= prev {
			t.Errorf("%s %s: acked %d after %d", what, group, seq, prev)
		}
		last[group] = seq
	}
}
