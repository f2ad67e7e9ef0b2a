package protocol

import (
	"time"

	"github.com/warpmesh/warp/wire"
)

// ring keeps the most recent events this node numbered, so that it can
// repair the gaps receivers report (NAKACK). It is indexed by seq: an event
// older than the ring's capacity is gone, and the receiver that asks for it
// is told so and resyncs. It starts small and doubles as numbers are used,
// up to its capacity, so that an idle node does not pay for a ring sized
// for bursts.
type ring struct {
	slots  []wire.Event
	at     []int64 // when each slot's event was numbered, by this node's clock
	limit  int     // the capacity, a power of two
	newest uint64  // the highest seq added
}

// minRing is the initial size of a ring.
const minRing = 256

func newRing(capacity int) *ring {
	limit := 1
	for limit < capacity {
		limit <<= 1
	}
	return &ring{limit: limit}
}

// add stores ev under ev.Seq, numbered at now, replacing the event
// capacity seqs older.
func (r *ring) add(ev *wire.Event, now time.Time) {
	if len(r.slots) < r.limit && ev.Seq > uint64(len(r.slots)) {
		r.grow(ev.Seq)
	}
	i := ev.Seq & uint64(len(r.slots)-1)
	r.slots[i] = *ev
	r.at[i] = now.UnixNano()
	r.newest = max(r.newest, ev.Seq)
}

// before returns the highest seq numbered before t, and whether the ring
// reaches back that far (holds every event numbered at or after t). The
// scan walks back from the newest event: its cost is the events numbered
// since t.
func (r *ring) before(t time.Time) (uint64, bool) {
	cut := t.UnixNano()
	seq := r.newest
	for ; seq >= 1; seq-- {
		i := seq & uint64(len(r.slots)-1)
		if r.slots[i].Seq != seq {
			return seq, false // overwritten: the ring does not reach back to t
		}
		if r.at[i] < cut {
			return seq, true
		}
	}
	return 0, true // every event was numbered after t
}

// grow doubles the slots until seq fits without overwriting a live event,
// or the capacity is reached, and moves the events to their new places.
func (r *ring) grow(seq uint64) {
	n := max(len(r.slots), min(minRing, r.limit))
	for n < r.limit && uint64(n) < seq {
		n <<= 1
	}
	if n == len(r.slots) {
		return
	}
	slots, at := make([]wire.Event, n), make([]int64, n)
	for i := range r.slots {
		if s := r.slots[i].Seq; s != 0 {
			slots[s&uint64(n-1)] = r.slots[i]
			at[s&uint64(n-1)] = r.at[i]
		}
	}
	r.slots, r.at = slots, at
}

// oldest returns the lowest seq the ring may still hold: everything below
// it is gone for good.
func (r *ring) oldest() uint64 {
	if size := uint64(len(r.slots)); r.newest > size {
		return r.newest - size + 1
	}
	return 1
}

// get returns the event numbered seq, if the ring still holds it.
func (r *ring) get(seq uint64) (*wire.Event, bool) {
	if seq == 0 || len(r.slots) == 0 {
		return nil, false
	}
	slot := &r.slots[seq&uint64(len(r.slots)-1)]
	if slot.Seq != seq {
		return nil, false
	}
	return slot, true
}
