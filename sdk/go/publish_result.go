package ferry

import (
	"context"
	"time"
)

// Written tells where the broker stored a message.
type Written struct {
	ID        string // the message's ferry.id, given or generated
	Cluster   string
	Partition int32
	Offset    int64
	Timestamp time.Time
}

// PublishResult is the final outcome of one Publish, available once Ready
// is closed. It completes exactly once.
type PublishResult struct {
	ready   chan struct{}
	written Written
	err     error
}

func newPublishResult() *PublishResult { return &PublishResult{ready: make(chan struct{})} }

// Ready is closed when the result is final.
func (r *PublishResult) Ready() <-chan struct{} { return r.ready }

// Get waits for the result. The error is an *Error when publishing failed
// (nothing was acknowledged), or ctx's error when ctx ended first (the
// message is still being published then).
func (r *PublishResult) Get(ctx context.Context) (Written, error) {
	select {
	case <-r.ready:
		return r.written, r.err
	case <-ctx.Done():
		return Written{}, ctx.Err()
	}
}

func (r *PublishResult) complete(w Written, err error) {
	r.written, r.err = w, err
	close(r.ready)
}

// seqWindow tracks sequence numbers handed out in order (1, 2, 3, ...) and
// resolved in any order, and knows the lowest unresolved one: Flush waits
// until it passes the last number published before the call. Its size is
// the spread between the oldest unresolved and the newest message.
type seqWindow struct {
	low      uint64 // the lowest unresolved number
	resolved []bool // from low to the newest added
}

func (w *seqWindow) add() uint64 {
	if w.low == 0 {
		w.low = 1
	}
	w.resolved = append(w.resolved, false)
	return w.low + uint64(len(w.resolved)) - 1
}

func (w *seqWindow) resolve(seq uint64) {
	w.resolved[seq-w.low] = true
	n := 0
	for n < len(w.resolved) && w.resolved[n] {
		n++
	}
	w.low += uint64(n)
	w.resolved = w.resolved[n:]
}

// lowestUnresolved returns the next number add will return when none is
// unresolved.
func (w *seqWindow) lowestUnresolved() uint64 {
	if w.low == 0 {
		return 1
	}
	return w.low
}

// last is the newest number added (0: none yet).
func (w *seqWindow) last() uint64 { return w.lowestUnresolved() + uint64(len(w.resolved)) - 1 }
