package mesh

import (
	"slices"
	"sync"
)

// numbering assigns this node's sequence numbers and knows which of them
// have left: the batcher numbers a whole batch before sending it, and
// awaiting publishers number their event before sending it, so for a moment
// some numbers are assigned but their frames not yet sent. Digests announce
// only sent numbers — announcing one whose frame is still on its way would
// make receivers ask for a repair of what is about to arrive.
//
// It is safe for concurrent use.
type numbering struct {
	mu       sync.Mutex
	last     uint64   // the last number assigned
	inflight []uint64 // first numbers of assigned, unsent runs, ascending
}

// take assigns n consecutive numbers and returns the first. The caller
// calls sent(first) once their frames have left.
func (n *numbering) take(count uint64) uint64 {
	n.mu.Lock()
	first := n.last + 1
	n.last += count
	n.inflight = append(n.inflight, first) // numbers only grow: stays sorted
	n.mu.Unlock()
	return first
}

// sent records that the run starting at first has left.
func (n *numbering) sent(first uint64) {
	n.mu.Lock()
	if i, ok := slices.BinarySearch(n.inflight, first); ok {
		n.inflight = slices.Delete(n.inflight, i, i+1)
	}
	n.mu.Unlock()
}

// assigned returns the last number assigned.
func (n *numbering) assigned() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.last
}

// watermark returns the highest number up to which every number has left.
func (n *numbering) watermark() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.inflight) > 0 {
		return n.inflight[0] - 1
	}
	return n.last
}
