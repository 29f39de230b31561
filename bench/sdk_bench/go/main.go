// One benchmark client of bench/sdk_bench: publishes or consumes --messages
// messages of --size bytes with the Ferry Go SDK (--client ferry, through
// ferryd) or with franz-go (--client franz, straight to Kafka), and prints one
// JSON line: messages, seconds of the measured window and the process's own
// user+system CPU seconds in it (getrusage).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	ferry "ferry.dev/ferry/sdk/go"
)

type result struct {
	Messages int     `json:"messages"`
	Seconds  float64 `json:"seconds"`
	CPU      float64 `json:"cpu"`
}

func cpuSeconds() float64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		log.Fatal(err)
	}
	return float64(u.Utime.Nano()+u.Stime.Nano()) / 1e9
}

// window measures wall and CPU time from start() to stop().
type window struct {
	wall time.Time
	cpu  float64
}

func start() window { return window{time.Now(), cpuSeconds()} }

func (w window) stop(messages int) result {
	return result{messages, time.Since(w.wall).Seconds(), cpuSeconds() - w.cpu}
}

func key(i int) []byte { return []byte(fmt.Sprintf("k%d", i%1000)) }

func main() {
	client := flag.String("client", "ferry", "ferry (the Go SDK through ferryd) or franz (franz-go)")
	mode := flag.String("mode", "publish", "publish or consume")
	target := flag.String("target", "127.0.0.1:7400", "ferryd endpoint or Kafka bootstrap")
	topic := flag.String("topic", "bench", "topic")
	group := flag.String("group", "bench", "consumer group")
	size := flag.Int("size", 1024, "value bytes")
	messages := flag.Int("messages", 100000, "messages")
	flag.Parse()
	ctx := context.Background()
	value := make([]byte, *size)
	var r result
	switch *client + "/" + *mode {
	case "ferry/publish":
		r = ferryPublish(ctx, *target, *topic, value, *messages)
	case "ferry/consume":
		r = ferryConsume(ctx, *target, *topic, *group, *messages)
	case "franz/publish":
		r = franzPublish(ctx, *target, *topic, value, *messages)
	case "franz/consume":
		r = franzConsume(ctx, *target, *topic, *group, *messages)
	default:
		log.Fatalf("unknown --client/--mode %s/%s", *client, *mode)
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		log.Fatal(err)
	}
}

func ferryPublish(ctx context.Context, target, topic string, value []byte, n int) result {
	p, err := ferry.NewPublisher(ctx, []string{target})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	w := start()
	results := make([]*ferry.PublishResult, n)
	for i := range results {
		results[i] = p.Publish(ctx, &ferry.Message{Topic: topic, Key: key(i), Value: value})
	}
	for _, res := range results {
		if _, err := res.Get(ctx); err != nil {
			log.Fatal(err)
		}
	}
	return w.stop(n)
}

func ferryConsume(ctx context.Context, target, topic, group string, n int) result {
	s, err := ferry.NewSubscriber(ctx, []string{target}, group, []string{topic},
		ferry.WithStart(ferry.StartEarliest), ferry.WithFlowControl(5000, 64<<20))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	w := start()
	var count atomic.Int64
	receiveCtx, stop := context.WithCancel(ctx)
	err = s.Receive(receiveCtx, func(_ context.Context, m *ferry.Message) {
		m.Ack()
		if count.Add(1) == int64(n) {
			stop()
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	return w.stop(int(count.Load()))
}

func franzPublish(ctx context.Context, target, topic string, value []byte, n int) result {
	// Idempotence is franz-go's default; acks=all is required by it.
	c, err := kgo.NewClient(kgo.SeedBrokers(target), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	w := start()
	var failed atomic.Int64
	for i := 0; i < n; i++ {
		c.Produce(ctx, &kgo.Record{Key: key(i), Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := c.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	if failed.Load() > 0 {
		log.Fatalf("%d records failed", failed.Load())
	}
	return w.stop(n)
}

func franzConsume(ctx context.Context, target, topic, group string, n int) result {
	c, err := kgo.NewClient(kgo.SeedBrokers(target), kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	w := start()
	count := 0
	for count < n {
		fetches := c.PollFetches(ctx)
		if errs := fetches.Errors(); len(errs) > 0 {
			log.Fatal(errs[0].Err)
		}
		count += fetches.NumRecords()
	}
	if err := c.CommitUncommittedOffsets(ctx); err != nil {
		log.Fatal(err)
	}
	return w.stop(count)
}
