package ferry

import (
	"testing"

	"google.golang.org/grpc/codes"
)

func TestRetryTableMatchesFerryd(t *testing.T) {
	retryableCodes := map[codes.Code]bool{codes.Unavailable: true, codes.DeadlineExceeded: true,
		codes.ResourceExhausted: true, codes.Aborted: true, codes.Canceled: true}
	for code := codes.OK; code <= codes.Unauthenticated+1; code++ {
		if got := retryable(code, nil); got != retryableCodes[code] {
			t.Errorf("%s: retryable %v", code, got)
		}
	}
	yes, no := true, false
	if !retryable(codes.NotFound, &yes) || retryable(codes.Unavailable, &no) || retryable(codes.OK, &yes) {
		t.Error("the node's word must win, except for OK")
	}
}

func TestBackoffDoublesUpToItsCap(t *testing.T) {
	b := backoff{initial: 10, max: 50}
	for attempt, want := range map[int]int64{1: 10, 2: 20, 3: 40, 4: 50, 30: 50} {
		if got := b.delay(attempt); int64(got) != want {
			t.Errorf("attempt %d: %d, want %d", attempt, got, want)
		}
	}
}
