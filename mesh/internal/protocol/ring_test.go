package protocol

import (
	"testing"
	"time"

	"github.com/warpmesh/warp/wire"
)

// TestRing: the ring holds the last capacity events, grows only as numbers
// are used, and says what it no longer holds.
func TestRing(t *testing.T) {
	for _, capacity := range []int{1, 16, 100, 1000} {
		r := newRing(capacity)
		for seq := uint64(1); seq <= 5000; seq++ {
			r.add(&wire.Event{Seq: seq, Key: "k"}, time.Unix(0, int64(seq)))
			if seq == 10 && len(r.slots) > max(minRing, capacity) {
				t.Fatalf("capacity %d: %d slots after 10 events", capacity, len(r.slots))
			}
		}
		limit := r.limit
		if limit < capacity || limit >= 2*max(capacity, 1) {
			t.Fatalf("capacity %d: limit %d", capacity, limit)
		}
		if got := r.oldest(); got != 5000-uint64(limit)+1 {
			t.Fatalf("capacity %d: oldest %d", capacity, got)
		}
		for seq := uint64(1); seq <= 5000; seq++ {
			ev, ok := r.get(seq)
			want := seq >= r.oldest()
			if ok != want || (ok && ev.Seq != seq) {
				t.Fatalf("capacity %d: get(%d) = %v, %v", capacity, seq, ev, ok)
			}
		}
	}
}

// TestRingBefore: the ring finds the last event numbered before a time,
// and says when it no longer reaches back that far.
func TestRingBefore(t *testing.T) {
	r := newRing(64)
	at := func(seq uint64) time.Time { return time.Unix(0, int64(seq)*10) }
	if seq, whole := r.before(at(5)); seq != 0 || !whole {
		t.Fatalf("empty ring: %d %v", seq, whole)
	}
	for seq := uint64(1); seq <= 40; seq++ {
		r.add(&wire.Event{Seq: seq, Key: "k"}, at(seq))
	}
	if seq, whole := r.before(at(30)); seq != 29 || !whole {
		t.Fatalf("before event 30: %d %v", seq, whole)
	}
	if seq, whole := r.before(at(1)); seq != 0 || !whole {
		t.Fatalf("before the first event: %d %v", seq, whole)
	}
	for seq := uint64(41); seq <= 100; seq++ {
		r.add(&wire.Event{Seq: seq, Key: "k"}, at(seq))
	}
	if seq, whole := r.before(at(90)); seq != 89 || !whole {
		t.Fatalf("before event 90: %d %v", seq, whole)
	}
	if _, whole := r.before(at(20)); whole {
		t.Fatal("the ring of 64 says it reaches back to event 20 of 100")
	}
}
