package ferry

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	ferryv1 "ferry.dev/ferry/sdk/go/gen/ferry/v1"
	"google.golang.org/grpc/codes"
)

// spansOf renders spans as "run:first+count".
func spansOf(acks *ferryv1.Acks) []string {
	var out []string
	for _, s := range acks.GetSpans() {
		out = append(out, fmt.Sprintf("%s:%d+%d", s.Run, s.First, s.Count))
	}
	return out
}

func receiptsOf(acks *ferryv1.Acks) []string {
	var out []string
	for _, r := range acks.GetReceipts() {
		out = append(out, string(r))
	}
	return out
}

// Given a batch of 8 messages: A = messages 0-3, B = 5-7, message 4 in no run.
func placesForTest() []runPlace {
	var seq uint64
	return placeInRuns(8, []*ferryv1.ReceiptRun{
		{Run: []byte("A"), FirstMessage: 0, Count: 4},
		{Run: []byte("B"), FirstMessage: 5, Count: 3},
	}, &seq)
}

func ackInOrder(order ...int) *ferryv1.Acks {
	places := placesForTest()
	var p pendingAcks
	for _, i := range order {
		p.add(places[i], []byte(fmt.Sprint("r-", i)))
	}
	return p.take()
}

func TestAcksInOrderGoAsOneSpanPerRun(t *testing.T) {
	acks := ackInOrder(0, 1, 2, 3, 4, 5, 6, 7)
	if got, want := spansOf(acks), []string{"A:0+4", "B:0+3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("spans %v, want %v", got, want)
	}
	if got := receiptsOf(acks); !reflect.DeepEqual(got, []string{"r-4"}) {
		t.Errorf("receipts %v, want the one message in no run", got)
	}
}

func TestAcksOutOfOrderAreJoinedIntoSpans(t *testing.T) {
	acks := ackInOrder(6, 2, 0, 7, 3, 5, 1)
	if got, want := spansOf(acks), []string{"A:0+4", "B:0+3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("spans %v, want %v", got, want)
	}
	if len(acks.Receipts) != 0 {
		t.Errorf("receipts %v, want none", receiptsOf(acks))
	}
}

func TestHoleyAcksTakeASpanPerPieceAndReceiptsForSingles(t *testing.T) {
	acks := ackInOrder(3, 0, 1, 7, 5) // A: 0-1 and 3; B: 0 and 2
	if got, want := spansOf(acks), []string{"A:0+2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("spans %v, want %v", got, want)
	}
	if got, want := receiptsOf(acks), []string{"r-3", "r-5", "r-7"}; !reflect.DeepEqual(got, want) {
		t.Errorf("receipts %v, want %v", got, want)
	}
	if n := ackedMessages(acks); n != 5 {
		t.Errorf("acks %d messages, want 5", n)
	}
}

func TestTakeEmptiesThePendingAcks(t *testing.T) {
	places := placesForTest()
	var p pendingAcks
	p.add(places[0], []byte("r-0"))
	p.add(places[1], []byte("r-1"))
	p.take()
	if acks := p.take(); acks != nil {
		t.Errorf("second take gave %v", acks)
	}
	p.add(places[2], []byte("r-2")) // continues a run already sent: its own piece
	if got := receiptsOf(p.take()); !reflect.DeepEqual(got, []string{"r-2"}) {
		t.Errorf("receipts %v", got)
	}
}

func TestRunsThatDoNotFitTheBatchAreIgnored(t *testing.T) {
	var seq uint64
	places := placeInRuns(6, []*ferryv1.ReceiptRun{
		{Run: []byte("empty"), FirstMessage: 0, Count: 0},
		{Run: []byte("past-the-end"), FirstMessage: 4, Count: 3},
		{Run: []byte("ok"), FirstMessage: 1, Count: 2},
		{Run: []byte("overlaps"), FirstMessage: 2, Count: 2},
		{Run: []byte("encloses"), FirstMessage: 0, Count: 5},
	}, &seq)
	for i, p := range places {
		inOK := i == 1 || i == 2
		if (p.run != nil) != inOK || (inOK && string(p.run.token) != "ok") {
			t.Errorf("message %d placed in %+v", i, p.run)
		}
	}
}

// batchWithRuns is batchOf(keys...) with runs covering [first, first+count)
// named "run-<first>".
func batchWithRuns(keys []string, runs ...[2]uint32) *ferryv1.SubscribeResponse {
	response := batchOf(keys...)
	for _, r := range runs {
		response.GetMessages().Runs = append(response.GetMessages().Runs, &ferryv1.ReceiptRun{
			Run: []byte(fmt.Sprint("run-", r[0])), FirstMessage: r[0], Count: r[1]})
	}
	return response
}

func TestSubscriberAcksRunsWithSpans(t *testing.T) {
	requests := make(chan []*ferryv1.SubscribeRequest, 1)
	endpoint := startFakeSubscriber(t, func(stream ferryv1.Subscriber_SubscribeServer, _ int) error {
		stream.Send(opened())
		stream.Send(batchWithRuns([]string{"a", "b", "c", "d", "e", "f"}, [2]uint32{0, 3}, [2]uint32{4, 2}))
		requests <- readUntilHalfClose(stream)
		return nil
	})
	// Four handlers at once ack in whatever order they finish.
	s := newTestSubscriber(t, endpoint, WithAckBatch(100, time.Hour), WithConcurrency(4))
	done := make(chan struct{})
	var mu sync.Mutex
	count := 0
	err := receiveUntil(t, s, done, func(_ context.Context, m *Message) {
		if m.Offset == 4 {
			m.Nack(0)
		} else {
			m.Ack()
		}
		mu.Lock()
		defer mu.Unlock()
		if count++; count == 6 {
			close(done)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var acks []*ferryv1.Acks
	var nacked []string
	for _, r := range <-requests {
		if r.GetAck() != nil {
			acks = append(acks, r.GetAck())
		}
		for _, receipt := range r.GetNack().GetReceipts() {
			nacked = append(nacked, string(receipt))
		}
	}
	if len(acks) != 1 {
		t.Fatalf("want one ack request, got %v", acks)
	}
	if got, want := spansOf(acks[0]), []string{"run-0:0+3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("spans %v, want %v", got, want)
	}
	// Message 3 is in no run; message 5 is alone in its run (4 was nacked).
	if got, want := receiptsOf(acks[0]), []string{"r-3", "r-5"}; !reflect.DeepEqual(got, want) {
		t.Errorf("receipts %v, want %v", got, want)
	}
	if !reflect.DeepEqual(nacked, []string{"r-4"}) {
		t.Errorf("nacked %v", nacked)
	}
	if stats := s.Stats(); stats.AcksSent != 5 || stats.NacksSent != 1 {
		t.Errorf("stats %+v", stats)
	}
}

func TestRefusedSpanCountsEachOfItsMessages(t *testing.T) {
	endpoint := startFakeSubscriber(t, func(stream ferryv1.Subscriber_SubscribeServer, _ int) error {
		stream.Send(opened())
		stream.Send(batchWithRuns([]string{"a", "b", "c"}, [2]uint32{0, 3}))
		request, err := stream.Recv()
		if err != nil {
			return err
		}
		var results []*ferryv1.ReceiptResult
		for _, span := range request.GetAck().GetSpans() {
			results = append(results, &ferryv1.ReceiptResult{Span: span, Status: &ferryv1.Status{
				Code: int32(codes.FailedPrecondition), Message: "run issued on another stream"}})
		}
		stream.Send(&ferryv1.SubscribeResponse{Response: &ferryv1.SubscribeResponse_ReceiptResults{
			ReceiptResults: &ferryv1.ReceiptResults{Results: results}}})
		readUntilHalfClose(stream)
		return nil
	})
	reported := make(chan error, 10)
	s := newTestSubscriber(t, endpoint, WithAckBatch(3, time.Hour),
		WithErrorHandler(func(err error) { reported <- err }))
	done := make(chan struct{})
	go func() {
		select {
		case err := <-reported:
			if !errors.Is(err, ErrFailedPrecondition) {
				t.Errorf("reported %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("no failure reported")
		}
		close(done)
	}()
	if err := receiveUntil(t, s, done, func(_ context.Context, m *Message) { m.Ack() }); err != nil {
		t.Fatal(err)
	}
	if stats := s.Stats(); stats.ReceiptFailures != 3 || stats.AcksSent != 3 {
		t.Errorf("stats %+v", stats)
	}
}
