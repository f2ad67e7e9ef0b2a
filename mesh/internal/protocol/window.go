package protocol

import (
	"net/netip"
	"time"

	"github.com/warpmesh/warp/wire"
)

// window tracks the sequence numbers received from one incarnation of one
// origin (NAKACK). Events are delivered as soon as they arrive, in any
// order; the window only answers "is this new?" and "what is missing?".
//
// Invariants: every seq < next is done (delivered, or abandoned and covered
// by a resync); ahead holds the seqs > next already delivered; a gap exists
// exactly when next <= highest. Memory is bounded: the span highest-next
// never exceeds maxSpan (older gaps are abandoned), so ahead holds fewer
// than maxSpan entries, and early at most maxEarly.
//
// A window belongs to its Core; it is not safe for concurrent use.
type window struct {
	next    uint64
	highest uint64 // the highest seq known, received or announced by a digest
	ahead   map[uint64]struct{}
	// received is the highest seq that actually arrived: credit is granted
	// from it, so that losses a digest reveals do not earn the origin
	// credit to lose more.
	received uint64

	// base is where the window started: the first seq seen, or the start a
	// digest announced. Numbers below it were published before this node
	// (this incarnation of it) heard of the origin. They are not gaps, but
	// one that arrives anyway — a retransmitted awaited event, a reordered
	// datagram — is new to this incarnation: it is delivered once, and
	// remembered in early (the most recent maxEarly of them) so that a copy
	// is not delivered twice.
	base       uint64
	confirmed  bool // a digest confirmed base: nothing below it is owed to us
	early      map[uint64]struct{}
	earlyOrder []uint64

	// resyncedUpTo is the highest seq known when the subscriptions were
	// last resynced for this origin: losses up to it are covered.
	resyncedUpTo uint64

	// Repair state of the current gap.
	gapOpened time.Time // when the gap at next was first seen; zero when none
	naksSent  int
	nextNak   time.Time
	nakSentAt time.Time // when the first repair request left, for a round-trip sample
	nakTo     uint64    // the highest seq the last repair request asked for

	// addr is where the origin's digests came from: its address, even
	// while the membership does not list it yet.
	addr netip.AddrPort
	// listed is set once the membership listed this incarnation;
	// unlistedSince is when a view first named another incarnation of
	// the node while this one was not yet listed (a restarted node can
	// speak before gossip announces it).
	listed        bool
	unlistedSince time.Time

	// Flow control (this node as a receiver of the origin's events).
	granted   uint64    // the highest limit sent to the origin
	grantedAt time.Time // when it was sent
	lastEvent time.Time // when an event of the origin last arrived
	initial   int       // the initial credit, Config.InitialCredit
}

// assumeGranted sets what the origin is taken to have been granted before
// this node sent it any credit: a publisher gives a receiver a window of
// the initial credit from its number when the receiver joined its view (from, as
// learnt from a digest or, failing that, from the first event). It only
// ever lowers an assumption, which can only make credit come sooner.
func (w *window) assumeGranted(from uint64) {
	if g := from + uint64(w.initial); w.grantedAt.IsZero() && (w.granted == 0 || g < w.granted) {
		w.granted = g
	}
}

// maxEarly bounds the numbers below a window's base remembered as
// delivered.
const maxEarly = 4096

// maxSpan bounds how far a window stretches: a gap older than maxSpan seqs
// behind the highest one is abandoned (and resynced) rather than tracked.
const maxSpan = 1 << 16

// accept records seq and reports whether it is new (to be delivered).
func (w *window) accept(seq uint64, now time.Time) bool {
	switch {
	case seq == 0:
		return false // sequences start at 1
	case w.next == 0: // first contact
		w.next, w.highest, w.base, w.received = seq+1, seq, seq, seq
		w.assumeGranted(seq - 1)
		return true
	case seq < w.next:
		if seq < w.base {
			return w.acceptEarly(seq)
		}
		return false
	case seq == w.next:
		w.received = max(w.received, seq)
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
		w.received = max(w.received, seq)
		if seq > w.highest {
			w.highest = seq
		}
		if w.gapOpened.IsZero() {
			w.gapOpened = now
		}
		return true
	}
}

// acceptEarly records a seq below base; it is new unless remembered.
func (w *window) acceptEarly(seq uint64) bool {
	if _, seen := w.early[seq]; seen {
		return false
	}
	if w.early == nil {
		w.early = make(map[uint64]struct{})
	}
	if len(w.earlyOrder) >= maxEarly {
		delete(w.early, w.earlyOrder[0])
		w.earlyOrder = w.earlyOrder[1:]
	}
	w.early[seq] = struct{}{}
	w.earlyOrder = append(w.earlyOrder, seq)
	return true
}

// advance moves next over seqs already delivered out of order.
func (w *window) advance() {
	for len(w.ahead) > 0 {
		if _, ok := w.ahead[w.next]; !ok {
			return
		}
		delete(w.ahead, w.next)
		w.next++
	}
}

// gapMoved restarts the repair clock when the lowest missing seq changed.
// While the answer to a repair request is still coming in (the gap moved
// but stays within what was asked, and the request's timeout has not
// expired), the clock keeps running: asking again for the rest of an
// answer on its way would have it all sent twice. The progress does not
// count against MaxNaks.
func (w *window) gapMoved(now time.Time) {
	if !w.hasGap() {
		w.gapOpened, w.naksSent, w.nextNak = time.Time{}, 0, time.Time{}
		return
	}
	w.gapOpened = now
	if w.naksSent > 0 && w.next <= w.nakTo && now.Before(w.nextNak) {
		w.naksSent = 1
		return
	}
	w.naksSent, w.nextNak = 0, time.Time{}
}

// hasGap reports whether some seq up to highest is missing.
func (w *window) hasGap() bool { return w.next != 0 && w.next <= w.highest }

// digest applies an origin's digest: it has numbered events up to seq, and
// sends us every event numbered after start. A lost tail becomes a visible
// gap, and so do events lost before the first one that reached us (our
// baseline, taken from that event, was too high).
func (w *window) digest(seq, start uint64, now time.Time) {
	switch {
	case w.next == 0:
		w.next, w.highest, w.base = start+1, start, start+1
	case start+1 < w.base:
		w.rebase(start+1, now)
	}
	w.assumeGranted(start)
	w.confirmed = true
	if seq > w.highest {
		w.highest = seq
		if w.gapOpened.IsZero() {
			w.gapOpened = now
		}
	}
}

// rebase lowers the window's start to from (< base): the seqs between are
// owed to us. What was received since base moves into ahead.
func (w *window) rebase(from uint64, now time.Time) {
	if w.next-from > maxSpan {
		return // too late to matter: trim would give it up at once
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
	if w.hasGap() && w.gapOpened.IsZero() {
		w.gapOpened = now
	}
}

// missing appends to dst the ranges of seqs not yet received, lowest first,
// at most maxRanges ranges covering at most maxSeqs seqs.
func (w *window) missing(dst []wire.SeqRange, maxRanges int, maxSeqs uint64) []wire.SeqRange {
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

// missingCount returns how many seqs up to highest are missing.
func (w *window) missingCount() uint64 {
	if !w.hasGap() {
		return 0
	}
	return w.highest - w.next + 1 - uint64(len(w.ahead))
}

// abandon gives up on every missing seq below upTo (exclusive): they will
// never be delivered. It reports whether anything was given up, in which
// case the caller owes the subscriptions a resync. Its cost is the size of
// ahead, never the span given up.
func (w *window) abandon(upTo uint64, now time.Time) bool {
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

// abandonAll gives up on every gap up to highest, and on the numbers
// below an unconfirmed base: when the window started at the first event
// that arrived and no digest ever said where the origin's numbering for us
// began, events before it may have been lost, and the origin will not be
// there to say.
func (w *window) abandonAll(now time.Time) bool {
	unsure := !w.confirmed && w.base > 1
	w.confirmed = true
	return w.abandon(w.highest+1, now) || unsure
}

// abandonRanges gives up on the given ranges only (the origin said it no
// longer holds them). It reports whether any of them was still missing.
// The work is bounded by maxSpan whatever the ranges claim.
func (w *window) abandonRanges(ranges []wire.SeqRange, now time.Time) bool {
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

// trim abandons whatever lies more than maxSpan behind highest and reports
// whether something was lost.
func (w *window) trim(now time.Time) bool {
	if w.hasGap() && w.highest-w.next >= maxSpan {
		return w.abandon(w.highest-maxSpan+1, now)
	}
	return false
}
