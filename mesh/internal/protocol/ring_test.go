package protocol

import (
	"testing"

	"github.com/warpmesh/warp/wire"
)

// TestRing: the ring holds the last capacity events, grows only as numbers
// are used, and says what it no longer holds.
func TestRing(t *testing.T) {
	for _, capacity := range []int{1, 16, 100, 1000} {
		r := newRing(capacity)
		for seq := uint64(1); seq <= 5000; seq++ {
			r.add(&wire.Event{Seq: seq, Key: "k"})
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
