package protocol

import "github.com/warpmesh/warp/wire"

// ring keeps the most recent events this node numbered, so that it can
// repair the gaps receivers report (NAKACK). It is indexed by seq: an event
// older than the ring's capacity is gone, and the receiver that asks for it
// is told so and resyncs. It starts small and doubles as numbers are used,
// up to its capacity, so that an idle node does not pay for a ring sized
// for bursts.
type ring struct {
	slots  []wire.Event
	limit  int    // the capacity, a power of two
	newest uint64 // the highest seq added
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

// add stores ev under ev.Seq, replacing the event capacity seqs older.
func (r *ring) add(ev *wire.Event) {
	if len(r.slots) < r.limit && ev.Seq > uint64(len(r.slots)) {
		r.grow(ev.Seq)
	}
	r.slots[ev.Seq&uint64(len(r.slots)-1)] = *ev
	r.newest = max(r.newest, ev.Seq)
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
	slots := make([]wire.Event, n)
	for i := range r.slots {
		if s := r.slots[i].Seq; s != 0 {
			slots[s&uint64(n-1)] = r.slots[i]
		}
	}
	r.slots = slots
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
