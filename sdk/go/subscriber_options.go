package ferry

import (
	"time"

	ferryv1 "ferry.dev/ferry/sdk/go/gen/ferry/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Ordering says which messages the node hands out, and the handler runs,
// one at a time.
type Ordering int

const (
	// OrderingNone: messages of a partition spread over streams and handlers.
	OrderingNone Ordering = iota
	// OrderingKey: a key's next message only after its previous one was
	// acked; handler calls of one key are serial. Keyless messages are
	// unordered.
	OrderingKey
	// OrderingPartition: likewise per (topic, partition).
	OrderingPartition
)

// StartPosition is where a group with no committed offsets starts reading.
type StartPosition struct {
	earliest bool
	at       time.Time
}

var (
	// StartLatest: only messages published from now on (the default).
	StartLatest = StartPosition{}
	// StartEarliest: the oldest retained message of each partition.
	StartEarliest = StartPosition{earliest: true}
)

// StartAt: the first message of each partition at or after t.
func StartAt(t time.Time) StartPosition { return StartPosition{at: t} }

// SubscriberOption configures NewSubscriber.
type SubscriberOption func(*subscriberConfig)

type subscriberConfig struct {
	ordering               Ordering
	ackDeadline            time.Duration
	maxOutstandingMessages int64
	maxOutstandingBytes    int64
	start                  StartPosition
	filter                 string
	maxDeliveryAttempts    int32
	deadLetterTopic        string
	clientID               string
	concurrency            int
	ackBatchCount          int
	ackBatchDelay          time.Duration
	maxExtension           time.Duration
	backoff                backoff
	closeTimeout           time.Duration
	onError                func(error)
	security               Security
	dialOptions            []grpc.DialOption
}

func defaultSubscriberConfig() subscriberConfig {
	return subscriberConfig{
		ackDeadline:            30 * time.Second,
		maxOutstandingMessages: 1000,
		maxOutstandingBytes:    10 << 20,
		concurrency:            4,
		ackBatchCount:          500,
		ackBatchDelay:          5 * time.Millisecond,
		maxExtension:           time.Hour,
		backoff:                backoff{initial: 100 * time.Millisecond, max: 5 * time.Second},
		closeTimeout:           30 * time.Second,
		clientID:               "ferry-go",
	}
}

// WithOrdering: default OrderingNone.
func WithOrdering(o Ordering) SubscriberOption { return func(c *subscriberConfig) { c.ordering = o } }

// WithAckDeadline: how long a delivered message may stay unsettled before
// the node redelivers it, unless extended (1 s to 10 min; default 30 s).
func WithAckDeadline(d time.Duration) SubscriberOption {
	return func(c *subscriberConfig) { c.ackDeadline = d }
}

// WithFlowControl: per stream, so per endpoint, the node sends no more while
// this many messages or bytes are unsettled (>= 1; default 1000 and 10 MiB).
func WithFlowControl(maxMessages, maxBytes int64) SubscriberOption {
	return func(c *subscriberConfig) { c.maxOutstandingMessages, c.maxOutstandingBytes = maxMessages, maxBytes }
}

// WithStart: where a group with no committed offsets starts (default latest).
func WithStart(p StartPosition) SubscriberOption { return func(c *subscriberConfig) { c.start = p } }

// WithFilter: a server-side filter over key, headers and JSON fields.
func WithFilter(filter string) SubscriberOption {
	return func(c *subscriberConfig) { c.filter = filter }
}

// WithDeadLetter: after attempts deliveries (>= 1) a message goes to topic
// ("": "<topic>.dlq") and counts as acked.
func WithDeadLetter(attempts int32, topic string) SubscriberOption {
	return func(c *subscriberConfig) { c.maxDeliveryAttempts, c.deadLetterTopic = attempts, topic }
}

// WithClientID: shown by DescribeGroup (default "ferry-go").
func WithClientID(id string) SubscriberOption { return func(c *subscriberConfig) { c.clientID = id } }

// WithConcurrency: handler calls running at once (>= 1; default 4).
func WithConcurrency(n int) SubscriberOption { return func(c *subscriberConfig) { c.concurrency = n } }

// WithAckBatch: a stream's acks and nacks are sent once count are pending or
// the oldest waited delay (count >= 1, delay >= 0; default 500 and 5 ms).
func WithAckBatch(count int, delay time.Duration) SubscriberOption {
	return func(c *subscriberConfig) { c.ackBatchCount, c.ackBatchDelay = count, delay }
}

// WithMaxExtension: the deadline of a message not yet settled is extended
// automatically (when 2/3 of it passed) until this long after delivery
// (> 0; default 1 h).
func WithMaxExtension(d time.Duration) SubscriberOption {
	return func(c *subscriberConfig) { c.maxExtension = d }
}

// WithReconnectBackoff: reopening a stream waits initial, doubling per
// consecutive failure up to max (0 < initial <= max; default 100 ms, 5 s).
func WithReconnectBackoff(initial, max time.Duration) SubscriberOption {
	return func(c *subscriberConfig) { c.backoff = backoff{initial: initial, max: max} }
}

// WithSubscriberCloseTimeout: how long Receive, when ending, waits for
// running handlers (>= 0; default 30 s).
func WithSubscriberCloseTimeout(d time.Duration) SubscriberOption {
	return func(c *subscriberConfig) { c.closeTimeout = d }
}

// WithErrorHandler receives the failures Receive goes on after: broken
// streams (reconnected) and acks the node could not apply (e.g.
// FAILED_PRECONDITION "receipt expired"). Called from stream goroutines.
func WithErrorHandler(f func(error)) SubscriberOption {
	return func(c *subscriberConfig) { c.onError = f }
}

// WithSubscriberDialOptions adds gRPC dial options; they win over
// WithSubscriberSecurity (the default is plaintext).
func WithSubscriberDialOptions(opts ...grpc.DialOption) SubscriberOption {
	return func(c *subscriberConfig) { c.dialOptions = append(c.dialOptions, opts...) }
}

func (c *subscriberConfig) validate(group string, topics []string) error {
	switch {
	case group == "":
		return invalidOption("group: must not be empty")
	case len(topics) == 0:
		return invalidOption("topics: at least one is required")
	case c.ordering < OrderingNone || c.ordering > OrderingPartition:
		return invalidOption("WithOrdering: unknown ordering %d", c.ordering)
	case c.ackDeadline < time.Second || c.ackDeadline > 10*time.Minute:
		return invalidOption("WithAckDeadline: must be 1s to 10m, got %s", c.ackDeadline)
	case c.maxOutstandingMessages < 1 || c.maxOutstandingBytes < 1:
		return invalidOption("WithFlowControl: both limits must be >= 1")
	case c.maxDeliveryAttempts < 0:
		return invalidOption("WithDeadLetter: attempts must be >= 0")
	case c.concurrency < 1:
		return invalidOption("WithConcurrency: must be >= 1, got %d", c.concurrency)
	case c.ackBatchCount < 1 || c.ackBatchDelay < 0:
		return invalidOption("WithAckBatch: need count >= 1 and delay >= 0")
	case c.maxExtension <= 0:
		return invalidOption("WithMaxExtension: must be > 0")
	case c.closeTimeout < 0:
		return invalidOption("WithSubscriberCloseTimeout: must be >= 0")
	}
	return c.backoff.validate("WithReconnectBackoff")
}

func (c *subscriberConfig) openRequest(group string, topics []string) *ferryv1.SubscribeRequest {
	start := &ferryv1.Position{At: &ferryv1.Position_Latest{Latest: true}}
	switch {
	case c.start.earliest:
		start.At = &ferryv1.Position_Earliest{Earliest: true}
	case !c.start.at.IsZero():
		start.At = &ferryv1.Position_Timestamp{Timestamp: timestamppb.New(c.start.at)}
	}
	ordering := [...]ferryv1.Ordering{ferryv1.Ordering_ORDERING_NONE, ferryv1.Ordering_ORDERING_KEY,
		ferryv1.Ordering_ORDERING_PARTITION}[c.ordering]
	return &ferryv1.SubscribeRequest{Request: &ferryv1.SubscribeRequest_Open{Open: &ferryv1.SubscriptionOpen{
		Group:       group,
		Topics:      topics,
		Ordering:    ordering,
		AckDeadline: durationpb.New(c.ackDeadline),
		Flow: &ferryv1.FlowControl{MaxOutstandingMessages: c.maxOutstandingMessages,
			MaxOutstandingBytes: c.maxOutstandingBytes},
		Start:               start,
		Filter:              c.filter,
		MaxDeliveryAttempts: c.maxDeliveryAttempts,
		DeadLetterTopic:     c.deadLetterTopic,
		ClientId:            c.clientID,
	}}}
}
