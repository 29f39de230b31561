package ferry

import (
	"time"

	ferryv1 "ferry.dev/ferry/sdk/go/gen/ferry/v1"
)

// pending is one published message on its way to its result. It is in one
// place at a time (the batcher, an in-flight batch), so it resolves once.
type pending struct {
	seq      uint64
	topic    string
	orderKey string // ordering key, else key; "": unordered
	proto    *ferryv1.OutgoingMessage
	size     int // counted against batch and outstanding bytes
	deadline time.Time
	// Failed attempts so far, when the next may start, and the last failure.
	attempts  int
	notBefore time.Time
	lastErr   *Error
	// The endpoint that failed the last attempt (-1: none): the retry goes
	// elsewhere if it can.
	avoid  int
	result *PublishResult
}

// A key's messages that are nowhere else, in publish order. A busy key has a
// batch in flight or retries backing off: its later messages wait, so a key
// is in at most one in-flight batch and a retry goes before newer messages.
type keyQueue struct {
	key     string
	waiting []*pending
	busy    bool
	inReady bool
}

// Exactly one of msg (unordered) and key is set.
type readyItem struct {
	msg *pending
	key *keyQueue
}

type topicQueue struct {
	name  string
	ready []readyItem // sendable, in publish order
	keys  map[string]*keyQueue
	// Queued messages (not in flight, not backing off) and their bytes.
	count, bytes int
	since        time.Time // when the oldest queued message was queued
	urgent       bool      // retries became due: send without lingering
	inflight     int       // batches taken and not completed
}

type delayedItem struct {
	at    time.Time
	topic *topicQueue
	item  readyItem
}

type batch struct {
	topic    string
	messages []*pending
}

// batcher holds queued messages per topic and forms batches. A topic is due
// when it has no batch in flight (an idle publisher sends at once, a busy
// one collects while its calls travel), when its queue fills a batch, when
// its oldest message waited linger, when retries became due, or on Flush.
// Not thread-safe: the publisher's lock guards it.
type batcher struct {
	maxMessages, maxBytes int
	linger                time.Duration
	topics                map[string]*topicQueue
	delayed               []delayedItem // retries waiting for their backoff
}

func newBatcher(maxMessages, maxBytes int, linger time.Duration) *batcher {
	return &batcher{maxMessages: maxMessages, maxBytes: maxBytes, linger: linger,
		topics: map[string]*topicQueue{}}
}

func (b *batcher) topic(name string) *topicQueue {
	t := b.topics[name]
	if t == nil {
		t = &topicQueue{name: name, keys: map[string]*keyQueue{}}
		b.topics[name] = t
	}
	return t
}

// add queues a new message behind its key's earlier ones.
func (b *batcher) add(p *pending, now time.Time) {
	t := b.topic(p.topic)
	t.countIn(p, now)
	if p.orderKey == "" {
		t.ready = append(t.ready, readyItem{msg: p})
		return
	}
	k := t.keys[p.orderKey]
	if k == nil {
		k = &keyQueue{key: p.orderKey}
		t.keys[p.orderKey] = k
	}
	k.waiting = append(k.waiting, p)
	if !k.busy && !k.inReady {
		k.inReady = true
		t.ready = append(t.ready, readyItem{key: k})
	}
}

func (t *topicQueue) countIn(p *pending, now time.Time) {
	t.count++
	t.bytes += p.size
	if t.since.IsZero() {
		t.since = now
	}
}

func (t *topicQueue) countOut(p *pending) {
	t.count--
	t.bytes -= p.size
}

// releaseDue makes retries whose backoff has passed sendable again, in front
// of their topic's queue.
func (b *batcher) releaseDue(now time.Time) {
	kept := b.delayed[:0]
	fronts := map[*topicQueue][]readyItem{}
	for _, d := range b.delayed {
		if d.at.After(now) {
			kept = append(kept, d)
			continue
		}
		t := d.topic
		retried := []*pending{d.item.msg}
		if k := d.item.key; k != nil {
			k.busy = false
			retried = k.waiting
			if len(k.waiting) == 0 {
				delete(t.keys, k.key)
				continue
			}
			k.inReady = true
		}
		fronts[t] = append(fronts[t], d.item)
		// Messages queued behind a key were counted already; retries were not.
		for _, p := range retried {
			if !p.notBefore.IsZero() {
				p.notBefore = time.Time{}
				t.countIn(p, now)
			}
		}
	}
	b.delayed = kept
	for t, items := range fronts {
		t.ready = append(items, t.ready...)
		t.urgent = true
	}
}

// nextWakeup is when something becomes sendable without new input (zero:
// nothing will).
func (b *batcher) nextWakeup(now time.Time) time.Time {
	var when time.Time
	earlier := func(t time.Time) {
		if when.IsZero() || t.Before(when) {
			when = t
		}
	}
	for _, d := range b.delayed {
		earlier(d.at)
	}
	for _, t := range b.topics {
		if len(t.ready) == 0 {
			continue
		}
		if t.urgent || t.inflight == 0 {
			earlier(now)
		} else {
			earlier(t.since.Add(b.linger))
		}
	}
	return when
}

// due lists the topics with a batch to send now; force: Flush is waiting.
func (b *batcher) due(now time.Time, force bool) []*topicQueue {
	var due []*topicQueue
	for _, t := range b.topics {
		if len(t.ready) == 0 {
			continue
		}
		if force || t.urgent || t.inflight == 0 || t.count >= b.maxMessages ||
			t.bytes >= b.maxBytes || !now.Before(t.since.Add(b.linger)) {
			due = append(due, t)
		}
	}
	return due
}

// take forms the topic's next batch (nil when nothing could go) and returns
// the messages whose delivery deadline passed while queued, to be failed.
func (b *batcher) take(t *topicQueue, now time.Time) (*batch, []*pending) {
	var taken, expired []*pending
	size := 0
	// accept moves p out of the queue into the batch or the expired list;
	// false when the batch is full.
	accept := func(p *pending) bool {
		if len(taken) > 0 && size+p.size > b.maxBytes {
			return false
		}
		t.countOut(p)
		if now.After(p.deadline) {
			expired = append(expired, p)
		} else {
			taken = append(taken, p)
			size += p.size
		}
		return true
	}
	full := false
	for len(t.ready) > 0 && len(taken) < b.maxMessages && !full {
		item := t.ready[0]
		if item.msg != nil {
			if full = !accept(item.msg); !full {
				t.ready = t.ready[1:]
			}
			continue
		}
		k := item.key
		took := false
		for len(k.waiting) > 0 && len(taken) < b.maxMessages {
			before := len(taken)
			if full = !accept(k.waiting[0]); full {
				break
			}
			k.waiting = k.waiting[1:]
			took = took || len(taken) > before
		}
		switch {
		case took:
			k.busy = true
			k.inReady = false
			t.ready = t.ready[1:]
		case len(k.waiting) == 0:
			k.inReady = false
			t.ready = t.ready[1:]
			if !k.busy {
				delete(t.keys, k.key)
			}
		default:
			full = true
		}
	}
	switch {
	case t.count == 0:
		t.since = time.Time{}
		t.urgent = false
	case len(t.ready) == 0:
		t.urgent = false
	case !t.urgent:
		t.since = now
	}
	if len(taken) == 0 {
		return nil, expired
	}
	t.inflight++
	return &batch{topic: t.name, messages: taken}, expired
}

// complete ends a batch from take. retries (some of its messages, in batch
// order, with notBefore set) wait for their backoff and then go in front of
// their keys' queues; the batch's other keys are free again.
func (b *batcher) complete(done *batch, retries []*pending) {
	t := b.topic(done.topic)
	if t.inflight > 0 {
		t.inflight--
	}
	retryByKey := map[string][]*pending{}
	for _, p := range retries {
		if p.orderKey == "" {
			b.delayed = append(b.delayed, delayedItem{at: p.notBefore, topic: t, item: readyItem{msg: p}})
		} else {
			retryByKey[p.orderKey] = append(retryByKey[p.orderKey], p)
		}
	}
	seen := map[string]bool{}
	var front []readyItem // freed keys go first: their messages waited longest
	for _, p := range done.messages {
		if p.orderKey == "" || seen[p.orderKey] {
			continue
		}
		seen[p.orderKey] = true
		k := t.keys[p.orderKey]
		if k == nil { // drained by Close meanwhile
			continue
		}
		if rs := retryByKey[k.key]; len(rs) > 0 {
			k.waiting = append(append([]*pending{}, rs...), k.waiting...)
			at := rs[0].notBefore
			for _, r := range rs {
				if r.notBefore.After(at) {
					at = r.notBefore
				}
			}
			b.delayed = append(b.delayed, delayedItem{at: at, topic: t, item: readyItem{key: k}})
			continue
		}
		k.busy = false
		switch {
		case len(k.waiting) == 0:
			delete(t.keys, k.key)
		case !k.inReady:
			k.inReady = true
			front = append(front, readyItem{key: k})
		}
	}
	if len(front) > 0 {
		t.ready = append(front, t.ready...)
	}
}

// drain removes and returns every queued and delayed message (on Close).
func (b *batcher) drain() []*pending {
	var all []*pending
	for _, t := range b.topics {
		for _, item := range t.ready {
			if item.msg != nil {
				all = append(all, item.msg)
			}
		}
		for _, k := range t.keys {
			all = append(all, k.waiting...)
		}
	}
	for _, d := range b.delayed {
		if d.item.msg != nil {
			all = append(all, d.item.msg)
		}
	}
	b.topics = map[string]*topicQueue{}
	b.delayed = nil
	return all
}
