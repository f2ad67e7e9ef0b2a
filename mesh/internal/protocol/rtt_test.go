package protocol

import (
	"testing"
	"time"
)

func TestRTTEstimator(t *testing.T) {
	const initial, floor, ceiling = 20 * time.Millisecond, 10 * time.Millisecond, 500 * time.Millisecond
	var r *rtt
	if got := r.timeout(initial, floor, ceiling); got != initial {
		t.Fatalf("no estimator: %v", got)
	}
	r = &rtt{}
	r.expired(initial, floor, ceiling)
	if got := r.timeout(initial, floor, ceiling); got != 2*initial {
		t.Fatalf("backed off once: %v, want %v", got, 2*initial)
	}
	r.expired(initial, floor, ceiling)
	if got := r.timeout(initial, floor, ceiling); got != 4*initial {
		t.Fatalf("backed off twice: %v", got)
	}
	for range 20 {
		r.observe(40 * time.Millisecond)
	}
	got := r.timeout(initial, floor, ceiling)
	if got < 50*time.Millisecond || got > 60*time.Millisecond {
		t.Fatalf("steady 40ms round trips: timeout %v", got)
	}
	r.observe(time.Microsecond)
	if got := (&rtt{samples: 1, srtt: time.Microsecond}).timeout(initial, floor, ceiling); got != floor+time.Microsecond {
		t.Fatalf("a tiny round trip: %v, want the floor above it", got)
	}
	zero := &rtt{}
	zero.observe(-time.Second)
	if got := zero.timeout(initial, floor, ceiling); got != floor {
		t.Fatalf("a round trip measured as negative: %v, want the floor", got)
	}
	for range 50 {
		r.observe(10 * time.Second)
	}
	if got := r.timeout(initial, floor, ceiling); got != ceiling {
		t.Fatalf("huge round trips: %v, want the ceiling", got)
	}
}
