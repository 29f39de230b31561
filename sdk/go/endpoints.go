package ferry

import (
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
)

// backoff is initial * 2^(attempt-1), capped at max. No jitter, as in the
// C++ SDK: retries are already spread by their batches' failure times.
type backoff struct{ initial, max time.Duration }

// delay for attempt >= 1, the number of failures so far.
func (b backoff) delay(attempt int) time.Duration {
	d := b.initial
	for i := 1; i < attempt && d < b.max; i++ {
		d *= 2
	}
	if d > b.max {
		return b.max
	}
	return d
}

func (b backoff) validate(option string) error {
	if b.initial <= 0 || b.max < b.initial {
		return invalidOption("%s: need 0 < initial <= max, got %s and %s", option, b.initial, b.max)
	}
	return nil
}

// validateEndpoints: at least one, each "host:port" or a gRPC target with a
// scheme ("dns:///...", "unix:..."), none twice.
func validateEndpoints(endpoints []string) error {
	if len(endpoints) == 0 {
		return invalidOption("endpoints: at least one \"host:port\" is required")
	}
	seen := map[string]bool{}
	for _, e := range endpoints {
		if !strings.Contains(e, ":/") && !strings.HasPrefix(e, "unix:") {
			_, port, err := net.SplitHostPort(e)
			n, perr := strconv.Atoi(port)
			if err != nil || perr != nil || n < 1 || n > 65535 {
				return invalidOption("endpoints: %q is not \"host:port\"", e)
			}
		}
		if seen[e] {
			return invalidOption("endpoints: %q is listed twice", e)
		}
		seen[e] = true
	}
	return nil
}

// dial creates one lazily connecting client per endpoint. gRPC's own
// reconnect backoff grows to 2 minutes by default; it is kept near ours so
// that a node that is back is used again soon.
func dial(endpoints []string, b backoff, extra []grpc.DialOption) ([]*grpc.ClientConn, error) {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpcConnectParams(b)),
	}
	opts = append(opts, extra...)
	conns := make([]*grpc.ClientConn, 0, len(endpoints))
	for _, e := range endpoints {
		conn, err := grpc.NewClient(e, opts...)
		if err != nil {
			closeAll(conns)
			return nil, invalidOption("endpoints: %q: %v", e, err)
		}
		conns = append(conns, conn)
	}
	return conns, nil
}

func grpcConnectParams(b backoff) grpc.ConnectParams {
	config := grpcbackoff.DefaultConfig
	config.BaseDelay = b.initial
	config.MaxDelay = b.max
	return grpc.ConnectParams{Backoff: config, MinConnectTimeout: 5 * time.Second}
}

func closeAll(conns []*grpc.ClientConn) {
	for _, c := range conns {
		c.Close()
	}
}

// endpointHealth picks the node for each call: round-robin over healthy
// endpoints. One that failed (unreachable, timed out) is unhealthy for
// backoff(consecutive failures); when all are, the one that recovers first
// is used anyway, so a call always goes somewhere. A retry avoids the node
// it failed on while another one is healthy. Not thread-safe: the
// publisher's lock guards it.
type endpointHealth struct {
	backoff        backoff
	failures       []int
	unhealthyUntil []time.Time
	next           int
}

func newEndpointHealth(n int, b backoff) *endpointHealth {
	return &endpointHealth{backoff: b, failures: make([]int, n), unhealthyUntil: make([]time.Time, n)}
}

// pick returns the endpoint for the next call; avoid (-1: none) only if no
// other endpoint is healthy.
func (h *endpointHealth) pick(now time.Time, avoid int) int {
	n := len(h.failures)
	earliest := h.next % n
	avoidedHealthy := false
	for i := 0; i < n; i++ {
		index := (h.next + i) % n
		if h.healthy(index, now) {
			if index == avoid {
				avoidedHealthy = true
				continue
			}
			h.next = index + 1
			return index
		}
		if h.unhealthyUntil[index].Before(h.unhealthyUntil[earliest]) {
			earliest = index
		}
	}
	if avoidedHealthy {
		earliest = avoid
	}
	h.next = earliest + 1
	return earliest
}

// failed records a transport-level failure. Failures of calls that were in
// flight together count once: the period grows only when the endpoint had
// been healthy again.
func (h *endpointHealth) failed(index int, now time.Time) {
	if !h.healthy(index, now) {
		return
	}
	h.failures[index]++
	h.unhealthyUntil[index] = now.Add(h.backoff.delay(h.failures[index]))
}

// succeeded reports whether the endpoint had failed before (a reconnect).
func (h *endpointHealth) succeeded(index int) bool {
	hadFailed := h.failures[index] > 0
	h.failures[index] = 0
	h.unhealthyUntil[index] = time.Time{}
	return hadFailed
}

func (h *endpointHealth) healthy(index int, now time.Time) bool {
	return !h.unhealthyUntil[index].After(now)
}
