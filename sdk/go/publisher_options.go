package ferry

import (
	"time"

	"google.golang.org/grpc"
)

// PublisherOption configures NewPublisher.
type PublisherOption func(*publisherConfig)

type publisherConfig struct {
	maxBatchMessages    int
	maxBatchBytes       int
	linger              time.Duration
	maxOutstandingBytes int
	blockWhenFull       bool
	maxInflightBatches  int
	requestTimeout      time.Duration
	deliveryTimeout     time.Duration
	backoff             backoff
	closeTimeout        time.Duration
	security            Security
	dialOptions         []grpc.DialOption
	explicit            explicitSettings
	pushedSettings      bool
}

func defaultPublisherConfig() publisherConfig {
	return publisherConfig{
		maxBatchMessages:    500,
		maxBatchBytes:       1 << 20,
		linger:              5 * time.Millisecond,
		maxOutstandingBytes: 64 << 20,
		blockWhenFull:       true,
		maxInflightBatches:  32,
		requestTimeout:      30 * time.Second,
		deliveryTimeout:     120 * time.Second,
		backoff:             backoff{initial: 50 * time.Millisecond, max: 2 * time.Second},
		closeTimeout:        30 * time.Second,
		pushedSettings:      true,
	}
}

// WithMaxBatchMessages caps a batch's message count (>= 1; default 500).
func WithMaxBatchMessages(n int) PublisherOption {
	return func(c *publisherConfig) { c.maxBatchMessages, c.explicit.maxBatchMessages = n, true }
}

// WithMaxBatchBytes caps a batch's payload bytes (>= 1; default 1 MiB). A
// single larger message is sent alone; the node decides if it is too big.
func WithMaxBatchBytes(n int) PublisherOption {
	return func(c *publisherConfig) { c.maxBatchBytes, c.explicit.maxBatchBytes = n, true }
}

// WithLinger is how long a message may wait for companions while an earlier
// batch of its topic is in flight (>= 0; default 5 ms). With nothing in
// flight a message is sent at once: an idle publisher adds no delay and a
// busy one sends bigger batches.
func WithLinger(d time.Duration) PublisherOption {
	return func(c *publisherConfig) { c.linger, c.explicit.linger = d, true }
}

// WithMaxOutstandingBytes caps the bytes of messages whose results are not
// final yet (>= 1; default 64 MiB). A single larger message fails at once
// with INVALID_ARGUMENT.
func WithMaxOutstandingBytes(n int) PublisherOption {
	return func(c *publisherConfig) { c.maxOutstandingBytes = n }
}

// WithBlockWhenFull: at the outstanding-bytes cap, Publish waits for room
// (true, default; its ctx bounds the wait) or fails the message at once with
// RESOURCE_EXHAUSTED (false).
func WithBlockWhenFull(block bool) PublisherOption {
	return func(c *publisherConfig) { c.blockWhenFull = block }
}

// WithMaxInflightBatches caps the batch calls in flight at once (>= 1;
// default 32).
func WithMaxInflightBatches(n int) PublisherOption {
	return func(c *publisherConfig) { c.maxInflightBatches = n }
}

// WithRequestTimeout is each batch call's deadline (> 0; default 30 s). An
// expired call counts as a node failure: its messages are retried elsewhere.
func WithRequestTimeout(d time.Duration) PublisherOption {
	return func(c *publisherConfig) { c.requestTimeout, c.explicit.requestTimeout = d, true }
}

// WithDeliveryTimeout bounds a message's life (> 0; default 120 s): no
// attempt starts later than this after Publish; the message then fails with
// its last error (DEADLINE_EXCEEDED if it was never sent).
func WithDeliveryTimeout(d time.Duration) PublisherOption {
	return func(c *publisherConfig) { c.deliveryTimeout, c.explicit.deliveryTimeout = d, true }
}

// WithRetryBackoff: retries wait initial, doubling per attempt up to max
// (0 < initial <= max; default 50 ms and 2 s). A node that failed is avoided
// for the same kind of period.
func WithRetryBackoff(initial, max time.Duration) PublisherOption {
	return func(c *publisherConfig) { c.backoff = backoff{initial: initial, max: max} }
}

// WithPublisherCloseTimeout is how long Close flushes (>= 0; default 30 s).
func WithPublisherCloseTimeout(d time.Duration) PublisherOption {
	return func(c *publisherConfig) { c.closeTimeout = d }
}

// WithPushedSettings: follow the settings the operator pushes from the nodes
// (true, default). The publisher asks a node for them (Admin.GetClientConfig)
// at start, every refresh interval the node names, and as soon as a node
// answers again; a pushed linger, batch limit, request or delivery timeout
// replaces the SDK default of an option the application did not set
// (WithLinger, ... win), from the next batch (or message) on. Nodes that
// answer UNIMPLEMENTED (older ferryd) leave the SDK's own settings.
func WithPushedSettings(follow bool) PublisherOption {
	return func(c *publisherConfig) { c.pushedSettings = follow }
}

// WithPublisherDialOptions adds gRPC dial options; they win over
// WithPublisherSecurity (the default is plaintext).
func WithPublisherDialOptions(opts ...grpc.DialOption) PublisherOption {
	return func(c *publisherConfig) { c.dialOptions = append(c.dialOptions, opts...) }
}

func (c *publisherConfig) validate() error {
	switch {
	case c.maxBatchMessages < 1:
		return invalidOption("WithMaxBatchMessages: must be >= 1, got %d", c.maxBatchMessages)
	case c.maxBatchBytes < 1:
		return invalidOption("WithMaxBatchBytes: must be >= 1, got %d", c.maxBatchBytes)
	case c.linger < 0:
		return invalidOption("WithLinger: must be >= 0, got %s", c.linger)
	case c.maxOutstandingBytes < 1:
		return invalidOption("WithMaxOutstandingBytes: must be >= 1, got %d", c.maxOutstandingBytes)
	case c.maxInflightBatches < 1:
		return invalidOption("WithMaxInflightBatches: must be >= 1, got %d", c.maxInflightBatches)
	case c.requestTimeout <= 0:
		return invalidOption("WithRequestTimeout: must be > 0, got %s", c.requestTimeout)
	case c.deliveryTimeout <= 0:
		return invalidOption("WithDeliveryTimeout: must be > 0, got %s", c.deliveryTimeout)
	case c.closeTimeout < 0:
		return invalidOption("WithPublisherCloseTimeout: must be >= 0, got %s", c.closeTimeout)
	}
	return c.backoff.validate("WithRetryBackoff")
}
