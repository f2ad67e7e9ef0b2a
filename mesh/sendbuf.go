package mesh

import (
	"sync"

	"github.com/warpmesh/warp/wire"
)

// sendBuffer keeps the most recent events this node numbered, so that it
// can repair the gaps receivers report (NAKACK). It is a ring indexed by
// seq: memory is fixed, and an event older than the ring's capacity is
// gone — the receiver that asks for it is told so and resyncs.
//
// It is safe for concurrent use: publishers add, the receive loop reads.
type sendBuffer struct {
	mu     sync.Mutex
	slots  []wire.Event
	mask   uint64
	newest uint64 // the highest seq added
}

// newSendBuffer returns a buffer for at least capacity events (rounded up to
// a power of two).
func newSendBuffer(capacity int) *sendBuffer {
	n := 1
	for n < capacity {
		n <<= 1
	}
	return &sendBuffer{slots: make([]wire.Event, n), mask: uint64(n - 1)}
}

// add stores ev under ev.Seq, replacing the event capacity seqs older.
func (b *sendBuffer) add(ev *wire.Event) {
	b.mu.Lock()
	b.slots[ev.Seq&b.mask] = *ev
	b.newest = max(b.newest, ev.Seq)
	b.mu.Unlock()
}

// oldest returns the lowest seq the buffer may still hold: everything
// below it is gone for good.
func (b *sendBuffer) oldest() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if size := uint64(len(b.slots)); b.newest > size {
		return b.newest - size + 1
	}
	return 1
}

// get copies the event numbered seq into dst and reports whether the buffer
// still holds it.
func (b *sendBuffer) get(seq uint64, dst *wire.Event) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	slot := &b.slots[seq&b.mask]
	if seq == 0 || slot.Seq != seq {
		return false
	}
	*dst = *slot
	return true
}
