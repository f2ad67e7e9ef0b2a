package mesh

import "github.com/warpmesh/warp/wire"

// recvWindow tracks the sequence numbers received from one incarnation of
// one origin (NAKACK). Events are delivered as soon as they arrive, in any
// order; the window only answers "is this new?" and "what is missing?".
//
// Invariants: every seq < next is done (delivered, or abandoned and
// reported with a resync); ahead holds the seqs > next already delivered;
// a gap exists exactly when next <= highest. Memory is bounded: the span
// highest-next never exceeds maxSpan (older gaps are abandoned), so ahead
// holds fewer than maxSpan entries.
//
// A recvWindow belongs to the receive loop; it is not safe for concurrent use.
type recvWindow struct {
	next    uint64
	highest uint64
	ahead   map[uint64]struct{}

	// base is the first seq seen. Events numbered below it were published
	// before this node heard of the origin (it joined mid-stream): they are
	// not gaps, but a few may still arrive reordered and are delivered once.
	base  uint64
	early map[uint64]struct{}

	// resyncedUpTo is the highest seq known when the subscriptions were
	// last resynced for this origin; losses up to it are covered.
	resyncedUpTo uint64

	// Repair state of the current gap, driven by the event loop.
	gapOpened int64 // unix nanoseconds when the gap at next was first seen, 0 when none
	naksSent  int
	nextNak   int64
}

// earlyAllowance is how far below the first seq seen a reordered event is
// still delivered.
const earlyAllowance = 64

// accept records seq and reports whether it is new (to be delivered).
// now is the receive time in unix nanoseconds.
func (w *recvWindow) accept(seq uint64, now int64) bool {
	switch {
	case seq == 0:
		return false // sequences start at 1
	case w.next == 0: // first contact
		w.next, w.highest, w.base = seq+1, seq, seq
		return true
	case seq < w.next:
		if seq < w.base && w.base-seq <= earlyAllowance {
			if _, seen := w.early[seq]; !seen {
				if w.early == nil {
					w.early = make(map[uint64]struct{})
				}
				w.early[seq] = struct{}{}
				return true
			}
		}
		return false
	case seq == w.next:
		w.next++
		w.advance()
		if seq > w.highest {
			w.highest = seq
		}
		w.gapMoved(now)
		return true
	default: // seq > next: out of order, a gap lies below it
		if _, seen := w.ahead[seq]; seen {
			return false
		}
		if w.ahead == nil {
			w.ahead = make(map[uint64]struct{})
		}
		w.ahead[seq] = struct{}{}
		if seq > w.highest {
			w.highest = seq
		}
		if w.gapOpened == 0 {
			w.gapOpened = now
		}
		return true
	}
}

// advance moves next over seqs already delivered out of order.
func (w *recvWindow) advance() {
	for len(w.ahead) > 0 {
		if _, ok := w.ahead[w.next]; !ok {
			return
		}
		delete(w.ahead, w.next)
		w.next++
	}
}

// gapMoved restarts the repair clock when the lowest missing seq changed.
func (w *recvWindow) gapMoved(now int64) {
	if w.hasGap() {
		w.gapOpened = now
	} else {
		w.gapOpened = 0
	}
	w.naksSent, w.nextNak = 0, 0
}

// hasGap reports whether some seq up to highest is missing.
func (w *recvWindow) hasGap() bool { return w.next != 0 && w.next <= w.highest }

// digest applies an origin's digest: it has numbered events up to seq, and
// sends us every event numbered after start. A lost tail becomes a visible
// gap, and so do events lost before the first one that reached us (our
// baseline, taken from that event, was too high). It reports whether a gap
// is open.
func (w *recvWindow) digest(seq, start uint64, now int64) bool {
	switch {
	case w.next == 0:
		w.next, w.highest, w.base = start+1, start, start+1
	case start+1 < w.base:
		w.rebase(start+1, now)
	}
	if seq > w.highest {
		w.highest = seq
		if w.gapOpened == 0 {
			w.gapOpened = now
		}
	}
	return w.hasGap()
}

// rebase lowers the window's start to from (< base): the seqs between
// are owed to us. What was received since base moves into ahead.
func (w *recvWindow) rebase(from uint64, now int64) bool {
	if w.next-from > maxSpan {
		return false // too late to matter: trim would give it up at once
	}
	if w.ahead == nil {
		w.ahead = make(map[uint64]struct{})
	}
	for s := w.base; s < w.next; s++ {
		w.ahead[s] = struct{}{}
	}
	for s := range w.early {
		if s >= from {
			w.ahead[s] = struct{}{}
		}
	}
	w.next, w.base = from, from
	w.advance()
	if w.hasGap() && w.gapOpened == 0 {
		w.gapOpened = now
	}
	return w.hasGap()
}

// missing appends to dst the ranges of seqs not yet received, lowest
// first, at most maxRanges ranges covering at most maxSeqs seqs.
func (w *recvWindow) missing(dst []wire.SeqRange, maxRanges int, maxSeqs uint64) []wire.SeqRange {
	if !w.hasGap() {
		return dst
	}
	var covered uint64
	for s := w.next; s <= w.highest && len(dst) < maxRanges && covered < maxSeqs; {
		if _, ok := w.ahead[s]; ok {
			s++
			continue
		}
		from := s
		for s <= w.highest && covered < maxSeqs {
			if _, ok := w.ahead[s]; ok {
				break
			}
			s++
			covered++
		}
		dst = append(dst, wire.SeqRange{From: from, To: s - 1})
	}
	return dst
}

// abandon gives up on every missing seq below upTo (exclusive): they will
// never be delivered. It reports whether anything was given up, in which
// case the caller owes the subscriptions a resync. Its cost is the size of
// ahead, never the span given up.
func (w *recvWindow) abandon(upTo uint64, now int64) bool {
	if !w.hasGap() || upTo <= w.next {
		return false
	}
	upTo = min(upTo, w.highest+1)
	held := uint64(0)
	for s := range w.ahead {
		if s < upTo {
			delete(w.ahead, s)
			held++
		}
	}
	lost := upTo-w.next > held
	w.next = upTo
	w.advance()
	w.gapMoved(now)
	return lost
}

// abandonAll gives up on every gap up to highest.
func (w *recvWindow) abandonAll(now int64) bool { return w.abandon(w.highest+1, now) }

// abandonRanges gives up on the given ranges only (the origin said it no
// longer holds them). It reports whether any of them was still missing.
// The work is bounded by maxSpan whatever the ranges claim.
func (w *recvWindow) abandonRanges(ranges []wire.SeqRange, now int64) bool {
	lost := false
	budget := uint64(maxSpan)
	for _, r := range ranges {
		if r.From > r.To || r.To < w.next || r.From > w.highest || !w.hasGap() {
			continue
		}
		from, to := max(r.From, w.next), min(r.To, w.highest)
		if from == w.next {
			lost = w.abandon(to+1, now) || lost
			continue
		}
		if to-from >= budget {
			to = from + budget - 1
		}
		budget -= to - from + 1
		for s := from; s <= to; s++ {
			if _, ok := w.ahead[s]; !ok {
				w.ahead[s] = struct{}{} // done, so the gap closes over it
				lost = true
			}
		}
		if budget == 0 {
			break
		}
	}
	w.advance()
	if lost {
		w.gapMoved(now)
	}
	return lost
}

// maxSpan bounds how far the window stretches: a gap older than maxSpan seqs
// behind the highest one is abandoned (and resynced) rather than tracked.
const maxSpan = 1 << 16

// trim abandons whatever lies more than maxSpan behind highest and reports
// whether something was lost.
func (w *recvWindow) trim(now int64) bool {
	if w.hasGap() && w.highest-w.next >= maxSpan {
		return w.abandon(w.highest-maxSpan+1, now)
	}
	return false
}
