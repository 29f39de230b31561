package ferry

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	ferryv1 "ferry.dev/ferry/sdk/go/gen/ferry/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Header is a Kafka-style record header; keys may repeat, order is kept.
type Header struct {
	Key   string
	Value []byte
}

// Message is what Publish sends and what a Subscriber's handler receives.
type Message struct {
	Topic string
	// Partitioning key (murmur2, as the Java Kafka client). Empty: no key.
	Key     []byte
	Value   []byte
	Headers []Header
	// When set, partitions and orders by this instead of Key.
	OrderingKey []byte
	// Stored as header ferry.id so consumers can drop the rare duplicates a
	// node failover causes. Empty on Publish: a random 128-bit id (32 hex
	// digits) is generated.
	ID string
	// Publish: the record's timestamp (zero: the node's clock). Received:
	// the record's timestamp as the node reported it.
	Timestamp time.Time

	// Set on received messages only.
	Partition       int32
	Offset          int64
	Cluster         string
	DeliveryAttempt int // 1 on first delivery

	delivery *delivery // nil on messages built by the application
}

// Header returns the last value of the header named key.
func (m *Message) Header(key string) ([]byte, bool) {
	for i := len(m.Headers) - 1; i >= 0; i-- {
		if m.Headers[i].Key == key {
			return m.Headers[i].Value, true
		}
	}
	return nil, false
}

// Ack settles a received message: the node may commit past it. Of Ack and
// Nack only the first call counts; on a message that was not received they
// do nothing. After the stream that delivered the message broke, they do
// nothing either (the node redelivers it) and are counted in Stats.
func (m *Message) Ack() {
	if m.delivery != nil {
		m.delivery.settle(settleAck, 0)
	}
}

// Nack asks for redelivery no sooner than delay (<= 0: as soon as possible).
func (m *Message) Nack(delay time.Duration) {
	if delay < 0 {
		delay = 0
	}
	if m.delivery != nil {
		m.delivery.settle(settleNack, delay)
	}
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("ferry: no randomness for message ids: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// toProto returns the wire message and its payload size (the bytes counted
// against WithMaxOutstandingBytes and WithMaxBatchBytes).
func toProto(m *Message) (*ferryv1.OutgoingMessage, int) {
	id := m.ID
	if id == "" {
		id = newID()
	}
	out := &ferryv1.OutgoingMessage{Key: m.Key, Value: m.Value, OrderingKey: m.OrderingKey, Id: id}
	size := len(m.Key) + len(m.Value) + len(m.OrderingKey) + len(id)
	for _, h := range m.Headers {
		out.Headers = append(out.Headers, &ferryv1.Header{Key: h.Key, Value: h.Value})
		size += len(h.Key) + len(h.Value)
	}
	if !m.Timestamp.IsZero() {
		out.Timestamp = timestamppb.New(m.Timestamp)
	}
	return out, size
}

func fromProto(in *ferryv1.ReceivedMessage) *Message {
	m := &Message{Topic: in.Topic, Key: in.Key, Value: in.Value, ID: in.Id,
		Partition: in.Partition, Offset: in.Offset, Cluster: in.Cluster,
		DeliveryAttempt: int(in.DeliveryAttempt)}
	for _, h := range in.Headers {
		m.Headers = append(m.Headers, Header{Key: h.Key, Value: h.Value})
	}
	if in.PublishTime != nil {
		m.Timestamp = in.PublishTime.AsTime()
	}
	return m
}
