package ferry

import (
	"testing"
	"time"
)

func TestFailedEndpointIsAvoidedUntilItsBackoffEnds(t *testing.T) {
	health := newEndpointHealth(3, backoff{initial: time.Second, max: 4 * time.Second})
	now := time.Unix(1000, 0)
	health.failed(0, now)
	for i := 0; i < 6; i++ {
		if got := health.pick(now, -1); got == 0 {
			t.Fatalf("pick %d chose the failed endpoint", i)
		}
	}
	if got := health.pick(now.Add(time.Second), -1); got != 0 && health.pick(now.Add(time.Second), -1) != 0 {
		t.Error("endpoint 0 is not used again after its backoff")
	}
}

func TestRetryAvoidsItsNodeWhileAnotherIsHealthy(t *testing.T) {
	health := newEndpointHealth(2, backoff{initial: time.Second, max: time.Second})
	now := time.Unix(1000, 0)
	for i := 0; i < 4; i++ {
		if got := health.pick(now, 1); got != 0 {
			t.Fatalf("picked the avoided endpoint")
		}
	}
	health.failed(0, now)
	if got := health.pick(now, 1); got != 1 {
		t.Errorf("with 0 down, avoiding 1 must still pick 1, got %d", got)
	}
}

func TestWhenAllEndpointsFailTheFirstToRecoverIsUsed(t *testing.T) {
	health := newEndpointHealth(2, backoff{initial: time.Second, max: 8 * time.Second})
	now := time.Unix(1000, 0)
	health.failed(1, now)
	health.failed(0, now)
	health.failed(0, now.Add(time.Second)) // healthy again at that moment: grows to 2 s
	if got := health.pick(now.Add(time.Second/2), -1); got != 1 {
		t.Errorf("got %d, want 1 (recovers first)", got)
	}
	health.succeeded(0)
	if !health.healthy(0, now) {
		t.Error("a success makes the endpoint healthy")
	}
}
