// Publishes a few messages to a Ferry node and consumes them again.
//
//	go run ./example -server 127.0.0.1:7400
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"time"

	ferry "ferry.dev/ferry/sdk/go"
)

func main() {
	server := flag.String("server", "127.0.0.1:7400", "a ferryd node")
	topic := flag.String("topic", "orders", "topic to use")
	flag.Parse()
	ctx := context.Background()

	publisher, err := ferry.NewPublisher(ctx, []string{*server})
	if err != nil {
		log.Fatal(err)
	}
	var results []*ferry.PublishResult
	for i := 0; i < 3; i++ {
		results = append(results, publisher.Publish(ctx, &ferry.Message{
			Topic: *topic, Key: []byte("customer-42"), Value: []byte(fmt.Sprintf(`{"order": %d}`, i)),
		}))
	}
	for _, r := range results {
		written, err := r.Get(ctx)
		if errors.Is(err, ferry.ErrNotFound) {
			log.Fatalf("no topic %s: create it with `ferry topics create %s`", *topic, *topic)
		} else if err != nil {
			log.Fatal(err) // a *ferry.Error: code, reason, retryable
		}
		fmt.Printf("stored %s at partition %d offset %d\n", written.ID, written.Partition, written.Offset)
	}
	publisher.Close()

	subscriber, err := ferry.NewSubscriber(ctx, []string{*server}, "example", []string{*topic},
		ferry.WithStart(ferry.StartEarliest), ferry.WithOrdering(ferry.OrderingKey))
	if err != nil {
		log.Fatal(err)
	}
	defer subscriber.Close()
	receiveCtx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	err = subscriber.Receive(receiveCtx, func(_ context.Context, m *ferry.Message) {
		fmt.Printf("received %s (key %s, attempt %d)\n", m.Value, m.Key, m.DeliveryAttempt)
		m.Ack()
	})
	if err != nil {
		log.Fatal(err)
	}
}
