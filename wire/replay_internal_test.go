package wire

import (
	"math/rand/v2"
	"testing"
)

// TestWindowMatchesModel checks the rotating bitmap against the obvious
// implementation: a set of accepted counters and the highest one.
func TestWindowMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for run := range 50 {
		var w window
		seen := map[uint64]bool{}
		var last uint64
		for step := range 5000 {
			var c uint64
			switch r.IntN(5) {
			case 0: // far ahead
				c = last + uint64(r.IntN(3*replayWindow)) + 1
			case 1: // near the edge of the window
				c = last - uint64(replayWindow) + uint64(r.IntN(3)) - 1
			default: // recent, often repeated
				c = last - uint64(r.IntN(replayWindow/4)) + uint64(r.IntN(8))
			}
			if c == 0 || c > 1<<62 {
				continue
			}
			want := !seen[c] && (c > last || last-c < replayWindow)
			if got := !w.seen(c); got != want {
				t.Fatalf("run %d step %d: seen(%d) with last %d = %v, want %v", run, step, c, last, !got, !want)
			}
			if got := w.accept(c); got != want {
				t.Fatalf("run %d step %d: accept(%d) with last %d = %v, want %v", run, step, c, last, got, want)
			}
			if want {
				seen[c] = true
				last = max(last, c)
			}
		}
	}
}

func TestSenderTableLRU(t *testing.T) {
	tab := newSenderTable(3)
	id := func(b byte) SenderID { return SenderID{b} }
	for _, b := range []byte{1, 2, 3} {
		if !tab.accept(id(b), 1) {
			t.Fatalf("first frame of %d refused", b)
		}
	}
	tab.accept(id(1), 2) // 1 is now the most recent; 2 the least
	tab.accept(id(4), 1) // evicts 2
	if tab.len() != 3 || !tab.seen(id(1), 1) || !tab.seen(id(3), 1) || !tab.seen(id(4), 1) {
		t.Fatalf("wrong senders kept")
	}
	if tab.seen(id(2), 1) {
		t.Fatalf("least recently used sender was not evicted")
	}
	// Walk the list both ways: it must hold exactly the indexed entries.
	n := 0
	for i := tab.head; i >= 0; i = tab.entries[i].next {
		n++
		if j, ok := tab.index[tab.entries[i].id]; !ok || j != i {
			t.Fatalf("list entry %d not indexed", i)
		}
	}
	if n != 3 {
		t.Fatalf("list holds %d entries", n)
	}
}
