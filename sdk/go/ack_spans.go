package ferry

import (
	"sort"

	ferryv1 "ferry.dev/ferry/sdk/go/gen/ferry/v1"
)

// receiptRun is a MessageBatch.runs entry: one token standing for the
// receipts of consecutive messages of a batch, so that acking them takes a
// ReceiptSpan instead of a receipt each.
type receiptRun struct {
	token []byte
	seq   uint64 // order of the runs of a stream, for sorting pieces
}

// runPlace is where a delivered message sits in its run (run nil: in none).
type runPlace struct {
	run   *receiptRun
	index uint32
}

// placeInRuns returns each message's place in the batch's runs. A run that
// is empty, reaches past the batch or overlaps an earlier one is ignored
// (its messages are acked by receipt); nextSeq numbers the runs.
func placeInRuns(n int, runs []*ferryv1.ReceiptRun, nextSeq *uint64) []runPlace {
	places := make([]runPlace, n)
	for _, r := range runs {
		first, count := uint64(r.FirstMessage), uint64(r.Count)
		if count == 0 || first+count > uint64(n) || anyPlaced(places[first:first+count]) {
			continue
		}
		*nextSeq++
		run := &receiptRun{token: r.Run, seq: *nextSeq}
		for i := uint32(0); i < r.Count; i++ {
			places[first+uint64(i)] = runPlace{run: run, index: i}
		}
	}
	return places
}

// anyPlaced reports whether a message of places is already in a run.
func anyPlaced(places []runPlace) bool {
	for _, p := range places {
		if p.run != nil {
			return true
		}
	}
	return false
}

// spanPiece acks messages [first, first+count) of run, or, with run nil,
// the one message of receipt.
type spanPiece struct {
	run          *receiptRun
	first, count uint32
	receipt      []byte
}

// pendingAcks collects a stream's acks until they are sent. Not
// thread-safe: the stream's lock guards it. Adding costs O(1); take sorts
// the pieces when handlers acked out of order, O(n log n) then.
type pendingAcks struct {
	pieces   []spanPiece
	messages int
}

// add queues the ack of a message at place (receipt: its own).
func (p *pendingAcks) add(place runPlace, receipt []byte) {
	p.messages++
	if place.run == nil {
		p.pieces = append(p.pieces, spanPiece{receipt: receipt})
		return
	}
	if n := len(p.pieces); n > 0 {
		if last := &p.pieces[n-1]; last.run == place.run && last.first+last.count == place.index {
			last.count++
			return
		}
	}
	p.pieces = append(p.pieces, spanPiece{run: place.run, first: place.index, count: 1, receipt: receipt})
}

// take returns the queued acks, one span per contiguous acked piece of a
// run and a receipt for every other message, and empties p. A piece of one
// message goes by its receipt: no smaller than a span, and cheaper for the
// node to apply.
func (p *pendingAcks) take() *ferryv1.Acks {
	if p.messages == 0 {
		return nil
	}
	pieces := p.pieces
	p.pieces, p.messages = nil, 0
	before := func(i, j int) bool { return pieceBefore(&pieces[i], &pieces[j]) }
	if !sort.SliceIsSorted(pieces, before) {
		sort.SliceStable(pieces, before)
	}
	acks := &ferryv1.Acks{}
	for i := 0; i < len(pieces); {
		piece := pieces[i]
		i++
		for piece.run != nil && i < len(pieces) && pieces[i].run == piece.run && pieces[i].first == piece.first+piece.count {
			piece.count += pieces[i].count
			i++
		}
		if piece.count > 1 {
			acks.Spans = append(acks.Spans, &ferryv1.ReceiptSpan{Run: piece.run.token, First: piece.first, Count: piece.count})
		} else {
			acks.Receipts = append(acks.Receipts, piece.receipt)
		}
	}
	return acks
}

// pieceBefore orders pieces by run, then position; receipts keep their
// place ahead of the runs.
func pieceBefore(a, b *spanPiece) bool {
	switch {
	case a.run == nil || b.run == nil:
		return a.run == nil && b.run != nil
	case a.run != b.run:
		return a.run.seq < b.run.seq
	}
	return a.first < b.first
}

// ackedMessages is how many messages a request acks.
func ackedMessages(acks *ferryv1.Acks) int {
	n := len(acks.GetReceipts())
	for _, s := range acks.GetSpans() {
		n += int(s.Count)
	}
	return n
}
