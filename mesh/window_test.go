package mesh

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/warpmesh/warp/wire"
)

func TestRecvWindowInOrder(t *testing.T) {
	var w recvWindow
	for s := uint64(1); s <= 100; s++ {
		if !w.accept(s, 1) {
			t.Fatalf("seq %d not new", s)
		}
		if w.hasGap() {
			t.Fatalf("gap after in-order seq %d", s)
		}
	}
	for s := uint64(1); s <= 100; s++ {
		if w.accept(s, 1) {
			t.Fatalf("duplicate seq %d accepted", s)
		}
	}
	if len(w.ahead) != 0 {
		t.Fatalf("ahead holds %d entries with no gap", len(w.ahead))
	}
}

func TestRecvWindowGapAndRepair(t *testing.T) {
	var w recvWindow
	for _, s := range []uint64{1, 2, 5, 6, 9} {
		w.accept(s, 10)
	}
	got := w.missing(nil, 10, 100)
	want := []wire.SeqRange{{From: 3, To: 4}, {From: 7, To: 8}}
	if !slices.Equal(got, want) {
		t.Fatalf("missing = %v, want %v", got, want)
	}
	if w.gapOpened != 10 {
		t.Fatalf("gapOpened = %d", w.gapOpened)
	}
	for _, s := range []uint64{4, 3} {
		if !w.accept(s, 20) {
			t.Fatalf("repair %d not new", s)
		}
	}
	if got := w.missing(nil, 10, 100); !slices.Equal(got, []wire.SeqRange{{From: 7, To: 8}}) {
		t.Fatalf("after repair missing = %v", got)
	}
	if w.gapOpened != 20 {
		t.Fatalf("repair clock not restarted: %d", w.gapOpened)
	}
	w.accept(7, 30)
	w.accept(8, 30)
	if w.hasGap() || w.next != 10 || len(w.ahead) != 0 {
		t.Fatalf("window not closed: next=%d ahead=%v", w.next, w.ahead)
	}
}

func TestRecvWindowMissingIsBounded(t *testing.T) {
	var w recvWindow
	w.accept(1, 1)
	for s := uint64(3); s < 200; s += 2 {
		w.accept(s, 1)
	}
	if got := w.missing(nil, 5, 1000); len(got) != 5 || got[0] != (wire.SeqRange{From: 2, To: 2}) {
		t.Fatalf("missing with 5 ranges = %v", got)
	}
	w2 := recvWindow{}
	w2.accept(1, 1)
	w2.accept(1000, 1)
	got := w2.missing(nil, 5, 10)
	if len(got) != 1 || got[0] != (wire.SeqRange{From: 2, To: 11}) {
		t.Fatalf("missing with 10 seqs = %v", got)
	}
}

func TestRecvWindowDigestRevealsTailLoss(t *testing.T) {
	var w recvWindow
	w.accept(1, 1)
	w.accept(2, 1)
	if !w.digest(4, 0, 5) {
		t.Fatal("digest beyond highest did not open a gap")
	}
	if got := w.missing(nil, 10, 10); !slices.Equal(got, []wire.SeqRange{{From: 3, To: 4}}) {
		t.Fatalf("missing = %v", got)
	}
	w.accept(3, 6)
	w.accept(4, 6)
	if w.digest(4, 0, 7) {
		t.Fatal("same digest reopened a gap")
	}
}

func TestRecvWindowDigestStartsTheWindow(t *testing.T) {
	// First word from the origin is a digest: what it numbered up to
	// start was before our time, what came after is owed to us.
	var w recvWindow
	if !w.digest(50, 40, 1) {
		t.Fatal("digest with seq beyond start opened no gap")
	}
	if got := w.missing(nil, 10, 100); !slices.Equal(got, []wire.SeqRange{{From: 41, To: 50}}) {
		t.Fatalf("missing = %v", got)
	}
	var joined recvWindow
	if joined.digest(7, 7, 1) || joined.hasGap() {
		t.Fatal("a join digest at the origin's current seq made a gap")
	}
	if !joined.accept(8, 2) || joined.hasGap() {
		t.Fatal("the next event after a join digest")
	}
}

func TestRecvWindowDigestRebasesALateBaseline(t *testing.T) {
	// Events 11..14 were lost; 15 and 16 arrived first and set the
	// baseline. The digest says we are owed everything after 10.
	var w recvWindow
	w.accept(15, 1)
	w.accept(16, 1)
	if !w.digest(16, 10, 2) {
		t.Fatal("digest with an earlier start opened no gap")
	}
	if got := w.missing(nil, 10, 100); !slices.Equal(got, []wire.SeqRange{{From: 11, To: 14}}) {
		t.Fatalf("missing = %v", got)
	}
	for s := uint64(11); s <= 14; s++ {
		if !w.accept(s, 3) {
			t.Fatalf("repaired %d refused", s)
		}
	}
	if w.accept(15, 3) || w.accept(16, 3) {
		t.Fatal("events received before the rebase delivered twice")
	}
	if w.hasGap() || w.next != 17 {
		t.Fatalf("after repair: next %d, gap %v", w.next, w.hasGap())
	}
}

func TestRecvWindowAbandon(t *testing.T) {
	var w recvWindow
	for _, s := range []uint64{1, 4, 6} {
		w.accept(s, 1)
	}
	if !w.abandonRanges([]wire.SeqRange{{From: 2, To: 3}}, 2) {
		t.Fatal("abandoning missing seqs reported nothing lost")
	}
	if w.next != 5 {
		t.Fatalf("next = %d after abandoning 2-3", w.next)
	}
	if w.abandonRanges([]wire.SeqRange{{From: 1, To: 4}}, 3) {
		t.Fatal("abandoning delivered seqs reported a loss")
	}
	if !w.abandonAll(4) || w.hasGap() || w.next != 7 {
		t.Fatalf("abandonAll: next=%d gap=%v", w.next, w.hasGap())
	}
	if w.accept(5, 5) {
		t.Fatal("abandoned seq delivered later")
	}
	if !w.accept(7, 5) {
		t.Fatal("next seq after abandon refused")
	}
}

func TestRecvWindowTrimBoundsMemory(t *testing.T) {
	var w recvWindow
	w.accept(1, 1)
	w.accept(3, 1)
	w.accept(3+maxSpan, 1)
	if !w.trim(2) {
		t.Fatal("trim lost nothing")
	}
	if w.highest-w.next >= maxSpan {
		t.Fatalf("span %d not trimmed", w.highest-w.next)
	}
}

func TestRecvWindowEarlyReorderAtFirstContact(t *testing.T) {
	var w recvWindow
	w.accept(100, 1)
	if !w.accept(98, 1) {
		t.Fatal("reordered event before first contact refused")
	}
	if w.accept(98, 1) {
		t.Fatal("early event delivered twice")
	}
	if w.accept(100-earlyAllowance-1, 1) {
		t.Fatal("event far before first contact delivered")
	}
	if w.hasGap() {
		t.Fatal("events before first contact counted as a gap")
	}
}

// TestRecvWindowMatchesSet checks the window against a plain set under
// random loss, reordering and duplication.
func TestRecvWindowMatchesSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		var w recvWindow
		seen := map[uint64]bool{}
		n := uint64(1 + rng.IntN(300))
		order := make([]uint64, 0, 2*n)
		for s := uint64(1); s <= n; s++ {
			if rng.IntN(10) == 0 {
				continue // lost
			}
			order = append(order, s)
			if rng.IntN(10) == 0 {
				order = append(order, s) // duplicated
			}
		}
		// Local reordering only, as on a real path.
		for i := range order {
			j := min(len(order)-1, i+rng.IntN(4))
			order[i], order[j] = order[j], order[i]
		}
		first := uint64(0)
		for _, s := range order {
			if first == 0 {
				first = s
			}
			fresh := w.accept(s, 1)
			want := !seen[s] && (s >= first || first-s <= earlyAllowance)
			if fresh != want {
				t.Fatalf("round %d seq %d: accept=%v want %v", round, s, fresh, want)
			}
			if fresh {
				seen[s] = true
			}
		}
		// What the window calls missing is exactly what the set lacks
		// between first contact and the highest seq seen.
		var missing []uint64
		for _, r := range w.missing(nil, 1<<20, 1<<20) {
			for s := r.From; s <= r.To; s++ {
				missing = append(missing, s)
			}
		}
		var want []uint64
		for s := first; s <= w.highest; s++ {
			if !seen[s] {
				want = append(want, s)
			}
		}
		if !slices.Equal(missing, want) {
			t.Fatalf("round %d: missing %v, want %v", round, missing, want)
		}
	}
}

func TestSendBuffer(t *testing.T) {
	b := newSendBuffer(5) // rounds up to 8
	for s := uint64(1); s <= 20; s++ {
		b.add(&wire.Event{Seq: s, Key: "k"})
	}
	var ev wire.Event
	for s := uint64(1); s <= 12; s++ {
		if b.get(s, &ev) {
			t.Fatalf("seq %d still held by an 8-slot ring after 20", s)
		}
	}
	for s := uint64(13); s <= 20; s++ {
		if !b.get(s, &ev) || ev.Seq != s {
			t.Fatalf("seq %d lost", s)
		}
	}
	if b.get(0, &ev) || b.get(21, &ev) {
		t.Fatal("seq never added reported held")
	}
}
