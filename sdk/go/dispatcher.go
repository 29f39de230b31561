package ferry

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// dispatcher runs the handler on at most `concurrency` goroutines, serially
// per chain: per (topic, key) in key mode, per (topic, partition) in
// partition mode, not at all otherwise. A chain waiting behind its running
// message holds up no other chain.
type dispatcher struct {
	ctx      context.Context
	handler  func(context.Context, *Message)
	ordering Ordering
	slots    chan struct{} // one per running chain
	running  sync.WaitGroup

	mu      sync.Mutex
	stopped bool
	chains  map[string][]*Message // present: the chain runs; value: its waiting messages
}

func newDispatcher(ctx context.Context, handler func(context.Context, *Message), ordering Ordering, concurrency int) *dispatcher {
	return &dispatcher{ctx: ctx, handler: handler, ordering: ordering,
		slots: make(chan struct{}, concurrency), chains: map[string][]*Message{}}
}

func (d *dispatcher) chainOf(m *Message) string {
	switch {
	case d.ordering == OrderingKey && len(m.Key) > 0:
		return m.Topic + "\x00" + string(m.Key)
	case d.ordering == OrderingPartition:
		return m.Topic + "\x00" + strconv.Itoa(int(m.Partition))
	}
	return ""
}

// submit hands m to its chain. It waits for a free slot when all are busy,
// which holds the stream reader back (the node's flow control then stops
// sending). After stop, m is nacked instead.
func (d *dispatcher) submit(m *Message) {
	chain := d.chainOf(m)
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		m.Nack(0)
		return
	}
	if chain != "" {
		if waiting, busy := d.chains[chain]; busy {
			d.chains[chain] = append(waiting, m)
			d.mu.Unlock()
			return
		}
		d.chains[chain] = nil
	}
	d.running.Add(1)
	d.mu.Unlock()
	d.slots <- struct{}{}
	go d.run(m, chain)
}

func (d *dispatcher) run(m *Message, chain string) {
	defer d.running.Done()
	defer func() { <-d.slots }()
	for m != nil {
		d.mu.Lock()
		stopped := d.stopped
		d.mu.Unlock()
		if stopped {
			m.Nack(0)
		} else {
			d.handler(d.ctx, m)
		}
		m = d.next(chain)
	}
}

// next pops the chain's next message, or ends the chain.
func (d *dispatcher) next(chain string) *Message {
	if chain == "" {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	waiting := d.chains[chain]
	if len(waiting) == 0 {
		delete(d.chains, chain)
		return nil
	}
	d.chains[chain] = waiting[1:]
	return waiting[0]
}

// stop: no handler starts after this; waiting messages are nacked. Waits up
// to timeout for running handlers and reports whether they all returned.
func (d *dispatcher) stop(timeout time.Duration) bool {
	d.mu.Lock()
	d.stopped = true
	var waiting []*Message
	for chain, ms := range d.chains {
		waiting = append(waiting, ms...)
		d.chains[chain] = nil
	}
	d.mu.Unlock()
	for _, m := range waiting {
		m.Nack(0)
	}
	done := make(chan struct{})
	go func() {
		d.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}
